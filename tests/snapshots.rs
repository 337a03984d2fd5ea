//! Snapshots of the contracts the outside world reads, on the local stack: each phase's dry-run
//! plan (`run <phase> --dry-run --json`), its outputs, and the registry export. Volatile fields
//! (times, durations, this test's own names) are redacted; everything else is compared whole,
//! so any change to a contract shows up as a reviewed `.snap` diff.
//!
//! The platform installs a release of its own into a database and artifact container of its own,
//! so every first run is fresh. The one exception is Automation: the stack has one account, and
//! another test may have published the same runbooks first (then they are `unchanged`), so the
//! runbook phase's counts and actions are redacted on its first run. Each phase then runs again,
//! which must be exactly `unchanged` with nothing planned, and is compared whole.
//!
//! The stack has one AKS cluster, one Search service and one Foundry project: they are reset
//! first, and Airbyte gets a database, role and password secret named after this test.
//!
//! Runs alone in nextest (.config/nextest.toml): it runs every phase, health included.

mod common;
#[allow(dead_code)]
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use serde_json::{Map, Value};
use setup::*;

/// Every imperative step, in RFC-60 order.
const PHASES: [&str; 7] = ["artifacts", "runbooks", "database", "airbyte", "ai", "registry", "health"];

/// Keys whose values change from run to run.
/// (`signer` and `signingTime` name the fixture signer and its clock: a contract of the signature, not of the snapshot.)
const VOLATILE_KEYS: &[&str] =
    &["startedAt", "durationMs", "ms", "checkedAt", "waitedMs", "etag", "signer", "signingTime"];

/// Keys of the runbook phase whose values depend on what other tests published before this one.
const HISTORY_KEYS: &[&str] =
    &["changes", "changed", "action", "published", "unchanged", "planned", "status", "unmanaged"];

fn redact(v: &Value, names: &[(String, &str)], history: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = if VOLATILE_KEYS.contains(&k.as_str()) || (history && HISTORY_KEYS.contains(&k.as_str())) {
                        Value::String("[redacted]".into())
                    } else if k == "changed" {
                        // Changes are recorded as concurrent work finishes: their order is not
                        // part of the contract, their content is.
                        let mut items: Vec<Value> =
                            x.as_array().into_iter().flatten().map(|i| redact(i, names, history)).collect();
                        items.sort_by_key(|i| i.to_string());
                        Value::Array(items)
                    } else {
                        redact(x, names, history)
                    };
                    (redact_names(k, names), x)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(x, names, history)).collect()),
        Value::String(s) if is_search_etag(s) => Value::String("[etag]".into()),
        Value::String(s) => Value::String(redact_names(&redact_digests(s), names)),
        other => other.clone(),
    }
}

/// A Search ETag (`"0x8DF…"`, quotes included) is the service's clock: recorded as a release
/// object's version, it differs per run.
fn is_search_etag(s: &str) -> bool {
    s.strip_prefix("\"0x")
        .and_then(|r| r.strip_suffix('"'))
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn redact_key(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    (k.clone(), if k == key { Value::String("[redacted]".into()) } else { redact_key(x, key) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact_key(x, key)).collect()),
        other => other.clone(),
    }
}

fn redact_names(s: &str, names: &[(String, &str)]) -> String {
    names.iter().fold(s.to_owned(), |s, (name, placeholder)| s.replace(name.as_str(), placeholder))
}

