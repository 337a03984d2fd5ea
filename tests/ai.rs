//! AI Deployment over the local stack: the emulator's AI Search and Foundry project data planes,
//! driven by `run ai` on the sample release's definitions (two indexes, one project index asset,
//! a prompt and a hosted agent).
//!
//! The Search service and the project are one each on the stack, so every test resets them
//! (`DELETE /_emulator/ai`) and the binary runs alone in nextest (.config/nextest.toml).

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

const RELEASE: &str = "2026.12.40";

async fn reset(stack: &Stack) {
    let r = stack.http().delete(format!("{}/ai", stack.control())).send().await.unwrap();
    assert!(r.status().is_success(), "resetting the AI planes: {}", r.status());
}

/// A platform whose artifact storage holds the sample release, ready for `run ai`.
async fn platform(name: &str) -> Platform {
    let p = Platform::with_release(name, RELEASE).await;
    reset(&p.stack).await;
    p.publish();
    ok(&p.run("artifacts", &[]).0);
    p
}

/// Mutating calls on the Search and Foundry planes since `mark`.
async fn ai_writes(stack: &Stack, mark: u64) -> Vec<String> {
    stack
        .journal_since(mark)
        .await
        .iter()
        .filter(|e| e["api"].as_str().is_some_and(|a| a.starts_with("search.") || a.starts_with("foundry")))
        .filter(|e| e["mutating"] == true)
        .map(|e| format!("{} {}", e["method"], e["path"]))
        .collect()
}

fn search_url(stack: &Stack, index: &str) -> String {
    format!("{}/indexes('{index}')?api-version=2025-09-01", stack.var("VIBEDATA_SEARCH_ENDPOINT").trim_end_matches('/'))
}

/// Writes an index straight to the service with the admin key, as another writer would.
async fn put_index(stack: &Stack, definition: Value) {
    let name = definition["name"].as_str().unwrap().to_owned();
    let r = stack
        .http()
        .put(search_url(stack, &name))
        .header("api-key", stack.var("VIBEDATA_SEARCH_ADMIN_KEY"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT index {name}: {} {}", r.status(), r.text().await.unwrap_or_default());
}

async fn get_index(stack: &Stack, name: &str) -> Value {
    let r = stack
        .http()
        .get(search_url(stack, name))
        .header("api-key", stack.var("VIBEDATA_SEARCH_ADMIN_KEY"))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

async fn agent(stack: &Stack, name: &str) -> Value {
    let token = stack.token("https://ai.azure.com").await;
    let url = format!("{}/agents/{name}?api-version=v1", stack.var("VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"));
    stack.http().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

fn action<'a>(v: &'a Value, list: &str, name: &str) -> &'a str {
    v["summary"][list]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .and_then(|x| x["action"].as_str())
        .unwrap_or("missing")
}

#[tokio::test]
async fn a_fresh_run_creates_everything_and_a_rerun_changes_nothing() {
    let p = platform("ai_fresh").await;
    let (o, v) = p.run("ai", &[]);
    ok(&o);
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("succeeded"), Some(5)), "{v}");
    for (list, name) in [
        ("indexes", "vibedata-docs"),
        ("indexes", "vibedata-tickets"),
        ("indexAssets", "docs-index"),
        ("agents", "triage"),
        ("agents", "assistant"),
    ] {
        assert_eq!(action(&v, list, name), "created", "{list} {name}");
    }
    let hosted = v["summary"]["agents"].as_array().unwrap().iter().find(|a| a["name"] == "assistant").unwrap().clone();
    assert_eq!(hosted["status"], "active");
    // The hosted image is the release's, from the customer registry, by digest.
    let latest = agent(&p.stack, "assistant").await;
    let image = latest
        .pointer("/versions/latest/definition/container_configuration/image")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    assert!(
        image.starts_with(&format!("{}/vibedata/assistant@sha256:", p.stack.var("VIBEDATA_ACR_LOGIN_SERVER"))),
        "{image}"
    );
    // The project endpoint came from ARM, or from configuration on the stack.
    assert!(v["summary"]["projectEndpoint"].as_str().unwrap().contains("/api/projects/"));

    let mark = p.stack.journal_mark().await;
    let (o, again) = p.run("ai", &[]);
    ok(&o);
    assert_eq!((again["status"].as_str(), again["changes"].as_u64()), (Some("unchanged"), Some(0)), "{again}");
    assert_eq!(ai_writes(&p.stack, mark).await, Vec::<String>::new(), "a rerun makes no mutating call");
    assert_eq!(agent(&p.stack, "triage").await.pointer("/versions/latest/version").and_then(Value::as_str), Some("1"));
}

