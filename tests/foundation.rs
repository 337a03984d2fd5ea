//! The foundation over the real local stack: preflight, dry run, the shared retry/LRO/error core
//! against the emulator's faults, the ledger lease, Key Vault soft-delete recovery, and Blob over
//! HTTPS with a bearer token from the emulator's identity endpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;
use vibedata_bootstrap::azure::arm::GROUP_READ;
use vibedata_bootstrap::azure::discovery::LIST;
use vibedata_bootstrap::azure::identity::Secret;
use vibedata_bootstrap::azure::permission::Permission;
use vibedata_bootstrap::azure::pipeline::Request;
use vibedata_bootstrap::azure::AzureError;
use vibedata_bootstrap::config::{Config, Source};
use vibedata_bootstrap::context::Context;
use vibedata_bootstrap::ledger::LedgerError;

/// A library-level context over the stack, as `run` builds it.
fn context(stack: &Stack, test: &str, overrides: &[(&str, &str)]) -> Context {
    let env = stack.env_for(test, overrides);
    // azure_identity reads the identity endpoint from the process environment; every test sets
    // the same values, so concurrent tests do not disturb each other.
    std::env::set_var("IDENTITY_ENDPOINT", &env["IDENTITY_ENDPOINT"]);
    std::env::set_var("IDENTITY_HEADER", &env["IDENTITY_HEADER"]);
    let source = Source::from_env(env, None).unwrap();
    Context::new(Config::validate(&source, &[]).unwrap()).unwrap()
}

fn rg_path(stack: &Stack, rg: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{rg}", stack.var("VIBEDATA_SUBSCRIPTION_ID"))
}

