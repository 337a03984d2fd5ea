//! The command line's contract, without any Azure: help, version, plan, exit codes, and
//! configuration errors. These run anywhere.

use std::process::Command;

use serde_json::Value;

fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_command_has_help_and_version_names_the_commit() {
    for args in [&["--help"][..], &["plan", "--help"], &["run", "--help"], &["serve", "--help"], &["report", "--help"]]
    {
        let o = cli(args, &[]);
        assert!(o.status.success(), "{args:?}");
        assert!(text(&o.stdout).contains("Usage"), "{args:?}: {}", text(&o.stdout));
    }
    let run_help = text(&cli(&["run", "--help"], &[]).stdout);
    assert!(run_help.contains("--dry-run") && run_help.contains("preflight"), "{run_help}");
    let v = text(&cli(&["--version"], &[]).stdout);
    assert!(v.starts_with("vibedata-bootstrap 0.1.0 ("), "{v}");
    assert!(!v.contains("()"), "commit missing: {v}");
}

#[test]
fn plan_json_lists_fifteen_phases_in_rfc60_order_with_required_config() {
    let o = cli(&["plan", "--json"], &[]);
    assert!(o.status.success());
    let plan: Vec<Value> = serde_json::from_slice(&o.stdout).expect("stdout is only the JSON document");
    assert_eq!(plan.len(), 15);
    let ids: Vec<&str> = plan.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "prereqs-identity",
            "observability",
            "network",
            "dns",
            "core-security",
            "foundation-paas",
            "artifacts",
            "runbooks",
            "database",
            "apps",
            "airbyte",
            "app-gateway",
            "ai",
            "registry",
            "health"
        ]
    );
    for (i, p) in plan.iter().enumerate() {
        assert_eq!(p["order"], i + 1);
        for key in ["name", "kind", "command", "built", "requiredConfig", "status"] {
            assert!(p.get(key).is_some(), "{} lacks {key}", p["id"]);
        }
        let kind = p["kind"].as_str().unwrap();
        assert!(["declarative", "imperative", "mixed"].contains(&kind));
        assert_eq!(p["command"].is_null(), kind == "declarative", "{}", p["id"]);
        // No ledger is reachable without configuration: status is null, never made up.
        assert!(p["status"].is_null());
    }
    let artifacts = &plan[6];
    assert_eq!(artifacts["command"], "run artifacts");
    let req: Vec<&str> = artifacts["requiredConfig"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(req.contains(&"VIBEDATA_ACR_NAME") && req.contains(&"VIBEDATA_SUBSCRIPTION_ID"), "{req:?}");
    assert_eq!(plan[0]["requiredConfig"].as_array().unwrap().len(), 0);
}

#[test]
fn plan_table_shows_every_phase_and_why_status_is_missing() {
    let o = cli(&["plan"], &[]);
    let t = text(&o.stdout);
    assert_eq!(
        t.lines().filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())).count(),
        15,
        "{t}"
    );
    assert!(t.contains("run artifacts") && t.contains("(Bicep)"));
    assert!(t.contains("recorded status unavailable"), "{t}");
}

