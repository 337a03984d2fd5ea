//! The removal suite: take one permission away from the stack identity (the emulator's grant
//! table) and exactly the call that needs it fails, with the service's own denial, exit 1, the
//! action in the last stderr line, and outputs that name what was done.
//!
//! The stack identity holds the template's role assignments (the emulator's grant table is
//! seeded from infra/roles/bootstrap-grants.json), so every phase passing here also proves that
//! those grants suffice on the stack.
//!
//! The binary reaches Blob storage through the emulator's storage front
//! (`VIBEDATA_STACK_STORAGE_FRONT`), which holds Azurite's bearer requests to the grant table,
//! so Storage permissions are enforced here too.
//!
//! Bounded in CI: every phase of the Day-0 sequence loses one permission it needs (the ACR token
//! service, ARM, Automation, Key Vault, Blob storage, AKS runCommand, AI Search, the Foundry data
//! plane, the network reads). With `VIBEDATA_REMOVAL_FULL=1`, every permission of every phase
//! that the emulator enforces runs too.
//!
//! Runs alone in nextest (.config/nextest.toml): the grant table is the emulator's, for everyone.

mod common;
#[allow(dead_code)]
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use common::Stack;
use serde_json::{json, Value};
use setup::*;

/// How long a denied call is waited out as RBAC propagation before it fails.
const RBAC_DEADLINE: (&str, &str) = ("VIBEDATA_RBAC_DEADLINE_SECS", "2");

struct Case {
    phase: &'static str,
    kind: &'static str,
    name: &'static str,
}

/// In RFC-60 order, on one platform, every phase: after each case the permission is given back
/// and the phase runs again, which must succeed (the refusal was the only obstacle, and a rerun
/// after a partial run recovers), so the next case starts from the state it needs.
const BOUNDED: &[Case] = &[
    Case { phase: "artifacts", kind: "action", name: "Microsoft.ContainerRegistry/registries/importImage/action" },
    // After the import: a rerun still reads every tag back (by the identity's registry token).
    Case { phase: "artifacts", kind: "action", name: "Microsoft.ContainerRegistry/registries/pull/read" },
    // The run ledger's lock is the phase's first Blob write.
    Case {
        phase: "artifacts",
        kind: "dataAction",
        name: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    },
    Case { phase: "runbooks", kind: "action", name: "Microsoft.Automation/automationAccounts/runbooks/publish/action" },
    Case { phase: "database", kind: "dataAction", name: "Microsoft.KeyVault/vaults/secrets/getSecret/action" },
    Case { phase: "airbyte", kind: "action", name: "Microsoft.ContainerService/managedClusters/runCommand/action" },
    Case { phase: "ai", kind: "action", name: "Microsoft.Search/searchServices/indexes/write" },
    Case { phase: "ai", kind: "dataAction", name: "Microsoft.CognitiveServices/accounts/AIServices/agents/write" },
    Case { phase: "registry", kind: "action", name: "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read" },
    Case { phase: "health", kind: "action", name: "Microsoft.Automation/automationAccounts/runbooks/read" },
];