#[tokio::test]
async fn preflight_passes_and_reports_each_check() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let mut env = stack.env_for("preflight-ok", &[]);
    env.insert("AZ_SCRIPTS_OUTPUT_PATH".into(), out.to_str().unwrap().into());
    let o = stack.cli(&env, &["run", "preflight"]);
    assert!(o.status.success(), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let v = read_outputs(&out);
    assert_eq!(v["phase"], "preflight");
    assert_eq!(v["status"], "unchanged");
    assert_eq!(v["changes"], 0);
    let names: Vec<&str> =
        v["summary"]["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for expected in [
        "configuration",
        "token https://management.azure.com/.default",
        "token https://storage.azure.com/.default",
        "token https://vault.azure.net/.default",
        "resource manager",
        "ledger",
        "key vault",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    assert!(v["summary"]["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true));
    // Logs are JSON lines when stdout is not a terminal.
    for line in stdout(&o).lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    // Secrets never reach the logs or outputs.
    let publisher = stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD");
    assert!(!stdout(&o).contains(publisher) && !std::fs::read_to_string(&out).unwrap().contains(publisher));
}

#[tokio::test]
async fn dry_run_mutates_nothing_not_even_the_ledger() {
    let stack = Stack::get();
    let ctx = context(&stack, "dry-run", &[]);
    let deployment = ctx.config.deployment_id.clone();
    let mark = stack.journal_mark().await;
    let env = stack.env_for("dry-run", &[]);
    let o = stack.cli(&env, &["run", "preflight", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing written to the ledger for this deployment...
    assert_eq!(ctx.ledger.container().get(&format!("deployments/{deployment}/preflight.json")).await.unwrap(), None);
    // ...and no mutating call reached the shared resource group (other tests use their own).
    let shared_rg = stack.var("VIBEDATA_RESOURCE_GROUP").to_ascii_lowercase();
    let mutating: Vec<_> = stack
        .journal_since(mark)
        .await
        .into_iter()
        .filter(|e| e["method"] != "GET" && e["method"] != "HEAD")
        .filter(|e| {
            e["path"].as_str().unwrap_or("").to_ascii_lowercase().contains(&format!("/resourcegroups/{shared_rg}"))
        })
        .collect();
    assert!(mutating.is_empty(), "{mutating:?}");
    // A real run does write it: the check above could have failed.
    let o = stack.cli(&env, &["run", "preflight"]);
    assert!(o.status.success());
    assert!(ctx.ledger.container().get(&format!("deployments/{deployment}/preflight.json")).await.unwrap().is_some());
}

/// What the test's own deployment and group calls need (no phase makes them).
const DEPLOY: Permission =
    Permission::action("Microsoft.Resources/deployments/write", "Microsoft.Resources/resourceGroups");
const DEPLOY_READ: Permission =
    Permission::action("Microsoft.Resources/deployments/read", "Microsoft.Resources/resourceGroups");
const GROUP_DELETE: Permission =
    Permission::action("Microsoft.Resources/subscriptions/resourceGroups/delete", "Microsoft.Resources/resourceGroups");

#[tokio::test]
async fn both_long_running_operation_styles_complete() {
    let stack = Stack::get();
    // Deployments and deleting a group are the deployer's to do, not the bootstrap identity's
    // (the stack holds it to the template's grants): the client's LRO handling is what is tested.
    let deployer = stack.var("VIBEDATA_STACK_DEPLOYER_CLIENT_ID").to_owned();
    let ctx = context(&stack, "lro", &[("VIBEDATA_IDENTITY_CLIENT_ID", &deployer)]);
    let rg = stack.resource_group(&format!("rg-lro-{}", std::process::id())).await;

    // PUT deployment: 201 + Azure-AsyncOperation.
    let dep = format!("{}/providers/Microsoft.Resources/deployments/dep1", rg_path(&stack, &rg));
    let req = Request::new(Method::PUT, ctx.arm.url(&dep, "2021-04-01"), dep.clone(), &DEPLOY)
        .polled_with(&DEPLOY_READ)
        .json(&json!({"properties": {"mode": "Incremental", "template": {}, "parameters": {}}}));
    let body = ctx.arm.call(req, Duration::from_secs(60)).await.unwrap().expect("final resource");
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");

    // A deployment that fails reports the operation's error.
    let bad = format!("{}/providers/Microsoft.Resources/deployments/dep-fail", rg_path(&stack, &rg));
    let req = Request::new(Method::PUT, ctx.arm.url(&bad, "2021-04-01"), bad.clone(), &DEPLOY)
        .polled_with(&DEPLOY_READ)
        .json(&json!({"properties": {"mode": "Incremental", "template": {}, "parameters": {"fail": {"value": true}}}}));
    match ctx.arm.call(req, Duration::from_secs(60)).await {
        Err(AzureError::OperationFailed { status, .. }) => assert_eq!(status, "Failed"),
        other => panic!("expected a failed operation, got {other:?}"),
    }

    // DELETE resource group: 202 + Location.
    let path = rg_path(&stack, &rg);
    ctx.arm
        .call(
            Request::new(Method::DELETE, ctx.arm.url(&path, "2021-04-01"), path.clone(), &GROUP_DELETE)
                .polled_with(&GROUP_READ),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        ctx.arm.get_opt::<serde_json::Value>(&path, "2021-04-01", &GROUP_READ).await.unwrap().is_none(),
        "group still there"
    );
}

#[tokio::test]
async fn paging_follows_next_link() {
    let stack = Stack::get();
    let ctx = context(&stack, "paging", &[]);
    let path = format!("{}/resources", rg_path(&stack, stack.var("VIBEDATA_RESOURCE_GROUP")));
    let items: Vec<serde_json::Value> = ctx.arm.list(&path, "2021-04-01", &LIST).await.unwrap();
    let mark = stack.journal_mark().await;
    let again: Vec<serde_json::Value> = ctx.arm.list(&path, "2021-04-01", &LIST).await.unwrap();
    let pages = stack.journal_since(mark).await.into_iter().filter(|e| e["api"] == "arm.resources").count();
    assert_eq!(items.len(), again.len());
    assert!(pages > 1, "expected several pages, got {pages} for {} items", items.len());
    let mut ids: Vec<_> = items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "paging repeated or lost items");
}

/// Each fault is armed for this test's own resource group only, so concurrent tests are not hit.
async fn survives(stack: &Stack, test: &str, fault: serde_json::Value) -> (u64, usize) {
    let ctx = context(stack, test, &[]);
    let rg = stack.resource_group(&format!("rg-{test}-{}", std::process::id())).await;
    let path = rg_path(stack, &rg);
    let mut spec = fault;
    spec["pathContains"] = json!(rg);
    stack.arm_fault(spec).await;
    let mark = stack.journal_mark().await;
    let started = Instant::now();
    let got: serde_json::Value =
        ctx.arm.get(&path, "2021-04-01", &GROUP_READ).await.unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_eq!(got["name"], rg.as_str());
    let attempts =
        stack.journal_since(mark).await.into_iter().filter(|e| e["path"].as_str().unwrap_or("").ends_with(&rg)).count();
    (started.elapsed().as_millis() as u64, attempts)
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after() {
    let (ms, attempts) = survives(
        &Stack::get(),
        "throttle",
        json!({"api": "arm.resourceGroups", "kind": "throttle", "count": 2, "retryAfter": 1}),
    )
    .await;
    assert_eq!(attempts, 3);
    assert!(ms >= 2000, "Retry-After of 1 s twice was not honoured: {ms} ms");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (_, attempts) = survives(
        &Stack::get(),
        "server-error",
        json!({"api": "arm.resourceGroups", "kind": "server-error", "count": 3}),
    )
    .await;
    assert_eq!(attempts, 4);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let (_, attempts) =
        survives(&Stack::get(), "reset", json!({"api": "arm.resourceGroups", "kind": "reset", "count": 2})).await;
    assert!(attempts >= 1, "the final attempt must reach the emulator");
}

/// The RBAC tests fault the shared resource group (a full preflight reads resources that only
/// exist there), briefly; they run one at a time (.config/nextest.toml), and any other test that
/// meets the fault just waits it out, as a real run would.
#[tokio::test]
async fn rbac_propagation_is_waited_out_within_the_deadline() {
    let stack = Stack::get();
    let rg = stack.var("VIBEDATA_RESOURCE_GROUP").to_owned();
    stack.arm_fault(json!({"api": "arm.resourceGroups", "kind": "rbac", "seconds": 3, "pathContains": format!("/resourcegroups/{rg}")})).await;
    let env = stack.env_for("rbac", &[("VIBEDATA_RBAC_DEADLINE_SECS", "60")]);
    let started = Instant::now();
    let o = stack.cli(&env, &["run", "preflight"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(2), "the fault was not in force");
    assert!(stdout(&o).contains(&format!("waiting for role assignment on {}", rg_path(&stack, &rg))), "{}", stdout(&o));
}

#[tokio::test]
async fn rbac_that_never_propagates_fails_at_the_deadline() {
    let stack = Stack::get();
    let rg = stack.var("VIBEDATA_RESOURCE_GROUP").to_owned();
    stack.arm_fault(json!({"api": "arm.resourceGroups", "kind": "rbac", "seconds": 5, "pathContains": format!("/resourcegroups/{rg}")})).await;
    let env = stack.env_for("rbac-deadline", &[("VIBEDATA_RBAC_DEADLINE_SECS", "2")]);
    let o = stack.cli(&env, &["run", "preflight"]);
    assert_eq!(o.status.code(), Some(1));
    let last = last_stderr_line(&o);
    assert!(last.contains("AuthorizationFailed") && last.contains("preflight") && last.contains(&rg), "{last}");
    // Once each: the phase, the resource, the code; then the missing action and the hint.
    assert_eq!(last.matches(&format!("/resourceGroups/{rg}")).count(), 1, "{last}");
    assert_eq!(last.matches("AuthorizationFailed").count(), 1, "{last}");
    assert!(last.contains("may not perform") && last.contains("hint:"), "{last}");
    // Let the fault lapse before releasing the group to other tests.
    tokio::time::sleep(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_permanent_client_error_fails_fast_with_one_line() {
    let stack = Stack::get();
    let env = stack.env_for("missing-rg", &[("VIBEDATA_RESOURCE_GROUP", "rg-that-does-not-exist")]);
    let started = Instant::now();
    let o = stack.cli(&env, &["run", "preflight"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10), "a 404 must not be retried");
    let last = last_stderr_line(&o);
    assert!(
        last.contains("preflight") && last.contains("ResourceGroupNotFound") && last.contains("rg-that-does-not-exist"),
        "{last}"
    );
}

#[tokio::test]
async fn a_token_is_never_sent_to_another_host() {
    let stack = Stack::get();
    let ctx = context(&stack, "token-host", &[]);
    // The vault's URL: a different origin from ARM's.
    let url = url::Url::parse(&format!("{}/subscriptions", stack.var("VIBEDATA_KEY_VAULT_URL"))).unwrap();
    match ctx.arm.send(Request::new(Method::GET, url, "elsewhere", &GROUP_READ)).await {
        Err(AzureError::TokenHostMismatch { .. }) => {}
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.status())),
    }
}

#[tokio::test]
async fn two_runners_contend_for_the_ledger_lease() {
    let stack = Stack::get();
    let ctx = context(&stack, "lease", &[]);
    let first = ctx.ledger.lock("artifacts", Duration::from_secs(5)).await.unwrap();
    // A second runner gives up after its wait while the first holds the lock...
    match ctx.ledger.lock("artifacts", Duration::from_secs(1)).await {
        Err(LedgerError::LockTimeout { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two runners held the same phase lock"),
    }
    // ...and gets it once the first releases it, while waiting.
    let ledger = ctx.ledger.clone();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let lock = ledger.lock("artifacts", Duration::from_secs(30)).await.unwrap();
        let waited = started.elapsed();
        lock.release().await;
        waited
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.release().await;
    let waited = waiter.await.unwrap();
    assert!(waited >= Duration::from_millis(1400), "did not wait: {waited:?}");
    // A held lock outlives its 15 s lease because the holder renews it.
    let held = ctx.ledger.lock("runbooks", Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(17)).await;
    assert!(ctx.ledger.lock("runbooks", Duration::from_millis(200)).await.is_err(), "lease expired while held");
    assert!(!held.lost());
    held.release().await;
}

#[tokio::test]
async fn key_vault_set_recovers_a_soft_deleted_name() {
    let stack = Stack::get();
    let ctx = context(&stack, "kv", &[]);
    let name = format!("kv-test-{}", std::process::id());
    ctx.vault.set(&name, &Secret::new("one")).await.unwrap();
    assert_eq!(ctx.vault.get(&name).await.unwrap().expose(), "one");
    // Soft-delete it behind the client's back, as an uninstall would.
    let token = stack.token("https://vault.azure.net").await;
    let r = stack
        .http()
        .delete(format!("{}/secrets/{name}?api-version=7.5", stack.var("VIBEDATA_KEY_VAULT_URL")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(ctx.vault.get(&name).await.unwrap_err().is_not_found());
    // Setting the name again recovers it first instead of failing with ObjectIsDeletedButRecoverable.
    ctx.vault.set(&name, &Secret::new("two")).await.unwrap();
    assert_eq!(ctx.vault.get(&name).await.unwrap().expose(), "two");
}

#[tokio::test]
async fn blob_over_https_with_a_bearer_token() {
    let stack = Stack::get();
    let ctx = context(&stack, "blob", &[]);
    let c = ctx.container("foundation-test").unwrap();
    c.ensure().await.unwrap();
    let name = format!("probe-{}.txt", std::process::id());
    c.put(&name, bytes::Bytes::from_static(b"hello"), "text/plain", None).await.unwrap();
    assert_eq!(c.get(&name).await.unwrap().as_deref(), Some(&b"hello"[..]));
    assert_eq!(c.get("does-not-exist").await.unwrap(), None);
    // Azurite refuses the same request without a token: the bearer path is what is exercised.
    let url = format!("{}/foundation-test/{name}", stack.var("VIBEDATA_STORAGE_BLOB_URL"));
    let anonymous = stack.http().get(url).header("x-ms-version", "2021-12-02").send().await.unwrap();
    assert!(anonymous.status().is_client_error(), "{}", anonymous.status());
}