#[test]
fn incomplete_configuration_lists_every_problem_and_exits_2() {
    let o =
        cli(&["run", "preflight"], &[("VIBEDATA_SUBSCRIPTION_ID", "nope"), ("VIBEDATA_LEDGER_CONTAINER", "Bad_Name")]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    let last = err.lines().last().unwrap();
    for key in [
        "VIBEDATA_SUBSCRIPTION_ID",
        "VIBEDATA_RESOURCE_GROUP",
        "VIBEDATA_IDENTITY_CLIENT_ID",
        "VIBEDATA_STORAGE_ACCOUNT",
        "VIBEDATA_KEY_VAULT_NAME",
        "VIBEDATA_LEDGER_CONTAINER",
    ] {
        assert!(last.contains(key), "{key} missing from: {last}");
    }
}

#[test]
fn a_config_file_with_an_unknown_key_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, r#"{"VIBEDATA_RESOURCE_GROPU": "x"}"#).unwrap();
    let o = cli(&["--config", path.to_str().unwrap(), "run", "preflight"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("VIBEDATA_RESOURCE_GROPU"));
}

/// Every imperative step is built, so `plan --json` says so; a step that does not exist is bad
/// input, named, and `run airbyte` with no configuration lists Airbyte's own keys (exit 2).
#[test]
fn every_step_is_built_and_an_unknown_one_is_bad_input() {
    let o = cli(&["plan", "--json"], &[]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps: Vec<&Value> = plan.as_array().unwrap().iter().filter(|p| !p["command"].is_null()).collect();
    assert_eq!(steps.len(), 7, "{plan}");
    assert!(steps.iter().all(|p| p["built"] == true), "{plan}");

    let unknown = cli(&["run", "frobnicate"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("frobnicate"), "{}", text(&unknown.stderr));

    let airbyte = cli(&["run", "airbyte"], &[]);
    assert_eq!(airbyte.status.code(), Some(2), "{}", text(&airbyte.stderr));
    assert!(text(&airbyte.stderr).contains("VIBEDATA_AKS_CLUSTER"), "{}", text(&airbyte.stderr));
}

/// The contract `infra/` and the tests read, whole: a change to it shows up as a snapshot diff.
#[test]
fn plan_json_snapshot() {
    let o = cli(&["plan", "--json"], &[]);
    assert!(o.status.success());
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    insta::assert_json_snapshot!("plan_json", plan);
}

/// README's permissions table, rendered from `plan --permissions --json`: one row per phase and
/// resource. `VIBEDATA_UPDATE_README=1` rewrites the block instead of comparing.
fn permissions_markdown(plan: &Value) -> String {
    let mut out = String::from(
        "| phase | resource (configuration key) | checked on | narrowest roles | permissions († unconfirmed) |\n|---|---|---|---|---|\n",
    );
    for phase in plan.as_array().unwrap() {
        for a in phase["assignments"].as_array().unwrap() {
            let resource = a["resource"].as_str().unwrap();
            let mut roles: Vec<String> = a["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{} `{}`", r["name"].as_str().unwrap(), r["id"].as_str().unwrap()))
                .collect();
            if !a["noBuiltInRole"].as_array().unwrap().is_empty() {
                roles.push("a custom role".into());
            }
            let perms: Vec<String> = phase["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["resource"] == resource)
                .map(|p| {
                    let kind = match p["kind"].as_str().unwrap() {
                        "action" => "A",
                        "dataAction" => "DA",
                        _ => "none",
                    };
                    let mark = if p["confirmed"] == true { "" } else { " †" };
                    format!("{kind} `{}`{mark}", p["name"].as_str().unwrap())
                })
                .collect();
            let roles = if roles.is_empty() { "— (not Azure RBAC)".to_owned() } else { roles.join(", ") };
            out.push_str(&format!(
                "| {} | `{resource}` | `{}` | {roles} | {} |\n",
                phase["phase"].as_str().unwrap(),
                a["scope"].as_str().unwrap(),
                perms.join("<br>")
            ));
        }
    }
    out
}

#[test]
fn readme_permissions_table_matches_plan_permissions() {
    let o = cli(&["plan", "--permissions", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let table = permissions_markdown(&plan);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (start, end) = ("<!-- permissions:start (tests/cli.rs writes this) -->\n", "<!-- permissions:end -->");
    let from = readme.find(start).expect("README has the permissions block") + start.len();
    let to = readme[from..].find(end).expect("the block ends") + from;
    if std::env::var_os("VIBEDATA_UPDATE_README").is_some() {
        std::fs::write(path, format!("{}{table}{}", &readme[..from], &readme[to..])).unwrap();
    } else {
        assert_eq!(readme[from..to], table, "README's permissions table is stale: rerun with VIBEDATA_UPDATE_README=1");
    }
    // Every built phase is there, each with the ledger it writes.
    for phase in ["artifacts", "runbooks", "database", "airbyte", "registry", "health", "ai"] {
        assert!(table.contains(&format!("| {phase} | `VIBEDATA_LEDGER_CONTAINER` |")), "{phase}");
    }
}

#[test]
fn plan_permissions_names_the_importer_role_not_contributor() {
    let o = cli(&["plan", "--permissions", "--json"], &[]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let artifacts = plan.as_array().unwrap().iter().find(|p| p["phase"] == "artifacts").unwrap();
    let roles: Vec<&str> =
        artifacts["suggestedRoles"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(roles.contains(&"577a9874-89fd-4f24-9dbd-b5034d0ad23a"), "{roles:?}");
    assert!(!roles.contains(&"b24988ac-6180-42a0-ab88-20f7382dd24c"), "never Contributor");
    let pull = artifacts["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Microsoft.ContainerRegistry/registries/pull/read")
        .expect("the ACR data-plane read");
    assert_eq!(pull["abacMode"][0]["name"], "Microsoft.ContainerRegistry/registries/repositories/content/read");
    let text = text(&cli(&["plan", "--permissions"], &[]).stdout);
    assert!(text.contains("Container Registry Data Importer and Data Reader (577a9874"), "{text}");
}
