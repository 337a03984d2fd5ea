//! The fault matrix: every emulator API the Day-0 sequence calls, crossed with the transient
//! faults Azure gives (429 with `Retry-After`, 5xx, a connection reset, a slow answer, an RBAC 403
//! window), must be outlasted: the whole sequence still succeeds. Permanent errors (a 400, a 404)
//! must fail fast, in under 5 s, with the one-line error naming the phase, the resource and the
//! code.
//!
//! Size: each rotation arms one fault per API, the kinds shifted by one per rotation, and runs the
//! seven phases on a fresh platform; five rotations cover every (API, kind) pair.
//! `VIBEDATA_FAULT_ROTATIONS` (default 1 in CI; 5 for the whole matrix). Runs alone
//! (.config/nextest.toml): faults are armed per API, not per test.

mod common;
#[allow(dead_code)]
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use setup::*;

/// The emulator APIs (journal names) the seven phases call, the first phase that calls each (its
/// fault is armed just before that phase, so an RBAC window, which lasts seconds, meets a call),
/// and whether the service has an RBAC answer (token services do not: their 401/403 mean a bad
/// credential, not a role in flight).
const APIS: &[(&str, &str, bool)] = &[
    ("identity", "artifacts", false),
    ("keyvault", "artifacts", true),
    ("acr.exchange", "artifacts", false),
    ("acr.token", "artifacts", false),
    ("acr.importImage", "artifacts", true),
    ("acr.registries", "artifacts", true),
    ("automation", "runbooks", true),
    ("aks.runCommand", "airbyte", true),
    ("aks.managedClusters", "airbyte", true),
    ("arm.resources", "airbyte", true),
    ("search.indexes", "ai", true),
    ("foundry.indexes", "ai", true),
    ("foundry.agents", "ai", true),
    ("arm.resourceGroups", "registry", true),
];

const KINDS: [&str; 5] = ["throttle", "server-error", "reset", "latency", "rbac"];

const PHASES: [&str; 7] = ["artifacts", "runbooks", "database", "airbyte", "ai", "registry", "health"];

fn fault(api: &str, kind: &str) -> Value {
    match kind {
        "throttle" => json!({"api": api, "kind": kind, "count": 1, "retryAfter": 1}),
        "latency" => json!({"api": api, "kind": kind, "count": 2, "latencyMs": 1500}),
        "rbac" => json!({"api": api, "kind": kind, "seconds": 3, "fromFirstCall": true}),
        _ => json!({"api": api, "kind": kind, "count": 1}),
    }
}

/// The journal status a fault leaves on its API (`None`: it answers as usual, later). Foundry
/// answers a missing data action with 401, every other service with 403.
fn trace(kind: &str, api: &str) -> Option<Option<u16>> {
    match kind {
        "throttle" => Some(Some(429)),
        "server-error" => Some(Some(500)),
        "rbac" if api.starts_with("foundry") => Some(Some(401)),
        "rbac" => Some(Some(403)),
        // A reset connection is journaled without a status.
        "reset" => Some(None),
        _ => None,
    }
}

fn airbyte_names(p: &Platform) -> (String, String) {
    (format!("{}_ab", p.db), format!("{}-ab-pw", p.db.replace('_', "-")))
}

async fn reset_shared_planes(stack: &common::Stack) {
    reset_airbyte(stack).await;
    for plane in ["ai", "automation/runbooks", "faults"] {
        let r = stack.http().delete(format!("{}/{plane}", stack.control())).send().await.unwrap();
        assert!(r.status().is_success(), "resetting {plane}: {}", r.status());
    }
}

