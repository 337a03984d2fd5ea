//! Airbyte Deployment over the local stack: `run airbyte` installs the sample release's Airbyte
//! chart onto the emulated private AKS cluster through ARM runCommand (the real Helm renders it;
//! the emulator's cluster checks every image against the customer registry), with its Postgres
//! role and database, its Key Vault password and its storage containers.
//!
//! The stack has one cluster and one storage account, so every test resets them
//! (`reset_airbyte`) and the binary runs alone in nextest (.config/nextest.toml). Each test names
//! its own database, role and password secret.

mod common;
#[allow(dead_code)]
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use common::*;
use serde_json::{json, Value};
use setup::*;
use support::wait_until;

/// Airbyte's images are tagged with the release, so a test that deletes one touches no other test.
const RELEASE: &str = "2026.12.71";

struct Airbyte {
    p: Platform,
    names: Vec<(&'static str, String)>,
}

impl Airbyte {
    /// A platform whose artifact storage and customer registry hold the sample release.
    async fn new(name: &str) -> Airbyte {
        let p = Platform::with_release(name, RELEASE).await;
        reset_airbyte(&p.stack).await;
        p.publish();
        ok(&p.run("artifacts", &[]).0);
        let db = format!("{}_ab", p.db);
        let secret = format!("{}-ab-pw", p.db.replace('_', "-"));
        let names = vec![
            ("VIBEDATA_AIRBYTE_DATABASE", db.clone()),
            ("VIBEDATA_AIRBYTE_DB_USER", db),
            ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", secret),
        ];
        Airbyte { p, names }
    }

    fn run(&self, extra: &[(&str, &str)]) -> (std::process::Output, Value) {
        let mut env: Vec<(&str, &str)> = self.names.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        self.p.run("airbyte", &env)
    }

    fn var(&self, key: &str) -> &str {
        &self.names.iter().find(|(k, _)| *k == key).unwrap().1
    }

    fn stack(&self) -> &Stack {
        &self.p.stack
    }