#[tokio::test]
async fn an_additive_change_updates_in_place_and_a_breaking_one_fails_naming_the_field() {
    let p = platform("ai_diff").await;
    // The service holds vibedata-tickets without two of the release's fields: adding them is in place.
    put_index(
        &p.stack,
        json!({"name": "vibedata-tickets", "fields": [
            {"name": "ticketId", "type": "Edm.String", "key": true},
            {"name": "subject", "type": "Edm.String", "searchable": true},
            {"name": "body", "type": "Edm.String", "searchable": true}
        ]}),
    )
    .await;
    let before = get_index(&p.stack, "vibedata-tickets").await["@odata.etag"].clone();
    let (o, v) = p.run("ai", &[]);
    ok(&o);
    assert_eq!(action(&v, "indexes", "vibedata-tickets"), "updated", "{v}");
    let after = get_index(&p.stack, "vibedata-tickets").await;
    assert_ne!(after["@odata.etag"], before);
    assert_eq!(after["fields"].as_array().unwrap().len(), 5);

    // Now a field of the release's vibedata-docs exists with another type: the release cannot apply.
    reset(&p.stack).await;
    put_index(
        &p.stack,
        json!({"name": "vibedata-docs", "fields": [
            {"name": "id", "type": "Edm.String", "key": true},
            {"name": "title", "type": "Edm.String"},
            {"name": "content", "type": "Edm.String"},
            {"name": "workspace", "type": "Edm.String"},
            {"name": "updatedAt", "type": "Edm.String"}
        ]}),
    )
    .await;
    let mark = p.stack.journal_mark().await;
    let (o, v) = p.run("ai", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains("BreakingIndexChange") && last.contains("field updatedAt of index vibedata-docs"), "{last}");
    assert_eq!(
        (v["changes"].as_u64(), v["changed"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "nothing changed: {v}"
    );
    assert_eq!(ai_writes(&p.stack, mark).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_changed_agent_gets_exactly_one_new_version_and_an_unchanged_one_none() {
    let p = platform("ai_agents").await;
    ok(&p.run("ai", &[]).0);
    // Someone edits the triage agent's instructions by hand: the release's definition is restored
    // as one new version; the assistant is left alone.
    let token = p.stack.token("https://ai.azure.com").await;
    let url = format!("{}/agents/triage/versions?api-version=v1", p.stack.var("VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"));
    let body = json!({"definition": {"kind": "prompt", "model": "gpt-4o", "instructions": "Say P1 to everything."}});
    let r = p.stack.http().post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(agent(&p.stack, "triage").await.pointer("/versions/latest/version").and_then(Value::as_str), Some("2"));

    let mark = p.stack.journal_mark().await;
    let (o, v) = p.run("ai", &[]);
    ok(&o);
    assert_eq!(v["changes"], 1, "{v}");
    assert_eq!(action(&v, "agents", "triage"), "updated");
    assert_eq!(action(&v, "agents", "assistant"), "unchanged");
    let latest = agent(&p.stack, "triage").await;
    assert_eq!(latest.pointer("/versions/latest/version").and_then(Value::as_str), Some("3"));
    assert_eq!(
        latest.pointer("/versions/latest/definition/instructions").and_then(Value::as_str),
        Some("Classify the ticket as P1, P2 or P3 and say why in one sentence.")
    );
    let writes = ai_writes(&p.stack, mark).await;
    assert_eq!(writes.len(), 1, "exactly one POST: {writes:?}");
}

#[tokio::test]
async fn a_hosted_agent_whose_image_pull_fails_is_named_with_its_code() {
    let p = platform("ai_hosted").await;
    let r = p
        .stack
        .http()
        .post(format!("{}/ai/fail-hosted", p.stack.control()))
        .json(&json!({"agent": "assistant"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (o, v) = p.run("ai", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains("image_pull_failed") && last.contains("hosted agent assistant"), "{last}");
    assert_eq!(v["error"]["code"], "image_pull_failed");
}

#[tokio::test]
async fn a_dry_run_plans_from_the_real_state_and_writes_nothing() {
    let p = platform("ai_dry").await;
    let mark = p.stack.journal_mark().await;
    let o = p.stack.cli(&p.env(&[]), &["run", "ai", "--dry-run", "--json"]);
    ok(&o);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["changes"], 5, "{plan}");
    assert_eq!(ai_writes(&p.stack, mark).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_racing_writers_412_is_read_again_and_converges() {
    let p = platform("ai_race").await;
    put_index(
        &p.stack,
        json!({"name": "vibedata-tickets", "fields": [
            {"name": "ticketId", "type": "Edm.String", "key": true},
            {"name": "subject", "type": "Edm.String", "searchable": true}
        ]}),
    )
    .await;
    // Two runners of two deployments (two locks) read the same ETag before either writes: every
    // call on the index is held 1.5 s, so both reads land before the first write.
    p.stack
        .arm_fault(json!({"api": "search.indexes", "kind": "latency", "count": 12, "latencyMs": 1500, "pathContains": "vibedata-tickets"}))
        .await;
    let mark = p.stack.journal_mark().await;
    let bin = env!("CARGO_BIN_EXE_vibedata-bootstrap");
    let spawn = |deployment: &str| {
        let mut env = p.env(&[]);
        env.insert("VIBEDATA_DEPLOYMENT_ID".into(), deployment.into());
        std::process::Command::new(bin).env_clear().envs(&env).args(["run", "ai"]).output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("race-a"));
        let b = s.spawn(|| spawn("race-b"));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    ok(&a);
    ok(&b);
    let statuses: Vec<u64> = p
        .stack
        .journal_since(mark)
        .await
        .iter()
        .filter(|e| {
            e["api"] == "search.indexes"
                && e["method"] == "PUT"
                && e["path"].as_str().unwrap_or("").contains("vibedata-tickets")
        })
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert!(statuses.contains(&412), "the second writer met a 412: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one update won: {statuses:?}");
    assert_eq!(get_index(&p.stack, "vibedata-tickets").await["fields"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_search_rbac_window_and_throttling_are_waited_out() {
    let p = platform("ai_rbac").await;
    p.stack.arm_fault(json!({"api": "search.indexes", "kind": "rbac", "seconds": 3})).await;
    p.stack.arm_fault(json!({"api": "foundry.agents", "kind": "throttle", "count": 2, "retryAfter": 1})).await;
    let (o, v) = p.run("ai", &[]);
    ok(&o);
    assert_eq!(v["changes"], 5, "{v}");
    assert!(stdout(&o).contains("waiting for role assignment"), "the wait is announced");
}

/// Registry Bootstrap records every index, asset and agent the release names, as the data planes
/// report them; Health Bootstrap checks each again, and a deleted index is named by both.
#[tokio::test]
async fn the_registry_records_every_object_and_health_checks_each() {
    let p = platform("ai_registry").await;
    ok(&p.run("database", &[]).0);
    ok(&p.run("ai", &[]).0);
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    let recorded = |v: &Value| -> Vec<(String, String, String, String)> {
        v["summary"]["releaseObjects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] != "helmRelease")
            .map(|x| {
                let s = |k: &str| x[k].as_str().unwrap_or("-").to_owned();
                (s("kind"), s("host"), s("name"), s("state"))
            })
            .collect()
    };
    let project = "ais-vibedata-local/proj-vibedata-local";
    let search = "srch-vibedata-local";
    let t = |k: &str, h: &str, n: &str, s: &str| (k.to_owned(), h.to_owned(), n.to_owned(), s.to_owned());
    assert_eq!(
        recorded(&v),
        [
            t("agent", project, "assistant", "active"),
            t("agent", project, "triage", "active"),
            t("indexAsset", project, "docs-index", "present"),
            t("searchIndex", search, "vibedata-docs", "present"),
            t("searchIndex", search, "vibedata-tickets", "present"),
        ],
        "{v}"
    );
    assert_eq!(v["summary"]["releaseObjectsMissing"], json!([]));
    let etag = get_index(&p.stack, "vibedata-docs").await["@odata.etag"].as_str().unwrap().to_owned();
    let sql =
        format!("SELECT count(*) FROM registry.release_objects WHERE kind = 'searchIndex' AND version = '{etag}'");
    assert_eq!(p.scalar(&sql).await, 1, "the index's ETag is its recorded version");
    let mark = p.stack.journal_mark().await;
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("unchanged"), Some(0)), "{v}");
    assert_eq!(ai_writes(&p.stack, mark).await, Vec::<String>::new());

    let never = [("VIBEDATA_HEALTH_FAIL_ON", "never")];
    ok(&p.run("health", &never).0);
    for key in [
        format!("{search}/searchIndex:vibedata-docs"),
        format!("{search}/searchIndex:vibedata-tickets"),
        format!("{project}/indexAsset:docs-index"),
        format!("{project}/agent:assistant"),
        format!("{project}/agent:triage"),
    ] {
        let (state, detail) = p.health_state(&key).await;
        assert_eq!(state, "healthy", "{key}: {detail}");
    }

    // Another writer deletes an index: health names it, and the registry stops recording it.
    let r = p
        .stack
        .http()
        .delete(search_url(&p.stack, "vibedata-tickets"))
        .header("api-key", p.stack.var("VIBEDATA_SEARCH_ADMIN_KEY"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "DELETE index: {}", r.status());
    let (o, v) = p.run("health", &never);
    ok(&o);
    let (state, detail) = p.health_state(&format!("{search}/searchIndex:vibedata-tickets")).await;
    assert_eq!(state, "unhealthy", "{v}");
    assert!(detail.contains("vibedata-tickets"), "{detail}");
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    assert_eq!(
        v["summary"]["releaseObjectsMissing"],
        json!(["searchIndex vibedata-tickets on srch-vibedata-local"]),
        "{v}"
    );
    assert!(v["changed"].to_string().contains("searchIndex vibedata-tickets"), "{v}");
}
