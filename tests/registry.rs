//! Registry Bootstrap over the local stack: discovery through the emulator's ARM (73 resources
//! over 15 pages), private endpoint resolution from all three sources, the registry tables in
//! the stack's real Postgres, and the JSON export in Azurite.
//!
//! Each test has a database, an artifact container and a deployment id of its own. The throttle
//! test arms a fault on the resource group's list, so the binary runs in its own nextest group
//! (.config/nextest.toml); under plain `cargo test` a process-wide lock does the same.

mod common;
// Only part of the database tests' setup is used here.
#[path = "registry/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "database/support.rs"]
mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use setup::*;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn status(v: &Value) -> (String, u64) {
    (v["status"].as_str().unwrap_or("?").to_owned(), v["changes"].as_u64().unwrap_or(u64::MAX))
}

async fn export(p: &Platform, deployment: &str) -> Option<bytes::Bytes> {
    p.blob(&format!("registry/{deployment}/registry.json")).await
}

#[tokio::test]
async fn discovery_equals_the_inventory_and_an_unchanged_rerun_writes_nothing() {
    let _g = ONE_AT_A_TIME.lock().await;
    let p = Platform::new("registry_inventory").await;
    p.prepare(false).await;
    let inv = inventory(&p.stack).await;
    let mark = p.stack.journal_mark().await;
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    assert_eq!(v["status"], "succeeded");

    // Resources: exactly the inventory's, by id and type.
    let want: BTreeSet<(String, String)> = inv["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_lowercase(), r["type"].as_str().unwrap().to_owned()))
        .collect();
    let mut conn = support::superuser(&p.stack, &p.db).await;
    let got: BTreeSet<(String, String)> = sqlx::query_as::<_, (String, String)>(
        "SELECT lower(arm_id), type FROM registry.resources WHERE removed_at IS NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(want.len() >= 40);
    assert_eq!(got, want);

    // Endpoints: every FQDN the inventory's resolver finds, with its IP, target and the service port.
    let want: BTreeSet<(String, String, String, i32)> = inv["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            let ip = e["ipAddresses"][0].as_str().unwrap().to_owned();
            let target = e["targetResourceId"].as_str().unwrap().to_lowercase();
            let port = e["defaultPort"].as_i64().unwrap() as i32;
            e["fqdns"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| (target.clone(), f.as_str().unwrap().to_lowercase(), ip.clone(), port))
                .collect::<Vec<_>>()
        })
        .collect();
    let got: BTreeSet<(String, String, String, i32)> = sqlx::query_as::<_, (String, String, String, i32)>(
        "SELECT lower(r.arm_id), e.fqdn, host(e.private_ip), e.port FROM registry.endpoints e JOIN registry.resources r USING (resource_key)",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(got, want);
    // All three resolution sources were needed.
    assert_eq!(v["summary"]["privateEndpointDnsSources"], json!({"zoneGroup": 10, "customDnsConfigs": 2, "nic": 1}));

    // Paging: the list was followed through every page.
    let journal = p.stack.journal_since(mark).await;
    let pages = journal
        .iter()
        .filter(|e| e["api"] == "arm.resources" && e["path"].as_str().unwrap_or("").ends_with("/resources"))
        .count();
    assert!(pages >= 72 / 5, "the list took {pages} pages");

    // Snapshot and export.
    assert_eq!(p.scalar("SELECT count(*) FROM registry.snapshots").await, 1);
    let deployment = p.env(&[])["VIBEDATA_DEPLOYMENT_ID"].clone();
    let first = export(&p, &deployment).await.expect("the export is written");
    let doc: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(doc["registry"]["resources"].as_array().unwrap().len(), want_len(&inv));
    assert_eq!(doc["digest"], v["summary"]["digest"]);

    // No secret value anywhere: the app settings' literal secrets, the Key Vault's values.
    let emulator: Value = serde_json::from_slice(&std::fs::read(p.stack.dir.join("emulator.json")).unwrap()).unwrap();
    let mut secrets: Vec<String> =
        inv["sensitiveValues"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    secrets.extend(emulator["secrets"].as_object().unwrap().values().map(|s| s.as_str().unwrap().to_owned()));
    let rows = p.registry_rows().await.join("\n");
    let text = String::from_utf8_lossy(&first).into_owned();
    for s in &secrets {
        assert!(!rows.contains(s.as_str()), "a secret value is in the registry tables");
        assert!(!text.contains(s.as_str()), "a secret value is in the export");
        assert!(!v.to_string().contains(s.as_str()), "a secret value is in the outputs");
    }
    assert!(rows.contains("keyVaultSecret") && rows.contains("appSetting") && rows.contains("blobLocation"));

    // The rerun: nothing written, no snapshot row, the export untouched.
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    assert_eq!(status(&v), ("unchanged".into(), 0));
    assert_eq!(
        p.scalar("SELECT count(*) FROM registry.snapshots").await,
        1,
        "an unchanged rerun writes no change-history row"
    );
    assert_eq!(export(&p, &deployment).await.unwrap(), first);
    p.drop().await;
}

fn want_len(inv: &Value) -> usize {
    inv["resources"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_throttled_list_is_retried_and_discovery_completes() {
    let _g = ONE_AT_A_TIME.lock().await;
    let p = Platform::new("registry_throttle").await;
    p.prepare(false).await;
    let mark = p.stack.journal_mark().await;
    // The resource group's list (its path ends in /resources; "/resourceGroups" does not match).
    p.stack.arm_fault(json!({"api": "arm.resources", "kind": "throttle", "count": 3, "retryAfter": 1, "pathContains": "/resources"})).await;
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["summary"]["resources"], want_len(&inventory(&p.stack).await));
    let throttled =
        p.stack.journal_since(mark).await.iter().filter(|e| e["api"] == "arm.resources" && e["status"] == 429).count();
    assert!(throttled >= 3, "{throttled} throttled requests");
    p.drop().await;
}

#[tokio::test]
async fn a_change_is_applied_atomically_and_recorded_with_its_diff() {
    let _g = ONE_AT_A_TIME.lock().await;
    let p = Platform::new("registry_change").await;
    p.prepare(false).await;
    ok(&p.run("registry", &[]).0);
    // The registry drifts from the platform: a moved location, a lost endpoint, a stray reference.
    let mut su = support::superuser(&p.stack, &p.db).await;
    for sql in [
        "UPDATE registry.resources SET location = 'westus' WHERE name = 'kv-vibedata-local'",
        "DELETE FROM registry.endpoints WHERE fqdn LIKE 'stvibedatalocal.privatelink.queue.%'",
        "INSERT INTO registry.configuration_references (name, kind, uri) VALUES ('stray', 'environment', 'STRAY')",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut su).await.unwrap();
    }
    let (o, v) = p.run("registry", &[]);
    ok(&o);
    // Three rows plus the export, whose content is the platform's and did not change.
    assert_eq!(status(&v), ("succeeded".into(), 3));
    let diff: String =
        sqlx::query_scalar("SELECT diff::text FROM registry.snapshots ORDER BY snapshot_key DESC LIMIT 1")
            .fetch_one(&mut su)
            .await
            .unwrap();
    let diff: Value = serde_json::from_str(&diff).unwrap();
    assert!(diff["resources"]["updated"][0].as_str().unwrap().ends_with("/vaults/kv-vibedata-local"), "{diff}");
    assert!(
        diff["endpoints"]["added"][0].as_str().unwrap().starts_with("stvibedatalocal.privatelink.queue."),
        "{diff}"
    );
    assert_eq!(diff["configurationReferences"]["removed"], json!(["stray"]));
    assert_eq!(
        p.scalar("SELECT count(*) FROM registry.resources WHERE name = 'kv-vibedata-local' AND location = 'eastus'")
            .await,
        1
    );
    assert_eq!(p.scalar("SELECT count(*) FROM registry.snapshots").await, 2);
    p.drop().await;
}
