//! Artifact Bootstrap over the local stack: real registries, Azurite, and the emulator's
//! `importImage` doing a real copy.
//!
//! Each test publishes a release of its own (`scripts/sample-release push --release R`), so its
//! target tags (`<repo>:<R>`) are fresh, and points the run at that release's manifest tag. Tests
//! in this binary run one at a time (.config/nextest.toml): they read the emulator's importImage
//! journal and change the registry's network rules.

mod artifacts_support;
mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use artifacts_support::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn happy_path_then_an_idempotent_rerun() {
    let stack = Stack::get();
    let release = "2026.11.1";
    let manifest_digest = publish(&stack, release);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifacts.json");
    let env = env_for(&stack, "happy", release, &out, &[]);
    let chart = usize::from(!chart_present(&stack).await);

    let mark = stack.journal_mark().await;
    let o = stack.cli(&env, &["run", "artifacts"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = read_outputs(&out);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["summary"]["release"], release);
    assert_eq!(v["summary"]["manifestDigest"], manifest_digest.as_str());
    assert_eq!(v["summary"]["images"]["total"], 16);
    assert_eq!(v["summary"]["runbooks"]["total"], 4);
    assert_eq!((v["summary"]["charts"]["total"].as_u64(), v["summary"]["ai"]["total"].as_u64()), (Some(1), Some(1)));
    assert!(stdout(&o).contains("imported 16/16 images"), "progress lines");
    // The manifest, its accepted signature (by digest only) and the 22 release-tagged targets
    // went through importImage, by digest, and the chart too unless an earlier release on this
    // stack brought its version already.
    let imports = imports_since(&stack, mark).await;
    assert_eq!(imports.len(), 24 + chart, "{imports:?}");

    // Every target tag is at its pinned digest in the customer registry.
    let customer = registry(&stack, true);
    for (target, digest) in v["summary"]["digests"].as_object().unwrap() {
        let (repo, tag) = target.rsplit_once(':').unwrap();
        assert_eq!(customer.manifest_digest(repo, tag).await.unwrap().as_deref(), digest.as_str(), "{target}");
    }
    // Artifact storage holds the manifest JSON, the pointer and the layout refs.
    assert!(container_exists(&stack, "art-happy").await);
    // The manifest, four runbooks, the migrations, the chart and the AI definitions.
    assert_eq!(v["summary"]["artifactStorage"]["refs"].as_array().unwrap().len(), 8);

    // A second run makes no mutating call.
    let mark = stack.journal_mark().await;
    let o = stack.cli(&env, &["run", "artifacts"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read_outputs(&out);
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("unchanged"), Some(0)));
    assert!(imports_since(&stack, mark).await.is_empty());
    // No secret anywhere in what the run leaves behind.
    let password = stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD");
    assert!(!stdout(&o).contains(password) && !std::fs::read_to_string(&out).unwrap().contains(password));
}

#[tokio::test]
async fn dry_run_lists_the_imports_and_makes_none() {
    let stack = Stack::get();
    let release = "2026.11.2";
    publish(&stack, release);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let env = env_for(&stack, "dryrun", release, &out, &[]);
    let chart = u64::from(!chart_present(&stack).await);
    let mark = stack.journal_mark().await;
    let o = stack.cli(&env, &["run", "artifacts", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read_outputs(&out);
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["summary"]["imports"].as_array().unwrap().len() as u64, 22 + chart);
    assert!(imports_since(&stack, mark).await.is_empty());
    assert!(!container_exists(&stack, "art-dryrun").await);
    assert_eq!(registry(&stack, true).manifest_digest("vibedata/api", release).await.unwrap(), None);
}

#[tokio::test]
async fn throttling_server_errors_and_slow_imports_all_complete() {
    let stack = Stack::get();
    let release = "2026.11.3";
    publish(&stack, release);
    stack.arm_fault(json!({"api": "acr.importImage", "kind": "throttle", "count": 3, "retryAfter": 1})).await;
    stack.arm_fault(json!({"api": "acr.importImage", "kind": "server-error", "count": 3})).await;
    stack.arm_fault(json!({"api": "acr.importImage", "kind": "latency", "count": 4, "latencyMs": 800})).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let o = stack.cli(&env_for(&stack, "faults", release, &out, &[]), &["run", "artifacts"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(read_outputs(&out)["status"], "succeeded");
}

#[tokio::test]
async fn restricted_network_without_trusted_services_fails_fast() {
    let stack = Stack::get();
    let release = "2026.11.4";
    publish(&stack, release);
    set_network(&stack, json!({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None"})).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let mark = stack.journal_mark().await;
    let started = Instant::now();
    let o = stack.cli(&env_for(&stack, "network", release, &out, &[]), &["run", "artifacts"]);
    set_network(&stack, json!({"publicNetworkAccess": "Enabled", "networkRuleBypassOptions": "AzureServices"})).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    let last = last_stderr_line(&o);
    assert!(last.contains("TrustedServicesBypassDisabled") && last.contains("AzureServices"), "{last}");
    assert!(imports_since(&stack, mark).await.is_empty());
}

#[tokio::test]
async fn a_publisher_tag_moved_mid_run_changes_nothing_imported() {
    let stack = Stack::get();
    let first = publish(&stack, "2026.11.5");
    let second = publish(&stack, "2026.11.6");
    assert_ne!(first, second);
    // A moving tag of this test's own, pointing at 2026.11.5 when the run starts.
    let publisher = registry(&stack, false);
    let m5 = publisher.manifest("vibedata/release-manifest", &first).await.unwrap();
    publisher.put_manifest("vibedata/release-manifest", "moving", m5.bytes.clone(), &m5.media_type).await.unwrap();

    set_import_duration(&stack, 1500).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let env = env_for(&stack, "moving", "moving", &out, &[]);
    let bin = env!("CARGO_BIN_EXE_vibedata-bootstrap");
    let mut child = Command::new(bin)
        .env_clear()
        .envs(&env)
        .args(["run", "artifacts"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mark = stack.journal_mark().await;
    // Move the tag once the first import is under way.
    for _ in 0..100 {
        if !imports_since(&stack, mark).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m6 = publisher.manifest("vibedata/release-manifest", &second).await.unwrap();
    publisher.put_manifest("vibedata/release-manifest", "moving", m6.bytes, &m6.media_type).await.unwrap();
    let status = child.wait().unwrap();
    set_import_duration(&stack, 0).await;
    assert!(status.success());
    let v = read_outputs(&out);
    assert_eq!(v["summary"]["manifestDigest"], first.as_str());
    assert_eq!(v["summary"]["release"], "2026.11.5");
    let customer = registry(&stack, true);
    assert_eq!(customer.manifest_digest("vibedata/release-manifest", "moving").await.unwrap(), Some(first));
    assert!(customer.manifest_digest("vibedata/api", "2026.11.5").await.unwrap().is_some());
    assert_eq!(customer.manifest_digest("vibedata/api", "2026.11.6").await.unwrap(), None);
}

#[tokio::test]
async fn sigkill_mid_phase_then_a_rerun_completes_without_duplicates() {
    let stack = Stack::get();
    let release = &format!("2026.11.7-{}", std::process::id());
    publish(&stack, release);
    set_import_duration(&stack, 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let env = env_for(&stack, "sigkill", release, &out, &[("VIBEDATA_IMPORT_CONCURRENCY", "2")]);
    let mark = stack.journal_mark().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .envs(&env)
        .args(["run", "artifacts"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if imports_since(&stack, mark).await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    set_import_duration(&stack, 0).await;

    // The rerun waits out the killed runner's lease (15 s at most), then finishes the work.
    let o = stack.cli(&env, &["run", "artifacts"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = read_outputs(&out);
    assert_eq!(v["status"], "succeeded");
    // Every target was imported exactly once across both runs.
    let imports = imports_since(&stack, mark).await;
    let mut targets: Vec<String> = imports.iter().map(|e| e["path"].as_str().unwrap_or("").to_owned()).collect();
    targets.sort();
    let log: Vec<Value> =
        stack.http().get(format!("{}/imports", stack.control())).send().await.unwrap().json().await.unwrap();
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for e in log.iter().filter(|e| e["status"] == "Succeeded") {
        for t in e["targetTags"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            if t.ends_with(&format!(":{release}")) {
                *done.entry(t.to_owned()).or_default() += 1;
            }
        }
    }
    // The chart is tagged with its version, not the release, so it is not counted here.
    assert_eq!(done.len(), 23, "the manifest and its 22 release-tagged targets: {done:?}");
    assert!(done.values().all(|n| *n == 1), "an import ran twice: {done:?}");
    let refs: Vec<&str> =
        v["summary"]["artifactStorage"]["refs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let mut unique = refs.clone();
    unique.dedup();
    assert_eq!(refs.len(), unique.len());
}

#[tokio::test]
async fn every_bad_manifest_is_exit_2_with_nothing_imported_or_stored() {
    let stack = Stack::get();
    publish(&stack, "2026.11.8");
    let good = manifest_document(&stack, "2026.11.8").await;
    // A loopback listener posing as a foreign registry: it must never see a credential.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    listener.set_nonblocking(true).unwrap();

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", b"{\"schemaVersion\": 1, ".to_vec(), "not valid JSON"),
        ("oversize", vec![b' '; 1024 * 1024 + 10], "limit"),
    ];
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mut variants: Vec<(&str, Mutation, &str)> = vec![
        ("schema", Box::new(|v| v["schemaVersion"] = 7.into()), "schemaVersion 7"),
        (
            "missing",
            Box::new(|v| v["images"].as_array_mut().unwrap().retain(|i| i["repository"] != "vibedata/worker")),
            "vibedata/worker",
        ),
        ("digest", Box::new(|v| v["images"][0]["digest"] = "sha256:1234".into()), "images[0].digest"),
    ];
    let f = foreign.clone();
    variants.push((
        "foreign",
        Box::new(move |v| v["images"][0]["repository"] = format!("{f}/vibedata/api").into()),
        "names registry",
    ));
    for (name, mutate, expect) in &variants {
        let mut v = good.clone();
        mutate(&mut v);
        cases.push((name, serde_json::to_vec(&v).unwrap(), expect));
    }
    for (name, document, expect) in cases {
        let tag = format!("bad-{name}");
        push_document(&stack, &tag, &document).await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o.json");
        let test = format!("bad-{name}");
        let env = env_for(&stack, &test, &tag, &out, &[]);
        let mark = stack.journal_mark().await;
        let o = stack.cli(&env, &["run", "artifacts"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let last = last_stderr_line(&o);
        assert!(last.contains(expect), "{name}: {last}");
        // The manifest is validated before anything is imported: nothing was, and artifact
        // storage was not touched.
        let imports = imports_since(&stack, mark).await;
        assert!(imports.is_empty(), "{name}: {imports:?}");
        assert!(!container_exists(&stack, &format!("art-{test}")).await, "{name}: artifact storage written");
    }
    // The foreign registry never got a connection, let alone an Authorization header.
    assert!(listener.accept().is_err(), "the foreign registry was contacted");
}

#[tokio::test]
async fn a_tampered_blob_is_rejected() {
    let stack = Stack::get();
    // A release of this process's own: tampering is permanent, so a rerun against the same
    // stack must not find this release already imported.
    let release = &format!("2026.11.9-{}", std::process::id());
    publish(&stack, release);
    // Tamper with the release-manifest document blob in the publisher registry's storage: the
    // only blob unique to this release, so no other test is affected.
    let publisher = registry(&stack, false);
    let digest = publisher.manifest_digest("vibedata/release-manifest", release).await.unwrap().unwrap();
    let m: Value =
        serde_json::from_slice(&publisher.manifest("vibedata/release-manifest", &digest).await.unwrap().bytes).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let data = walk(&stack.dir, &layer).expect("blob data file in the publisher registry's storage");
    // Appending (rather than flipping a bit) keeps the blob tampered however often this runs.
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.extend_from_slice(b" ");
    std::fs::write(&data, bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let o = stack
        .cli(&env_for(&stack, "tamper", release, &out, &[("VIBEDATA_IMPORT_METHOD", "copy")]), &["run", "artifacts"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(last_stderr_line(&o).contains("DigestMismatch"), "{}", last_stderr_line(&o));
    assert_eq!(
        registry(&stack, true).manifest_digest("vibedata/api", release).await.unwrap(),
        None,
        "nothing imported"
    );
}

/// Finds `<hex>/data` under the publisher registry's storage.
fn walk(dir: &std::path::Path, hex: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if p.file_name().and_then(|n| n.to_str()) == Some(hex)
                && p.to_string_lossy().contains("publisher")
                && p.join("data").exists()
            {
                return Some(p.join("data"));
            }
            if let Some(found) = walk(&p, hex) {
                return Some(found);
            }
        }
    }
    None
}