/// Digests of what carries the release name (the manifest, the artifacts) differ per release;
/// the release here differs per process. So does the referrers tag schema's tag (`sha256-<hex>`).
fn redact_digests(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("sha256") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let sep = after.chars().next().filter(|c| *c == ':' || *c == '-');
        let hex = after.get(1..).map(|h| h.chars().take_while(char::is_ascii_hexdigit).count()).unwrap_or(0);
        match sep {
            Some(c) if hex == 64 => {
                out.push_str(&format!("sha256{c}[digest]"));
                rest = &after[65..];
            }
            _ => {
                out.push_str("sha256");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every call a phase made declared a permission, and that permission is in the phase's set as
/// `plan --permissions --json` prints it (a declared pattern covers the exact string recorded).
fn calls_are_declared(phase: &str, recording: &std::path::Path, declared: &Value) {
    let text = std::fs::read_to_string(recording).unwrap_or_default();
    let calls: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a recorded call")).collect();
    assert!(calls.len() > 3, "{phase}: only {} calls recorded", calls.len());
    let set = declared
        .as_array()
        .and_then(|a| a.iter().find(|p| p["phase"] == phase))
        .unwrap_or_else(|| panic!("{phase} in plan --permissions"))["permissions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut outside = std::collections::BTreeSet::new();
    for call in &calls {
        let (kind, name, pattern) = (&call["kind"], call["name"].as_str().unwrap(), call["declared"].as_str().unwrap());
        assert_ne!(pattern, "(undeclared)", "{phase}: a call declared no permission: {call}");
        let inside = set.iter().any(|p| p["kind"] == *kind && p["name"] == pattern);
        let exact = vibedata_bootstrap::azure::permission::matches(pattern, name);
        if !inside || !exact {
            outside.insert(format!("{kind} {name} ({})", call["resource"]));
        }
    }
    assert!(outside.is_empty(), "{phase}: calls outside its declared permissions: {outside:#?}");
}

#[tokio::test]
async fn contracts_of_every_phase() {
    // The sample chart is tagged with its version, shared by every release: whether this test's
    // first run imports it would depend on the tests before it. Bring it in first, so it never does.
    let first = Platform::new("snap_chart").await;
    first.publish();
    ok(&first.run("artifacts", &[]).0);
    // A release of this process's own, so a reused stack gives the same first runs.
    let release = format!("2026.12.77-{}", std::process::id());
    let p = Platform::with_release("snap", &release).await;
    p.publish();
    reset_airbyte(&p.stack).await;
    let r = p.stack.http().delete(format!("{}/ai", p.stack.control())).send().await.unwrap();
    assert!(r.status().is_success(), "resetting the AI planes: {}", r.status());
    let airbyte_db = format!("{}_ab", p.db);
    let airbyte_secret = format!("{}-ab-pw", p.db.replace('_', "-"));
    let extra = [
        ("VIBEDATA_AIRBYTE_DATABASE", airbyte_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_USER", airbyte_db.as_str()),
        ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", airbyte_secret.as_str()),
    ];
    let env = p.env(&extra);
    let deployment = env["VIBEDATA_DEPLOYMENT_ID"].clone();
    let mut names: Vec<(String, &str)> = vec![
        (airbyte_secret.clone(), "[airbyte-secret]"),
        (deployment, "[deployment]"),
        (p.container.clone(), "[container]"),
        (p.db.clone(), "[database]"),
        (release.clone(), "[release]"),
    ];
    // Every port of the stack, which `--base-port` moves (docs/local-stack.md).
    let base: u16 = p.stack.var("VIBEDATA_STACK_BASE_PORT").parse().unwrap();
    const PORTS: [&str; 14] = [
        "[port+0]",
        "[port+1]",
        "[port+2]",
        "[port+3]",
        "[port+4]",
        "[port+5]",
        "[port+6]",
        "[port+7]",
        "[port+8]",
        "[port+9]",
        "[port+10]",
        "[port+11]",
        "[port+12]",
        "[port+13]",
    ];
    names.extend(PORTS.iter().enumerate().map(|(i, ph)| ((base + i as u16).to_string(), *ph)));

    // Everything the runs printed and wrote, searched for secrets at the end.
    let mut seen: Vec<(String, String)> = Vec::new();
    let saw = |seen: &mut Vec<(String, String)>, what: String, o: &std::process::Output| {
        seen.push((format!("{what} stdout"), String::from_utf8_lossy(&o.stdout).into_owned()));
        seen.push((format!("{what} stderr"), String::from_utf8_lossy(&o.stderr).into_owned()));
    };
    let declared: Value = serde_json::from_slice(&p.stack.cli(&env, &["plan", "--permissions", "--json"]).stdout)
        .expect("plan --permissions --json");
    for phase in PHASES {
        // Every call of the three runs below is recorded with the permission it declared.
        let recording = std::env::temp_dir().join(format!("vibedata-{}-{phase}.permissions.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&recording);
        let recording_env = recording.to_str().unwrap().to_owned();
        let mut extra = extra.to_vec();
        extra.push(("VIBEDATA_RECORD_PERMISSIONS", recording_env.as_str()));
        let env = p.env(&extra);
        let dry = p.stack.cli(&env, &["run", phase, "--dry-run", "--json"]);
        saw(&mut seen, format!("{phase} --dry-run"), &dry);
        ok(&dry);
        let plan: Value = serde_json::from_slice(&dry.stdout).expect("stdout is only the plan");
        assert_eq!(plan["phase"], phase);
        assert_eq!(plan["changes"].as_u64(), plan["planned"].as_array().map(|a| a.len() as u64));
        let shared = phase == "runbooks";
        insta::assert_json_snapshot!(format!("{phase}_dry_run_plan"), redact(&plan, &names, shared));

        let (o, first) = p.run(phase, &extra);
        saw(&mut seen, format!("{phase} first run"), &o);
        ok(&o);
        insta::assert_json_snapshot!(format!("{phase}_outputs"), redact(&first, &names, shared));

        let mark = p.stack.journal_mark().await;
        let (o, again) = p.run(phase, &extra);
        saw(&mut seen, format!("{phase} rerun"), &o);
        ok(&o);
        // Idempotent by state: the rerun read everything and wrote nothing, not one request.
        let writes: Vec<String> = (p.stack.journal_since(mark).await.iter())
            .filter(|e| e["mutating"] == true)
            .map(|e| format!("{} {} {}", e["api"], e["method"], e["path"]))
            .collect();
        assert!(writes.is_empty(), "{phase} rerun made mutating requests: {writes:#?}");
        assert_eq!(
            (again["status"].as_str(), again["changes"].as_u64()),
            (Some("unchanged"), Some(0)),
            "{phase} rerun"
        );
        // Runbooks other tests published stay in the one shared account and are reported as
        // `unmanaged`, on a rerun too.
        let again = if shared { redact_key(&again, "unmanaged") } else { again };
        insta::assert_json_snapshot!(format!("{phase}_rerun_outputs"), redact(&again, &names, false));
        seen.push((format!("{phase} outputs"), first.to_string()));
        seen.push((format!("{phase} rerun outputs"), again.to_string()));
        calls_are_declared(phase, &recording, &declared);
    }

    let export = p.blob(&format!("registry/{}/registry.json", env["VIBEDATA_DEPLOYMENT_ID"])).await;
    let export: Value = serde_json::from_slice(&export.expect("the registry export exists")).unwrap();
    insta::assert_json_snapshot!("registry_export", redact(&export, &names, false));

    // Secrets: every value the stack seeded or a phase generated, in nothing the runs left behind.
    for blob in secrets::blob_names(&p).await {
        let body = p.blob(&blob).await.unwrap_or_default();
        seen.push((format!("blob {blob}"), String::from_utf8_lossy(&body).into_owned()));
    }
    assert!(
        seen.iter().any(|(what, _)| what.contains("reports/day0.html")),
        "the Day-0 report is among the blobs searched"
    );
    seen.extend(p.registry_rows().await.into_iter().map(|row| ("registry row".to_owned(), row)));
    let values = secrets::values(&p.stack).await;
    assert!(values.len() >= 5, "too few secret values to search for: {}", values.len());
    let found = secrets::found(&seen, &values);
    assert!(found.is_empty(), "secrets found: {found:#?}");
}

/// The secret-values search of `contracts_of_every_phase`.
mod secrets {
    use super::*;
    use crate::common::Stack;

    /// Every blob of the platform's artifact container: the ledger, the stored release, the
    /// registry export, the Day-0 report.
    pub async fn blob_names(p: &Platform) -> Vec<String> {
        let url = format!(
            "{}/{}?restype=container&comp=list&maxresults=5000",
            p.stack.var("VIBEDATA_STORAGE_BLOB_URL"),
            p.container
        );
        let token = p.stack.token("https://storage.azure.com/").await;
        let r = p.stack.http().get(url).bearer_auth(token).header("x-ms-version", "2021-12-02").send().await.unwrap();
        assert!(r.status().is_success(), "listing the artifact container: {}", r.status());
        let xml = r.text().await.unwrap();
        let names: Vec<String> = xml
            .split("<Name>")
            .skip(1)
            .filter_map(|s| s.split_once("</Name>"))
            .map(|(n, _)| n.replace("&amp;", "&"))
            .collect();
        assert!(!names.is_empty(), "the artifact container lists no blobs: {xml}");
        names
    }

    /// Every Key Vault secret's value, the stack's own passwords and keys, and the managed
    /// identity header; none of them may leave the place it is used.
    pub async fn values(stack: &Stack) -> Vec<(String, String)> {
        let vault = stack.var("VIBEDATA_KEY_VAULT_URL");
        let token = stack.token("https://vault.azure.net").await;
        let mut values = Vec::new();
        let mut next = Some(format!("{vault}/secrets?api-version=7.4"));
        while let Some(url) = next {
            let page = stack.get_json(&url, &token).await;
            for item in page["value"].as_array().into_iter().flatten() {
                let id = item["id"].as_str().unwrap();
                let s = stack.get_json(&format!("{id}?api-version=7.4"), &token).await;
                values.push((format!("Key Vault secret {id}"), s["value"].as_str().unwrap().to_owned()));
            }
            next = page["nextLink"].as_str().map(str::to_owned);
        }
        for key in [
            "VIBEDATA_STACK_PUBLISHER_PASSWORD",
            "VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD",
            "VIBEDATA_SEARCH_ADMIN_KEY",
            "IDENTITY_HEADER",
        ] {
            values.push((key.to_owned(), stack.var(key).to_owned()));
        }
        // The storage account key listKeys answers (Azurite's well-known key), which Airbyte's
        // connection string carries.
        values.push((
            "storage account key".to_owned(),
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".to_owned(),
        ));
        // A value too short to be a secret would match by accident (the health canary's is a word).
        values.retain(|(_, v)| v.len() >= 12);
        values
    }

    /// `(where, which secret)` for every secret value, or bearer token, found in `seen`.
    pub fn found(seen: &[(String, String)], values: &[(String, String)]) -> Vec<(String, String)> {
        let mut hits = Vec::new();
        for (what, text) in seen {
            for (name, value) in values {
                if text.contains(value.as_str()) {
                    hits.push((what.clone(), name.clone()));
                }
            }
            // A JWT: a header and a payload, both base64url JSON objects.
            let jwt = text.match_indices("eyJ").any(|(i, _)| {
                let tail = &text[i..];
                let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(tail.len());
                let word = &tail[..end];
                word.matches('.').count() >= 2 && word.contains(".eyJ")
            });
            if jwt {
                hits.push((what.clone(), "a bearer token (JWT)".to_owned()));
            }
        }
        hits
    }

    #[test]
    fn found_names_the_place_and_the_secret_and_sees_tokens() {
        let values = vec![("pw".to_owned(), "s3cret-value-1234".to_owned())];
        let seen = vec![
            ("a".to_owned(), "nothing here".to_owned()),
            ("b".to_owned(), "password=s3cret-value-1234;".to_owned()),
            ("c".to_owned(), "Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln".to_owned()),
        ];
        assert_eq!(
            found(&seen, &values),
            vec![("b".to_owned(), "pw".to_owned()), ("c".to_owned(), "a bearer token (JWT)".to_owned())]
        );
    }
}