#[tokio::test]
async fn transient_faults_on_every_api_are_outlasted_by_the_whole_sequence() {
    let rotations = std::env::var("VIBEDATA_FAULT_ROTATIONS").ok().map(|v| v.parse::<usize>().unwrap()).unwrap_or(1);
    for rotation in 0..rotations.clamp(1, KINDS.len()) {
        let p = Platform::with_release(
            &format!("faults{rotation}"),
            &format!("2026.12.89-{}-{rotation}", std::process::id()),
        )
        .await;
        p.publish();
        reset_shared_planes(&p.stack).await;
        let (db, secret) = airbyte_names(&p);
        let extra = [
            ("VIBEDATA_AIRBYTE_DATABASE", db.as_str()),
            ("VIBEDATA_AIRBYTE_DB_USER", db.as_str()),
            ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", secret.as_str()),
        ];
        let mut armed = Vec::new();
        let mut recovered = Vec::new();
        let mark = p.stack.journal_mark().await;
        let started = Instant::now();
        for phase in PHASES {
            for (i, (api, _, rbac)) in APIS.iter().enumerate().filter(|(_, a)| a.1 == phase) {
                let mut kind = KINDS[(i + rotation) % KINDS.len()];
                if kind == "rbac" && !rbac {
                    // No RBAC answer on a token service: a second throttle there instead.
                    kind = "throttle";
                }
                p.stack.arm_fault(fault(api, kind)).await;
                armed.push((*api, kind));
            }
            let (mut o, mut out) = p.run(phase, &extra);
            // A reset leaves a request that is not idempotent (an AKS runCommand POST starts a
            // pod each time) undecided, so it is never resent blindly: the phase fails naming the
            // reset, and its rerun, which reads the state first, finishes the work.
            let line = common::last_stderr_line(&o);
            if !o.status.success() && line.contains("Reset after 0 retries") {
                recovered.push(format!("{phase}: {line}"));
                (o, out) = p.run(phase, &extra);
            }
            assert!(
                o.status.success(),
                "rotation {rotation}: {phase} did not outlast {armed:?}\n{}",
                common::last_stderr_line(&o)
            );
            assert_ne!(out["status"], "failed", "{phase}: {out:#}");
        }
        let journal = p.stack.journal_since(mark).await;
        let mut missed = Vec::new();
        for (api, kind) in &armed {
            if let Some(status) = trace(kind, api) {
                let hit = journal.iter().any(|e| e["api"] == *api && e["status"].as_u64().map(|s| s as u16) == status);
                if !hit {
                    missed.push(format!("{api} {kind}"));
                }
            }
        }
        assert!(missed.is_empty(), "rotation {rotation}: faults that never answered a call: {missed:?}");
        let left = p.stack.control_get("faults").await;
        let left: BTreeSet<String> = left
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["fault"]["kind"] != "rbac" && f["fault"]["kind"] != "latency")
            .map(|f| format!("{} {}", f["fault"]["api"], f["fault"]["kind"]))
            .collect();
        assert!(left.is_empty(), "rotation {rotation}: faults armed on APIs the sequence never called: {left:?}");
        eprintln!(
            "rotation {rotation}: {armed:?} outlasted in {:.1} s; rerun after a reset of a request that is not idempotent: {recovered:?}",
            started.elapsed().as_secs_f64()
        );
        p.drop().await;
    }
}

#[tokio::test]
async fn permanent_errors_fail_fast_naming_the_phase_the_resource_and_the_code() {
    let p = Platform::with_release("permanent", &format!("2026.12.90-{}", std::process::id())).await;
    p.publish();
    reset_shared_planes(&p.stack).await;
    // (phase, the fault, what the last line must name); each runs on what the earlier left.
    let cases: [(&str, Value, &[&str]); 3] = [
        (
            "artifacts",
            json!({"api": "keyvault", "kind": "status", "status": 404, "code": "SecretNotFound", "count": 1,
                   "pathContains": "publisher-pull-credential"}),
            &["artifacts", "publisher-pull-credential", "SecretNotFound"],
        ),
        (
            "artifacts",
            json!({"api": "acr.importImage", "kind": "status", "status": 400, "code": "InvalidParameters", "count": 1}),
            &["artifacts", "vibedata/", "InvalidParameters"],
        ),
        (
            "runbooks",
            json!({"api": "automation", "kind": "status", "status": 400, "code": "BadRequest", "count": 1}),
            &["runbooks", "automationAccounts/", "BadRequest"],
        ),
    ];
    let mut ran = BTreeSet::new();
    for (phase, spec, names) in cases {
        if phase == "runbooks" && ran.insert("artifacts-ok") {
            ok(&p.run("artifacts", &[]).0);
        }
        p.stack.arm_fault(spec.clone()).await;
        let started = Instant::now();
        let (o, out) = p.run(phase, &[]);
        let took = started.elapsed();
        let line = common::last_stderr_line(&o);
        assert_eq!(o.status.code(), Some(1), "{phase} with {spec}: {line}");
        assert!(took < Duration::from_secs(5), "{phase} with {spec} took {took:?} to fail: {line}");
        for name in names {
            assert!(line.contains(name), "{phase} with {spec}: the last line does not name {name:?}: {line}");
        }
        assert_eq!(out["status"], "failed");
        let r = p.stack.http().delete(format!("{}/faults", p.stack.control())).send().await.unwrap();
        assert!(r.status().is_success());
    }
    p.drop().await;
}
