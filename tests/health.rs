//! Health Bootstrap over the local stack: DNS through the stack's dnsmasq stand-in, TCP and TLS
//! to the real listeners, and the service probes (Key Vault canary, Blob listing, Postgres,
//! ACR `/v2/`, Automation runbooks, the emulator-served HTTP health endpoints).
//!
//! The failure test flips DNS records, makes emulator-served components fail and arms faults on
//! shared APIs, one at a time, restoring each before the next; it runs alone in nextest
//! (.config/nextest.toml), and a process-wide lock serialises this binary under `cargo test`.

mod common;
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use common::*;
use serde_json::{json, Value};
use setup::*;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const KV: &str = "kv-vibedata-local";
const STORAGE: &str = "stvibedatalocal";
const ACR: &str = "vibedatacustomer";
const AUTOMATION: &str = "aa-vibedata-local";
const PORTAL: &str = "app-vibedata-local-portal";
const API: &str = "app-vibedata-local-api";

/// A platform with its registry recorded, ready for `run health`.
async fn platform(name: &str) -> Platform {
    let p = Platform::new(name).await;
    // What earlier Airbyte and AI tests left on the stack's one cluster, Search service and
    // project (a failed hosted agent, a stuck release) would be recorded and checked here.
    reset_airbyte(&p.stack).await;
    let r = p.stack.http().delete(format!("{}/ai", p.stack.control())).send().await.unwrap();
    assert!(r.status().is_success(), "resetting the AI planes: {}", r.status());
    p.prepare(true).await;
    ok(&p.run("registry", &[]).0);
    p
}

fn component(v: &Value, name: &str) -> String {
    v["summary"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["state"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

fn overall(v: &Value) -> &str {
    v["summary"]["overall"].as_str().unwrap_or("missing")
}

/// The components that are not Healthy, with their states.
fn unhealthy_components(v: &Value) -> Vec<(String, String)> {
    v["summary"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] != "Healthy")
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["state"].as_str().unwrap().to_owned()))
        .collect()
}

fn failing_checks(v: &Value, component: &str) -> Vec<String> {
    v["summary"]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["component"] == component)
        .map(|f| f["check"].as_str().unwrap().to_owned())
        .collect()
}