    /// The revisions of the `airbyte/airbyte` release in the emulated cluster.
    async fn revisions(&self) -> Vec<Value> {
        let v: Value = self.get("aks/releases").await;
        v["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "airbyte" && r["namespace"] == "airbyte")
            .map(|r| r["revisions"].as_array().unwrap().clone())
            .unwrap_or_default()
    }

    async fn get(&self, control: &str) -> Value {
        let url = format!("{}/{control}", self.stack().control());
        self.stack().http().get(url).send().await.unwrap().json().await.unwrap()
    }

    async fn post(&self, control: &str, body: Value) {
        let url = format!("{}/{control}", self.stack().control());
        let r = self.stack().http().post(url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "POST {control} {body}: {}", r.status());
    }

    /// The password the phase stored in Key Vault.
    async fn password(&self) -> String {
        let url = format!(
            "{}/secrets/{}?api-version=7.4",
            self.stack().var("VIBEDATA_KEY_VAULT_URL"),
            self.var("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET")
        );
        let token = self.stack().token("https://vault.azure.net").await;
        let v: Value = self.stack().http().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        v["value"].as_str().expect("the password secret exists").to_owned()
    }
}

/// Mutating calls of any API since `mark`.
async fn writes_since(stack: &Stack, mark: u64) -> Vec<String> {
    stack
        .journal_since(mark)
        .await
        .iter()
        .filter(|e| e["mutating"] == true)
        .map(|e| format!("{} {} {}", e["api"], e["method"], e["path"]))
        .collect()
}

fn summary_of(v: &Value) -> (Option<&str>, Option<u64>, Option<&str>, Option<u64>) {
    (v["status"].as_str(), v["changes"].as_u64(), v["summary"]["action"].as_str(), v["summary"]["revision"].as_u64())
}

#[tokio::test]
async fn a_fresh_install_then_a_rerun_changes_nothing_and_no_secret_leaves() {
    let a = Airbyte::new("airbyte_fresh").await;
    let (o, v) = a.run(&[]);
    ok(&o);
    assert_eq!(summary_of(&v), (Some("succeeded"), Some(7), Some("install"), Some(1)), "{v}");
    let kinds: Vec<&str> = v["changed"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for kind in ["key vault secret", "postgres role", "postgres database", "blob container", "helm release"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let revisions = a.revisions().await;
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0]["status"], "deployed");
    assert_eq!(
        revisions[0]["chartVersion"], v["summary"]["chart"]["version"],
        "the chart the release pins is the one installed"
    );
    let db = a.var("VIBEDATA_AIRBYTE_DATABASE");
    assert_eq!(revisions[0]["values"]["global"]["database"]["name"], db);
    // Airbyte's role owns its database and can log in with the stored password.
    let owner = a
        .p
        .scalar(&format!(
            "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = '{db}' AND r.rolname = '{db}' AND r.rolcanlogin"
        ))
        .await;
    assert_eq!(owner, 1, "the role owns the database");

    let mark = a.stack().journal_mark().await;
    let (o2, again) = a.run(&[]);
    ok(&o2);
    assert_eq!(summary_of(&again), (Some("unchanged"), Some(0), Some("unchanged"), Some(1)), "{again}");
    assert_eq!(writes_since(a.stack(), mark).await, Vec::<String>::new(), "a rerun mutates nothing");
    assert_eq!(a.revisions().await.len(), 1, "no new revision");

    // Neither the password nor the storage key is in any command text, journal, log or output.
    let password = a.password().await;
    let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let commands = a.get("aks/commands").await.to_string();
    let journal = a.stack().journal_since(0).await;
    let journal = serde_json::to_string(&journal).unwrap();
    for (what, text) in [
        ("commands", commands.as_str()),
        ("journal", journal.as_str()),
        ("stdout", &stdout(&o)),
        ("stderr", &stderr(&o)),
        ("outputs", &v.to_string()),
        ("rerun stdout", &stdout(&o2)),
        ("rerun outputs", &again.to_string()),
    ] {
        assert!(!text.contains(&password), "the password is in the {what}");
        assert!(!text.contains(key), "the storage key is in the {what}");
    }
    assert!(commands.contains("helm status"), "the probe is listed: {commands}");
}

#[tokio::test]
async fn a_changed_value_is_an_upgrade_to_the_next_revision() {
    let a = Airbyte::new("airbyte_upgrade").await;
    ok(&a.run(&[]).0);
    let other = format!("{}_2", a.var("VIBEDATA_AIRBYTE_DATABASE"));
    let (o, v) = a.run(&[("VIBEDATA_AIRBYTE_DATABASE", &other)]);
    ok(&o);
    assert_eq!(summary_of(&v), (Some("succeeded"), Some(2), Some("upgrade"), Some(2)), "{v}");
    let revisions = a.revisions().await;
    let statuses: Vec<&str> = revisions.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["superseded", "deployed"], "{revisions:?}");
    assert_eq!(revisions[1]["values"]["global"]["database"]["name"], other.as_str());
}

#[tokio::test]
async fn an_install_killed_mid_way_fails_and_the_rerun_recovers_it() {
    let a = Airbyte::new("airbyte_stuck").await;
    a.post("aks/stuck", json!({"release": "airbyte", "namespace": "airbyte"})).await;
    let (o, v) = a.run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(v["status"], "failed", "{v}");
    let stuck = a.revisions().await;
    assert_eq!(stuck.last().unwrap()["status"], "pending-install", "{stuck:?}");

    let (o, v) = a.run(&[]);
    ok(&o);
    assert_eq!(v["status"], "succeeded", "{v}");
    let revisions = a.revisions().await;
    assert_eq!(revisions.last().unwrap()["status"], "deployed", "{revisions:?}");
    assert!(revisions.iter().all(|r| r["status"] != "pending-install"), "{revisions:?}");
    let (o, v) = a.run(&[]);
    ok(&o);
    assert_eq!(v["changes"], 0, "{v}");
}

/// A registry token for the customer registry with `actions` on `repository`, as the emulator's
/// ACR token exchange issues it to the identity.
async fn registry_token(stack: &Stack, repository: &str, actions: &str) -> String {
    let auth = stack.var("VIBEDATA_ACR_AUTH_ENDPOINT").trim_end_matches('/').to_owned();
    let service = stack.var("VIBEDATA_ACR_LOGIN_SERVER");
    let aad = stack.token("https://management.azure.com/").await;
    let form = [("grant_type", "access_token"), ("service", service), ("access_token", aad.as_str())];
    let r: Value =
        stack.http().post(format!("{auth}/oauth2/exchange")).form(&form).send().await.unwrap().json().await.unwrap();
    let refresh = r["refresh_token"].as_str().unwrap().to_owned();
    let scope = format!("repository:{repository}:{actions}");
    let form = [("grant_type", "refresh_token"), ("service", service), ("refresh_token", &refresh), ("scope", &scope)];
    let r: Value =
        stack.http().post(format!("{auth}/oauth2/token")).form(&form).send().await.unwrap().json().await.unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_image_missing_from_the_customer_registry_is_named_and_artifacts_repairs_it() {
    let a = Airbyte::new("airbyte_image").await;
    let stack = a.stack();
    let repo = "vibedata/airbyte-worker";
    let token = registry_token(stack, repo, "pull,delete").await;
    let base = format!("https://{}/v2/{repo}/manifests", stack.var("VIBEDATA_ACR_LOGIN_SERVER"));
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
    let head = stack
        .http()
        .head(format!("{base}/{RELEASE}"))
        .bearer_auth(&token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert!(head.status().is_success(), "HEAD {repo}:{RELEASE}: {}", head.status());
    let digest = head.headers()["docker-content-digest"].to_str().unwrap().to_owned();
    let deleted = stack.http().delete(format!("{base}/{digest}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(deleted.status(), 202, "DELETE {repo}@{digest}");

    let (o, v) = a.run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains(repo) && last.contains("not in the customer registry"), "{last}");
    assert_eq!(v["status"], "failed", "{v}");

    // The artifacts phase reads the registry's real state, so it imports the missing image again.
    ok(&a.p.run("artifacts", &[]).0);
    let (o, v) = a.run(&[]);
    ok(&o);
    assert_eq!((v["status"].as_str(), v["summary"]["status"].as_str()), (Some("succeeded"), Some("deployed")), "{v}");
}

#[tokio::test]
async fn an_unschedulable_command_pod_is_submitted_again() {
    let a = Airbyte::new("airbyte_sched").await;
    a.post("faults", json!({"api": "aks.runCommand", "kind": "kubernetes-performance", "count": 1})).await;
    let (o, v) = a.run(&[]);
    let _ = a.stack().http().delete(format!("{}/faults", a.stack().control())).send().await;
    ok(&o);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert!(stdout(&o).contains("could not be scheduled"), "the retry is logged: {}", stdout(&o));
}

#[tokio::test]
async fn run_command_permission_that_never_arrives_is_named_at_the_deadline() {
    let a = Airbyte::new("airbyte_rbac").await;
    a.post("faults", json!({"api": "aks.runCommand", "kind": "rbac", "seconds": 30})).await;
    let (o, v) = a.run(&[("VIBEDATA_RBAC_DEADLINE_SECS", "2")]);
    let _ = a.stack().http().delete(format!("{}/faults", a.stack().control())).send().await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains("runCommand/action"), "{last}");
    assert_eq!(v["status"], "failed", "{v}");
    assert!(a.revisions().await.is_empty(), "nothing was installed");
}

#[tokio::test]
async fn a_dry_run_plans_from_the_real_state_and_writes_nothing() {
    let a = Airbyte::new("airbyte_dry").await;
    let mut env = a.p.env(&a.names.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    env.remove("AZ_SCRIPTS_OUTPUT_PATH");
    let mark = a.stack().journal_mark().await;
    let o = a.stack().cli(&env, &["run", "airbyte", "--dry-run", "--json"]);
    ok(&o);
    let plan: Value = serde_json::from_slice(&o.stdout).expect("stdout is only the plan");
    assert_eq!(plan["changes"], 7, "{plan}");
    let planned = plan["planned"].to_string();
    assert!(planned.contains("helm release") && planned.contains("install"), "{planned}");
    assert_eq!(writes_since(a.stack(), mark).await, Vec::<String>::new(), "a dry run mutates nothing");
    assert!(a.revisions().await.is_empty());
}

/// SIGKILL of the binary while its install command runs (the Deployments take 4 s to become
/// Available): the rerun finds the command's id in the ledger, waits for that command's end,
/// and converges without a second install.
#[tokio::test]
async fn a_sigkill_mid_install_then_a_rerun_converges() {
    let a = Airbyte::new("airbyte_kill").await;
    let knobs = a.get("aks").await;
    let put = |body: Value| {
        let url = format!("{}/aks", a.stack().control());
        let http = a.stack().http();
        async move { assert!(http.put(url).json(&body).send().await.unwrap().status().is_success()) }
    };
    put(json!({"readyAfterMs": 4000})).await;
    let env = a.p.env(&a.names.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .args(["run", "airbyte"])
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    wait_until(std::time::Duration::from_secs(60), "the install command to start", async || {
        let commands = a.get("aks/commands").await;
        let running = commands.as_array().unwrap().iter().any(|c| {
            c["command"].as_str().is_some_and(|t| t.starts_with("bash install.sh")) && c["status"] == "Running"
        });
        assert!(
            running || started.elapsed().as_secs() < 50,
            "no install command: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        running
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();

    let (o, v) = a.run(&[]);
    put(json!({"readyAfterMs": knobs["readyAfterMs"]})).await;
    ok(&o);
    assert!(v["status"] == "succeeded" || v["status"] == "unchanged", "{v}");
    let revisions = a.revisions().await;
    assert_eq!(revisions.last().unwrap()["status"], "deployed", "{revisions:?}");
    let installs = a
        .get("aks/commands")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["command"].as_str().is_some_and(|t| t.starts_with("bash install.sh")))
        .count();
    assert_eq!(installs, 1, "the killed run's install was waited for, not repeated");
    assert!(stdout(&o).contains("an earlier run's command"), "{}", stdout(&o));
}

/// Registry Bootstrap records the release the cluster holds (chart digest, revision, namespace),
/// read back by a read-only command; Health Bootstrap checks it through the cluster, naming a
/// Deployment that is not Available; an upgrade is recorded as the next revision.
#[tokio::test]
async fn the_registry_records_the_release_and_health_checks_it_through_the_cluster() {
    let a = Airbyte::new("airbyte_registry").await;
    ok(&a.p.run("database", &[]).0);
    let (o, installed) = a.run(&[]);
    ok(&o);
    let digest = installed["summary"]["chart"]["digest"].as_str().unwrap().to_owned();

    let (o, v) = a.p.run("registry", &[]);
    ok(&o);
    let helm: Vec<Value> = v["summary"]["releaseObjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "helmRelease")
        .cloned()
        .collect();
    assert_eq!(
        helm,
        [
            json!({"kind": "helmRelease", "host": "aks-vibedata-local", "name": "airbyte/airbyte", "version": "1", "digest": digest, "state": "deployed"})
        ],
        "{v}"
    );
    let sql = format!(
        "SELECT count(*) FROM registry.release_objects WHERE kind = 'helmRelease' AND version = '1' AND digest = '{digest}' \
         AND properties->>'namespace' = 'airbyte' AND host LIKE '%/managedClusters/aks-vibedata-local'"
    );
    assert_eq!(a.p.scalar(&sql).await, 1);
    let mark = a.stack().journal_mark().await;
    let (o, v) = a.p.run("registry", &[]);
    ok(&o);
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("unchanged"), Some(0)), "{v}");
    assert_eq!(writes_since(a.stack(), mark).await, Vec::<String>::new(), "the registry reads the release only");

    let never = [("VIBEDATA_HEALTH_FAIL_ON", "never")];
    let check = "aks-vibedata-local/helmRelease:airbyte/airbyte";
    ok(&a.p.run("health", &never).0);
    let (state, detail) = a.p.health_state(check).await;
    assert_eq!(state, "healthy", "{detail}");

    // A Deployment that never becomes Available: `kubectl wait` gives up after 2 s, not 120.
    let knobs = format!("{}/aks", a.stack().control());
    let before: Value = a.stack().http().get(&knobs).send().await.unwrap().json().await.unwrap();
    a.stack().http().put(&knobs).json(&json!({"giveUpAfterMs": 2000})).send().await.unwrap();
    a.post(
        "aks/unavailable",
        json!({"namespace": "airbyte", "deployment": "airbyte-worker", "reason": "ProgressDeadlineExceeded"}),
    )
    .await;
    let (o, v) = a.p.run("health", &never);
    let _ = a.stack().http().delete(format!("{}/aks/unavailable", a.stack().control())).send().await;
    let restore = json!({"giveUpAfterMs": before["giveUpAfterMs"]});
    a.stack().http().put(&knobs).json(&restore).send().await.unwrap();
    ok(&o);
    let (state, detail) = a.p.health_state(check).await;
    assert_eq!(state, "unhealthy", "{v}");
    assert!(detail.contains("airbyte-worker"), "the check names the Deployment: {detail}");
    ok(&a.p.run("health", &never).0);
    assert_eq!(a.p.health_state(check).await.0, "healthy", "it recovers with the Deployment");

    let other = format!("{}_2", a.var("VIBEDATA_AIRBYTE_DATABASE"));
    ok(&a.run(&[("VIBEDATA_AIRBYTE_DATABASE", &other)]).0);
    let (o, v) = a.p.run("registry", &[]);
    ok(&o);
    let changed = v["changed"].to_string();
    assert!(changed.contains("helmRelease airbyte/airbyte") && changed.contains("update"), "{changed}");
    assert_eq!(
        a.p.scalar("SELECT count(*) FROM registry.release_objects WHERE kind = 'helmRelease' AND version = '2'").await,
        1
    );
}

/// A context over what ARM's front end takes is a 413 with no ARM error body: the run stops with
/// one line naming it and the context's size, and nothing is installed.
#[tokio::test]
async fn an_oversize_context_is_named_and_nothing_is_installed() {
    let a = Airbyte::new("airbyte_oversize").await;
    let url = format!("{}/aks", a.stack().control());
    let before: Value = a.stack().http().get(&url).send().await.unwrap().json().await.unwrap();
    // The probe (no context) fits; the install (the chart in its zip) does not.
    let r = a.stack().http().put(&url).json(&json!({"maxRequestBytes": 4096})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (o, v) = a.run(&[]);
    let limit = json!({"maxRequestBytes": before["maxRequestBytes"]});
    let _ = a.stack().http().put(&url).json(&limit).send().await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains("413") && last.contains("install command") && last.contains("bytes"), "{last}");
    assert_eq!(v["status"], "failed", "{v}");
    assert!(a.revisions().await.is_empty(), "nothing was installed");
}

/// `MissingAADClusterToken` (the service's answer to a command without the cluster's Entra
/// token) stops the run with one line that says why no token was taken, and nothing is installed.
#[tokio::test]
async fn a_missing_cluster_token_is_named() {
    let a = Airbyte::new("airbyte_aad").await;
    a.post("faults", json!({"api": "aks.runCommand", "kind": "refused", "code": "MissingAADClusterToken"})).await;
    let (o, v) = a.run(&[]);
    let _ = a.stack().http().delete(format!("{}/faults", a.stack().control())).send().await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains("MissingAADClusterToken") && last.contains("cluster token"), "{last}");
    assert_eq!(v["status"], "failed", "{v}");
    assert!(a.revisions().await.is_empty(), "nothing was installed");
}

/// The manifests the real Helm rendered from the values the phase built (the release's stored
/// manifest and hooks): every image points at the customer registry, by the release's tag.
#[tokio::test]
async fn every_rendered_image_points_at_the_customer_registry() {
    let a = Airbyte::new("airbyte_rendered").await;
    ok(&a.run(&[]).0);
    let revisions = a.revisions().await;
    let last = revisions.last().expect("a revision");
    let mut rendered = last["manifest"].as_str().expect("the rendered manifest").to_owned();
    for hook in last["hooks"].as_array().into_iter().flatten() {
        rendered.push('\n');
        rendered.push_str(hook["manifest"].as_str().unwrap_or(&hook.to_string()));
    }
    let images: Vec<String> = rendered
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image:"))
        .map(|i| i.trim().trim_matches('"').to_owned())
        .collect();
    assert!(images.len() >= 3, "server, worker and bootloader at least: {images:?}");
    let registry = format!("{}/", a.stack().var("VIBEDATA_ACR_LOGIN_SERVER"));
    for image in &images {
        assert!(image.starts_with(&registry), "{image} is not in the customer registry {registry}");
        assert!(image.ends_with(&format!(":{RELEASE}")) || image.contains("@sha256:"), "{image} is not pinned");
    }
}