/// Airbyte's names of this platform (its database, user and password secret).
fn airbyte_names(p: &Platform) -> [(&'static str, String); 3] {
    let db = format!("{}_ab", p.db);
    [
        ("VIBEDATA_AIRBYTE_DATABASE", db.clone()),
        ("VIBEDATA_AIRBYTE_DB_USER", db),
        ("VIBEDATA_AIRBYTE_DB_PASSWORD_SECRET", format!("{}-ab-pw", p.db.replace('_', "-"))),
    ]
}

/// Blob storage through the emulator's front, where the grant table holds.
fn storage_front(p: &Platform) -> (&'static str, &str) {
    ("VIBEDATA_STORAGE_BLOB_URL", p.stack.var("VIBEDATA_STACK_STORAGE_FRONT"))
}

async fn set_denied(p: &Platform, denied: Value) {
    let r = p
        .stack
        .http()
        .put(format!("{}/grants", p.stack.control()))
        .json(&json!({"denied": denied}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "setting the grant table: {}", r.status());
}

/// Runs `case` on `p` and checks what the brief promises; then gives the permission back.
async fn removal(p: &Platform, case: &Case) {
    if case.phase == "runbooks" {
        // The stack has one Automation account: what an earlier test published would be
        // `unchanged` and need no publish. Start it empty.
        reset(p, "automation/runbooks").await;
    }
    if case.phase == "ai" {
        // Each AI case needs its object still to be made (a rerun after the last made them all).
        reset(p, "ai").await;
    }
    let names = airbyte_names(p);
    let mut extra: Vec<(&str, &str)> = names.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(RBAC_DEADLINE);
    extra.push(storage_front(p));
    set_denied(p, json!([{"kind": case.kind, "name": case.name}])).await;
    let mark = p.stack.journal_mark().await;
    let (o, outputs) = p.run(case.phase, &extra);
    let journal = p.stack.journal_since(mark).await;
    set_denied(p, json!([])).await;

    let what = format!("{} without {}", case.phase, case.name);
    assert_eq!(o.status.code(), Some(1), "{what}: exit\n{}", common::stderr(&o));
    let last = common::last_stderr_line(&o);
    eprintln!("{what}: {last}");
    assert!(last.contains(case.name), "{what}: the last stderr line names the action: {last}");
    if case.phase == "health" {
        // Health reports a refused probe as a failing check of the platform, with the
        // service's own text (which names the action), not as a phase error with a hint.
        assert!(last.contains("Unhealthy") && last.contains("AuthorizationFailed"), "{what}: a failing check: {last}");
    } else {
        assert!(last.contains("hint: assign it a role"), "{what}: and suggests a role: {last}");
    }
    // Exactly that permission was refused, and nothing else was.
    let denied: Vec<&str> = journal.iter().filter_map(|e| e["detail"]["denied"].as_str()).collect();
    assert!(!denied.is_empty() && denied.iter().all(|d| *d == case.name), "{what}: denied calls {denied:?}");
    assert!(journal.iter().all(|e| e["status"] != 403 || e["detail"]["denied"].is_string()), "{what}: no other 403");
    // The outputs say the run failed, name the action, and count what was done before.
    assert_eq!(outputs["status"], "failed", "{what}: outputs {outputs}");
    assert!(outputs["changes"].is_u64(), "{what}: outputs count what was done: {outputs}");
    assert!(outputs.to_string().contains(case.name), "{what}: outputs name the action: {outputs}");

    let (o, again) = p.run(case.phase, &extra);
    ok(&o);
    assert!(
        again["status"] == "succeeded" || again["status"] == "unchanged",
        "{what}: the rerun with the permission back: {again}"
    );
}

#[tokio::test]
async fn removing_one_permission_fails_exactly_the_call_that_needs_it() {
    let started = std::time::Instant::now();
    let p = Platform::with_release("perm", &format!("2026.12.80-{}", std::process::id())).await;
    p.publish();
    set_denied(&p, json!([])).await;
    reset_airbyte(&p.stack).await;
    reset(&p, "ai").await;
    for case in BOUNDED {
        removal(&p, case).await;
    }
    p.drop().await;
    eprintln!("removal suite: {:?}", started.elapsed());
}

/// The full size, behind `VIBEDATA_REMOVAL_FULL=1` (minutes: a platform per permission of the
/// first three phases).
#[tokio::test]
async fn full_removal_of_every_enforced_permission() {
    if std::env::var_os("VIBEDATA_REMOVAL_FULL").is_none() {
        eprintln!("VIBEDATA_REMOVAL_FULL is not set: the bounded suite above runs in CI");
        return;
    }
    let started = std::time::Instant::now();
    full().await;
    eprintln!("full removal suite: {:?}", started.elapsed());
}

/// The permissions of `phase` in `plan` that the emulator can refuse (not the publisher's own
/// credentials, not patterns).
fn enforced(plan: &Value, phase: &str) -> Vec<(&'static str, &'static str)> {
    let perms = &plan.as_array().unwrap().iter().find(|p| p["phase"] == phase).unwrap()["permissions"];
    perms
        .as_array()
        .unwrap()
        .iter()
        .filter(|perm| perm["kind"] != "noRbac" && !perm["name"].as_str().unwrap().contains('*'))
        .map(|perm| {
            let leak = |v: &Value| -> &'static str { Box::leak(v.as_str().unwrap().to_owned().into_boxed_str()) };
            (leak(&perm["kind"]), leak(&perm["name"]))
        })
        .collect()
}

/// Runs `phase` without `name`: it fails naming it (`true`), or, a permission of a path this run
/// does not take, succeeds (`false`). The permission is given back either way.
async fn without(p: &Platform, phase: &str, (kind, name): (&str, &str), env: &[(&str, &str)]) -> bool {
    set_denied(p, json!([{"kind": kind, "name": name}])).await;
    let (o, _) = p.run(phase, env);
    set_denied(p, json!([])).await;
    if o.status.success() {
        eprintln!("{phase} without {name}: succeeded (not on the path taken)");
        return false;
    }
    let last = common::last_stderr_line(&o);
    eprintln!("{phase} without {name}: refused");
    assert_eq!(o.status.code(), Some(1), "{phase} without {name}: exit\n{last}");
    assert!(last.contains(name), "{phase} without {name}: {last}");
    true
}

/// Every enforced permission of every phase, one run each. The first three phases get a platform
/// (and release) per permission, so each run is a first install; the later four share one
/// platform whose plane is reset before each case (Airbyte's cluster, the AI planes; Registry and
/// Health read everything on every run), and rerun with the permission back after it.
async fn full() {
    let o = Stack::get().cli(&Stack::get().env_for("perm-plan", &[]), &["plan", "--permissions", "--json"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (mut refused, mut untouched) = (0, Vec::new());
    let mut n = 10;
    for (phase, before) in [("artifacts", &[][..]), ("runbooks", &["artifacts"][..]), ("database", &["artifacts"][..])]
    {
        for perm in enforced(&plan, phase) {
            let release = format!("2026.12.{n}-{}", std::process::id());
            let p = Platform::with_release(&format!("permf{n}"), &release).await;
            p.publish();
            let env = [RBAC_DEADLINE, storage_front(&p)];
            for b in before {
                ok(&p.run(b, &env).0);
            }
            if phase == "runbooks" {
                reset(&p, "automation/runbooks").await;
            }
            if without(&p, phase, perm, &env).await {
                refused += 1;
            } else {
                untouched.push(format!("{phase} {}", perm.1));
            }
            p.drop().await;
            n += 1;
        }
    }
    let p = Platform::with_release("permlate", &format!("2026.12.{n}-{}", std::process::id())).await;
    p.publish();
    let names = airbyte_names(&p);
    let mut env: Vec<(&str, &str)> = names.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([RBAC_DEADLINE, storage_front(&p)]);
    reset_airbyte(&p.stack).await;
    reset(&p, "ai").await;
    reset(&p, "automation/runbooks").await;
    for b in ["artifacts", "runbooks", "database"] {
        ok(&p.run(b, &env).0);
    }
    for phase in ["airbyte", "ai", "registry", "health"] {
        for perm in enforced(&plan, phase) {
            match phase {
                "airbyte" => reset_airbyte(&p.stack).await,
                "ai" => reset(&p, "ai").await,
                _ => {}
            }
            if without(&p, phase, perm, &env).await {
                refused += 1;
            } else {
                untouched.push(format!("{phase} {}", perm.1));
            }
            let (o, again) = p.run(phase, &env);
            ok(&o);
            assert_ne!(again["status"], "failed", "{phase} with {} back: {again}", perm.1);
        }
    }
    p.drop().await;
    eprintln!("full removal: {refused} refused; not needed by the path taken: {untouched:#?}");
    assert!(refused >= 7, "at least one refusal per phase: {refused}");
}

/// `DELETE /_emulator/{plane}`.
async fn reset(p: &Platform, plane: &str) {
    let r = p.stack.http().delete(format!("{}/{plane}", p.stack.control())).send().await.unwrap();
    assert!(r.status().is_success(), "resetting {plane}: {}", r.status());
}