async fn apps(stack: &Stack, name: &str, health: &str) {
    let r = stack
        .http()
        .put(format!("{}/apps/{name}", stack.control()))
        .json(&json!({"health": health}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "apps {name} {health}: {}", r.status());
}

async fn reset(stack: &Stack) {
    let http = stack.http();
    http.delete(format!("{}/apps", stack.control())).send().await.unwrap();
    http.delete(format!("{}/faults", stack.control())).send().await.unwrap();
    let o = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack"))
        .args(["dns-reset", "--dir", stack.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "dns-reset: {}", String::from_utf8_lossy(&o.stderr));
}

fn dns_set(stack: &Stack, name: &str, ip: &str) {
    let o = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack"))
        .args(["dns-set", "--dir", stack.dir.to_str().unwrap(), name, ip])
        .output()
        .unwrap();
    assert!(o.status.success(), "dns-set: {}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test]
async fn a_healthy_platform_is_recorded_and_a_rerun_is_unchanged() {
    let _g = ONE_AT_A_TIME.lock().await;
    let p = platform("health_ok").await;
    reset(&p.stack).await;
    let (o, v) = p.run("health", &[]);
    ok(&o);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(overall(&v), "Healthy", "{}", v["summary"]["failing"]);
    // Every component the stack runs or serves; AI Search and Foundry have no service probe
    // (optional, Unknown) and are Healthy on their network checks.
    for c in [
        KV,
        STORAGE,
        ACR,
        "psql-vibedata-local",
        AUTOMATION,
        PORTAL,
        API,
        "func-vibedata-local",
        "agw-vibedata-local",
        "aks-vibedata-local",
        "srch-vibedata-local",
        "ais-vibedata-local",
    ] {
        assert_eq!(component(&v, c), "Healthy", "{c}");
    }
    let checks = v["summary"]["checks"].as_u64().unwrap() as i64;
    assert_eq!(
        p.scalar("SELECT count(*) FROM registry.health_status WHERE check_name = 'overall' AND state = 'healthy'")
            .await,
        1
    );
    assert_eq!(p.scalar("SELECT count(*) FROM registry.health_results WHERE state = 'unknown' AND NOT required AND check_name LIKE 'srch-vibedata-local/service:%'").await, 1);
    assert_eq!(
        p.scalar("SELECT count(*) FROM registry.health_results WHERE observed IS NOT NULL AND duration_ms >= 0").await,
        checks - 2
    );

    let (o, v) = p.run("health", &[]);
    ok(&o);
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("unchanged"), Some(0)));
    // History grows; the status does not move.
    assert_eq!(p.scalar("SELECT count(*) FROM registry.health_results").await, 2 * checks);
    assert_eq!(p.scalar("SELECT count(*) FROM registry.health_runs WHERE overall = 'healthy'").await, 2);
    let canary: Value = serde_json::from_slice(&std::fs::read(p.stack.dir.join("emulator.json")).unwrap()).unwrap();
    let value = canary["secrets"]["health-canary"].as_str().unwrap();
    assert!(
        !p.registry_rows().await.join("\n").contains(value) && !v.to_string().contains(value),
        "the canary's value is never recorded"
    );
    p.drop().await;
}

#[tokio::test]
async fn exclusive_each_failing_check_sets_its_component_and_the_overall_status() {
    let _g = ONE_AT_A_TIME.lock().await;
    let p = platform("health_faults").await;
    let stack = &p.stack;
    reset(stack).await;
    let inv = inventory(stack).await;
    let kv_private = inv["endpoints"].as_array().unwrap().iter().find(|e| e["component"] == KV).unwrap()["fqdns"][0]
        .as_str()
        .unwrap()
        .to_owned();
    // Quick failures: no retry ladder in front of a probe that is meant to fail.
    let fast = [("VIBEDATA_MAX_RETRIES", "0"), ("VIBEDATA_HEALTH_TIMEOUT_SECS", "3")];
    let run = |extra: &[(&str, &str)]| {
        let mut all = fast.to_vec();
        all.extend_from_slice(extra);
        p.run("health", &all)
    };
    let (o, v) = run(&[]);
    ok(&o);
    assert_eq!(overall(&v), "Healthy", "{}", v["summary"]["failing"]);

    // DNS: the stand-in answers another address than the registry's.
    dns_set(stack, &kv_private, "10.1.2.3");
    let (o, v) = run(&[]);
    assert_eq!(o.status.code(), Some(1), "Unhealthy exits 1");
    assert_eq!(v["status"], "failed");
    assert_eq!((overall(&v), unhealthy_components(&v)), ("Unhealthy", vec![(KV.to_owned(), "Unhealthy".to_owned())]));
    let f = &v["summary"]["failing"][0];
    assert_eq!(
        (f["check"].as_str().unwrap(), f["observed"].as_str().unwrap(), f["code"].as_str().unwrap()),
        (format!("dns:{kv_private}").as_str(), "10.1.2.3", "DnsMismatch")
    );
    assert!(last_stderr_line(&o).contains("Unhealthy"), "{}", last_stderr_line(&o));
    assert_eq!(
        p.scalar(&format!(
            "SELECT count(*) FROM registry.health_status WHERE check_name = '{KV}' AND state = 'unhealthy'"
        ))
        .await,
        1
    );
    dns_set(stack, &kv_private, "-");
    let (_, v) = run(&[]);
    assert_eq!(failing_checks(&v, KV), [format!("dns:{kv_private}")], "NXDOMAIN is a failure too");
    reset(stack).await;

    // TCP (and so TLS): the blob endpoint served on a port where nothing listens.
    let ports: String = stack
        .var("VIBEDATA_ENDPOINT_PORTS")
        .split(',')
        .map(|kv| {
            if kv.starts_with("stvibedatalocal.privatelink.blob.") {
                format!("{}=1", kv.split('=').next().unwrap())
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let (o, v) = run(&[("VIBEDATA_ENDPOINT_PORTS", &ports)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(unhealthy_components(&v), [(STORAGE.to_owned(), "Unhealthy".to_owned())]);
    let failing = failing_checks(&v, STORAGE);
    assert!(
        failing.iter().any(|c| c.starts_with("tcp:")) && failing.iter().any(|c| c.starts_with("tls:")),
        "{failing:?}"
    );

    // TLS: one emulator-served component refuses the handshake for its names.
    apps(stack, PORTAL, "tls-fail").await;
    let (o, v) = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(unhealthy_components(&v), [(PORTAL.to_owned(), "Unhealthy".to_owned())]);
    assert!(failing_checks(&v, PORTAL).iter().all(|c| !c.starts_with("tcp:")), "TCP still connects");
    assert!(failing_checks(&v, PORTAL).iter().any(|c| c.starts_with("tls:")));
    reset(stack).await;

    // HTTP health: Degraded is Degraded (exit 0 by default, 1 when configured), Unhealthy fails.
    apps(stack, API, "Degraded").await;
    let (o, v) = run(&[]);
    ok(&o);
    assert_eq!((overall(&v), unhealthy_components(&v)), ("Degraded", vec![(API.to_owned(), "Degraded".to_owned())]));
    assert_eq!(failing_checks(&v, API), ["service:http-health"]);
    let (o, _) = run(&[("VIBEDATA_HEALTH_FAIL_ON", "degraded")]);
    assert_eq!(o.status.code(), Some(1));
    apps(stack, API, "Unhealthy").await;
    let (o, v) = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!((overall(&v), component(&v, API).as_str()), ("Unhealthy", "Unhealthy"));
    reset(stack).await;

    // Key Vault: the canary cannot be read.
    stack
        .arm_fault(
            json!({"api": "keyvault", "kind": "server-error", "count": 1000, "pathContains": "/secrets/health-canary"}),
        )
        .await;
    let (_, v) = run(&[]);
    assert_eq!(unhealthy_components(&v), [(KV.to_owned(), "Unhealthy".to_owned())]);
    assert_eq!(failing_checks(&v, KV), ["service:key-vault-canary"]);
    reset(stack).await;

    // ACR: no registry token.
    stack.arm_fault(json!({"api": "acr.token", "kind": "server-error", "count": 1000})).await;
    let (_, v) = run(&[]);
    assert_eq!(unhealthy_components(&v), [(ACR.to_owned(), "Unhealthy".to_owned())]);
    assert_eq!(failing_checks(&v, ACR), ["service:registry-token"]);
    reset(stack).await;

    // Automation: the runbooks cannot be listed.
    stack
        .arm_fault(json!({"api": "automation", "kind": "server-error", "count": 1000, "pathContains": "/runbooks"}))
        .await;
    let (_, v) = run(&[]);
    assert_eq!(unhealthy_components(&v), [(AUTOMATION.to_owned(), "Unhealthy".to_owned())]);
    reset(stack).await;

    // Blob: the artifact container is missing (and with it the release, so the runbook
    // expectation is Unknown).
    let (o, v) = run(&[("VIBEDATA_ARTIFACT_CONTAINER", "no-such-container")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(component(&v, STORAGE), "Unhealthy");
    assert_eq!(failing_checks(&v, STORAGE), ["service:blob-list"]);
    assert_eq!(component(&v, AUTOMATION), "Unknown");
    assert_eq!(overall(&v), "Unhealthy");

    // Everything restored: Healthy again, and the return is a set of transitions.
    let (o, v) = run(&[]);
    ok(&o);
    assert_eq!(overall(&v), "Healthy", "{}", v["summary"]["failing"]);
    assert!(v["changes"].as_u64().unwrap() > 0);
    p.drop().await;
}
