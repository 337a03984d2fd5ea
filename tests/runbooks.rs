//! Runbook Bootstrap over the local stack: artifact storage in Azurite, the emulator's
//! Automation API.
//!
//! Most tests stage a crafted release of their own straight into a container of their own
//! (through the library's `Layout`), with runbook names unique to the test and the process, so
//! their runbooks never collide. One test goes end to end: the sample release through
//! `run artifacts`, then `run runbooks`. Tests in this binary run one at a time
//! (.config/nextest.toml): they read the emulator's Automation journal and arm faults on it.

mod common;
#[path = "../src/phases/runbooks/fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};
use vibedata_bootstrap::azure::blob::Container;
use vibedata_bootstrap::azure::retry::RetryPolicy;
use vibedata_bootstrap::oci::{sha256_digest, Descriptor, Layout, OCI_MANIFEST};
use vibedata_bootstrap::release::{MANIFEST_ARTIFACT_TYPE, RUNBOOK_ARTIFACT_TYPE, RUNBOOK_LAYER_TYPE};

const API: &str = "2024-10-23";
/// Runtime environments the emulator's account starts with (as Azure's system-generated ones).
const PS_ENV: &str = "PowerShell-7.4";
const PY_ENV: &str = "Python-3.10";

/// One runbook of a crafted release.
struct Rb {
    name: String,
    kind: &'static str,
    env: String,
    layer: Vec<u8>,
}

impl Rb {
    fn ps(name: &str, script: &str) -> Rb {
        Rb { name: name.into(), kind: "PowerShell", env: PS_ENV.into(), layer: fixtures::powershell(name, script) }
    }

    fn py(name: &str, script: &str) -> Rb {
        let layer = fixtures::layer(&[fixtures::Raw::file(&format!("{name}.py"), script.as_bytes())]);
        Rb { name: name.into(), kind: "Python", env: PY_ENV.into(), layer }
    }
}

/// `name` made unique to this process, so reruns on a reused stack start from nothing.
fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn container(stack: &Stack, name: &str) -> Container {
    std::env::set_var("IDENTITY_ENDPOINT", stack.var("IDENTITY_ENDPOINT"));
    std::env::set_var("IDENTITY_HEADER", stack.var("IDENTITY_HEADER"));
    let http = vibedata_bootstrap::azure::http_client(
        Some(std::path::Path::new(stack.var("VIBEDATA_CA_FILE"))),
        Duration::from_secs(30),
    )
    .unwrap();
    let tokens = vibedata_bootstrap::azure::identity::Tokens::managed_identity(
        &vibedata_bootstrap::config::IdentityRef::ClientId(stack.var("VIBEDATA_IDENTITY_CLIENT_ID").into()),
        http.clone(),
    )
    .unwrap();
    let url = url::Url::parse(stack.var("VIBEDATA_STORAGE_BLOB_URL")).unwrap();
    Container::new(&url, name, &http, &RetryPolicy::default(), &tokens).unwrap()
}

/// Puts `bytes` into the layout as a blob; returns its descriptor.
async fn blob(layout: &Layout, media_type: &str, bytes: Vec<u8>) -> Descriptor {
    let digest = sha256_digest(&bytes);
    let size = bytes.len() as u64;
    layout.put_blob(&digest, Bytes::from(bytes)).await.unwrap();
    Descriptor { media_type: media_type.into(), digest, size, artifact_type: None, annotations: Default::default() }
}

/// Puts an OCI artifact (empty config, one layer) into the layout under `ref_name`.
async fn artifact(layout: &Layout, ref_name: &str, artifact_type: &str, layer: Descriptor) -> String {
    let config = blob(layout, "application/vnd.oci.empty.v1+json", b"{}".to_vec()).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type, "config": config, "layers": [layer]});
    let mut d = blob(layout, OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()).await;
    d.artifact_type = Some(artifact_type.into());
    layout.add_ref(ref_name, &d).await.unwrap();
    d.digest
}

/// Writes `release` into artifact storage `name` the way the Artifact Bootstrap does — layout
/// refs, the manifest document checked by its artifact, the `latest` pointer — and makes it
/// current. `edit` may change the manifest document before it is stored.
async fn stage(stack: &Stack, name: &str, release: &str, runbooks: &[Rb], edit: impl FnOnce(&mut Value)) {
    let c = container(stack, name);
    c.ensure().await.unwrap();
    let layout = Layout::new(c.clone());
    layout.init().await.unwrap();
    let mut entries = Vec::new();
    for rb in runbooks {
        let layer = blob(&layout, RUNBOOK_LAYER_TYPE, rb.layer.clone()).await;
        let digest = artifact(&layout, &format!("{release}/runbook/{}", rb.name), RUNBOOK_ARTIFACT_TYPE, layer).await;
        entries.push(json!({"name": rb.name, "runbookType": rb.kind, "runtimeEnvironment": rb.env,
                            "artifact": {"repository": format!("vibedata/runbooks/{}", rb.name.to_lowercase()), "digest": digest}}));
    }
    let mut document = json!({
        "schemaVersion": 1, "release": release,
        "images": [{"repository": "vibedata/api", "tag": release, "digest": sha256_digest(b"{}")}],
        "runbooks": entries,
    });
    edit(&mut document);
    let document = serde_json::to_vec_pretty(&document).unwrap();
    let layer = blob(&layout, MANIFEST_ARTIFACT_TYPE, document.clone()).await;
    let manifest_digest =
        artifact(&layout, &format!("{release}/manifest/release"), MANIFEST_ARTIFACT_TYPE, layer).await;
    c.put(&format!("releases/{release}/manifest.json"), Bytes::from(document), "application/json", None).await.unwrap();
    let pointer = json!({"release": release, "manifestDigest": manifest_digest, "manifest": format!("releases/{release}/manifest.json")});
    c.put("releases/latest.json", Bytes::from(pointer.to_string()), "application/json", None).await.unwrap();
}

/// One test's bed: its own artifact storage, outputs file and run environment.
struct Bed {
    stack: Stack,
    storage: String,
    out: std::path::PathBuf,
    env: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
}

impl Bed {
    fn new(test: &str, extra: &[(&str, &str)]) -> Bed {
        let stack = Stack::get();
        let storage = unique(&format!("rb-{test}"));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("runbooks.json");
        let mut overrides =
            vec![("VIBEDATA_ARTIFACT_CONTAINER", storage.as_str()), ("AZ_SCRIPTS_OUTPUT_PATH", out.to_str().unwrap())];
        overrides.extend_from_slice(extra);
        let env = stack.env_for(&format!("rb-{test}"), &overrides);
        Bed { stack, storage, out, env, _dir: dir }
    }

    async fn stage(&self, release: &str, runbooks: &[Rb], edit: impl FnOnce(&mut Value)) {
        stage(&self.stack, &self.storage, release, runbooks, edit).await;
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.stack.cli(&self.env, args)
    }

    /// `run runbooks`, which must succeed; returns its outputs.
    fn runbooks(&self) -> Value {
        let o = self.run(&["run", "runbooks"]);
        assert!(o.status.success(), "exit {:?}\n{}\n{}", o.status.code(), stdout(&o), stderr(&o));
        self.outputs()
    }

    fn outputs(&self) -> Value {
        read_outputs(&self.out)
    }
}

fn account_id(stack: &Stack) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Automation/automationAccounts/{}",
        stack.var("VIBEDATA_SUBSCRIPTION_ID"),
        stack.var("VIBEDATA_RESOURCE_GROUP"),
        stack.var("VIBEDATA_AUTOMATION_ACCOUNT")
    )
}

/// GET on the emulator's ARM as the identity: `(status, body)`.
async fn arm_get(stack: &Stack, path: &str) -> (u16, Bytes) {
    let url = format!("{}{path}?api-version={API}", stack.var("VIBEDATA_ARM_ENDPOINT"));
    let r = stack.http().get(url).bearer_auth(stack.token("https://management.azure.com/").await).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap())
}

/// `(state, sha256 of the published content)` of a runbook through ARM, or `None` when it does
/// not exist.
async fn published(stack: &Stack, name: &str) -> Option<(String, Option<String>)> {
    let id = format!("{}/runbooks/{name}", account_id(stack));
    let (status, body) = arm_get(stack, &id).await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let rb: Value = serde_json::from_slice(&body).unwrap();
    let (status, content) = arm_get(stack, &format!("{id}/content")).await;
    let hash = (status == 200).then(|| sha256_digest(&content));
    Some((rb["properties"]["state"].as_str().unwrap_or_default().to_owned(), hash))
}

/// The emulator's test view of one runbook (`GET /_emulator/automation/runbooks`): state,
/// content hashes, publish counts; `null` when it does not exist.
async fn emulator_view(stack: &Stack, name: &str) -> Value {
    let all = stack.control_get("automation/runbooks").await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Mutating Automation calls in the journal since `mark`, as `METHOD path status`.
async fn automation_writes(stack: &Stack, mark: u64) -> Vec<String> {
    stack
        .journal_since(mark)
        .await
        .into_iter()
        .filter(|e| e["api"] == "automation" && e["method"] != "GET")
        .map(|e| format!("{} {} {}", e["method"].as_str().unwrap_or(""), e["path"].as_str().unwrap_or(""), e["status"]))
        .collect()
}

fn published_with(script: &str) -> Option<(String, Option<String>)> {
    Some(("Published".into(), Some(sha256_digest(script.as_bytes()))))
}

#[tokio::test]
async fn happy_path_then_an_idempotent_rerun() {
    let bed = Bed::new("happy", &[]);
    let (ps, py) = (unique("Happy-Ps"), unique("Happy_Py"));
    let ps_script = "param([string]$Name = 'world')\nWrite-Output \"hello $Name\"\n";
    let py_script = "print('hello from python')\n";
    bed.stage("2026.11.0", &[Rb::ps(&ps, ps_script), Rb::py(&py, py_script)], |_| {}).await;

    let mark = bed.stack.journal_mark().await;
    let o = bed.run(&["run", "runbooks"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("published 2/2 runbooks"), "progress lines:\n{}", stdout(&o));
    // Published in parallel: each publish operation was still being polled when the other's
    // publish was sent.
    let journal = bed.stack.journal_since(mark).await;
    let span = |name: &str| {
        let publish = format!("/runbooks/{name}/publish");
        let seqs: Vec<u64> = journal
            .iter()
            .filter(|e| e["path"].as_str().is_some_and(|p| p.contains(&publish)))
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        (*seqs.iter().min().expect("a publish"), *seqs.iter().max().unwrap())
    };
    let (a, b) = (span(&ps), span(&py));
    assert!(a.0 < b.1 && b.0 < a.1, "the two publishes did not overlap: {a:?} {b:?}");
    let v = bed.outputs();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["changes"], 6, "two runbooks, each created, given content and published");
    let listed = v["summary"]["runbooks"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for (name, script) in [(&ps, ps_script), (&py, py_script)] {
        let entry = listed.iter().find(|r| r["name"] == name.as_str()).unwrap();
        assert_eq!(
            (entry["state"].as_str(), entry["contentHash"].as_str()),
            (Some("Published"), Some(sha256_digest(script.as_bytes()).as_str()))
        );
        assert_eq!(published(&bed.stack, name).await, published_with(script), "{name}");
    }
    assert!(v["summary"]["unmanaged"].is_array());

    let mark = bed.stack.journal_mark().await;
    let v = bed.runbooks();
    assert_eq!((v["status"].as_str(), v["changes"].as_u64()), (Some("unchanged"), Some(0)));
    assert_eq!(automation_writes(&bed.stack, mark).await, Vec::<String>::new(), "a rerun PUTs and POSTs nothing");
}

#[tokio::test]
async fn changed_content_is_republished_and_dry_run_mutates_nothing() {
    let bed = Bed::new("change", &[]);
    let name = unique("Changing");
    let (v1, v2) = ("Write-Output 'v1'\n", "Write-Output 'v2'\n");
    bed.stage("2026.11.0", &[Rb::ps(&name, v1)], |_| {}).await;
    bed.runbooks();

    bed.stage("2026.11.1", &[Rb::ps(&name, v2)], |_| {}).await;
    let mark = bed.stack.journal_mark().await;
    let o = bed.run(&["run", "runbooks", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = bed.outputs();
    assert_eq!((v["dryRun"].as_bool(), v["changes"].as_u64()), (Some(true), Some(2)), "{v}");
    assert_eq!(v["summary"]["runbooks"][0]["action"], "update");
    assert!(automation_writes(&bed.stack, mark).await.is_empty(), "a dry run mutates nothing");
    assert_eq!(published(&bed.stack, &name).await, published_with(v1));

    let v = bed.runbooks();
    assert_eq!(
        (v["status"].as_str(), v["changes"].as_u64()),
        (Some("succeeded"), Some(2)),
        "draft content and publish, no runbook PUT"
    );
    assert_eq!(v["summary"]["runbooks"][0]["action"], "updated");
    assert_eq!(published(&bed.stack, &name).await, published_with(v2));
    assert_eq!(automation_writes(&bed.stack, mark).await.len(), 2);
}

/// A bad-input case: its id, the release's runbooks, an edit of the manifest document, and a
/// fragment of the error.
type Case = (String, Vec<Rb>, Box<dyn FnOnce(&mut Value)>, &'static str);

#[tokio::test]
async fn every_bad_archive_and_bad_manifest_entry_is_exit_2_with_nothing_published() {
    let bed = Bed::new("bad", &[]);
    // A good runbook first: it must not be published either, since validation comes first.
    let good = unique("Good-First");
    let bad_name = unique("Bad-One");
    let first = || Rb::ps(&good, "Write-Output 'ok'\n");
    let mut cases: Vec<Case> = Vec::new();
    for case in fixtures::bad_cases(&bad_name, 1024 * 1024) {
        let bad = Rb { name: bad_name.clone(), kind: "PowerShell", env: PS_ENV.into(), layer: case.layer };
        cases.push((case.id.into(), vec![first(), bad], Box::new(|_| {}), case.expect));
    }
    let renamed = format!("9{bad_name}");
    cases.push((
        "bad-name".into(),
        vec![first(), Rb::ps(&renamed, "x\n")],
        Box::new(|_| {}),
        "is not a valid runbook name",
    ));
    // Automation's own limit is 63 characters; the whole release is refused before any PUT,
    // the good runbook listed before it included.
    // The name is refused before any layer is read, so the layer may hold a short one (a tar
    // header has room for 100 bytes of name).
    let long = Rb { name: format!("{bad_name}{}", "x".repeat(200)), ..Rb::ps(&bad_name, "x\n") };
    cases.push(("long-name".into(), vec![first(), long], Box::new(|_| {}), "characters; a runbook name is 1-63"));
    let dup = bad_name.to_uppercase();
    cases.push((
        "duplicate".into(),
        vec![first(), Rb::ps(&bad_name, "x\n"), Rb::ps(&dup, "x\n")],
        Box::new(|_| {}),
        "(Automation names are case-insensitive)",
    ));
    let missing = Rb { env: "PowerShell-0-1".into(), ..Rb::ps(&bad_name, "x\n") };
    cases.push(("missing-environment".into(), vec![first(), missing], Box::new(|_| {}), "does not have"));
    let wrong = Rb { env: PY_ENV.into(), ..Rb::ps(&bad_name, "x\n") };
    cases.push(("wrong-language".into(), vec![first(), wrong], Box::new(|_| {}), "runs Python"));
    let graph: Box<dyn FnOnce(&mut Value)> = Box::new(|d| d["runbooks"][0]["runbookType"] = "Graph".into());
    cases.push(("unknown-type".into(), vec![first()], graph, "not PowerShell or Python"));

    for (id, runbooks, edit, expect) in cases {
        bed.stage(&format!("bad-{id}"), &runbooks, edit).await;
        let mark = bed.stack.journal_mark().await;
        let o = bed.run(&["run", "runbooks"]);
        assert_eq!(o.status.code(), Some(2), "{id}: {}\n{}", stdout(&o), stderr(&o));
        let last = last_stderr_line(&o);
        assert!(last.contains(expect), "{id}: expected {expect:?} in {last}");
        assert_eq!(automation_writes(&bed.stack, mark).await, Vec::<String>::new(), "{id}: something was mutated");
        assert_eq!(bed.outputs()["error"]["code"], "BadInput", "{id}");
        assert_eq!(
            (bed.outputs()["changes"].as_u64(), bed.outputs()["changed"].as_array().map(Vec::len)),
            (Some(0), Some(0)),
            "{id}"
        );
    }
    assert_eq!(published(&bed.stack, &good).await, None, "the good runbook was never published");
    assert_eq!(published(&bed.stack, &bad_name).await, None);
}

#[tokio::test]
async fn a_configured_runtime_environment_is_created_once() {
    let env_name = unique("Py-Configured");
    let configured = format!("{env_name}=Python:3.10");
    let bed = Bed::new("envs", &[("VIBEDATA_RUNTIME_ENVIRONMENTS", &configured)]);
    let name = unique("Uses-Configured");
    bed.stage("2026.11.0", &[Rb { env: env_name.clone(), ..Rb::py(&name, "print(1)\n") }], |_| {}).await;
    let v = bed.runbooks();
    assert_eq!(v["changes"], 4, "the environment, then the runbook's three calls: {v}");
    assert_eq!(v["summary"]["runtimeEnvironments"][0]["action"], "created");
    let (status, body) =
        arm_get(&bed.stack, &format!("{}/runtimeEnvironments/{env_name}", account_id(&bed.stack))).await;
    assert_eq!(status, 200);
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got["properties"]["runtime"], json!({"language": "Python", "version": "3.10"}));

    let mark = bed.stack.journal_mark().await;
    assert_eq!(bed.runbooks()["changes"], 0);
    assert!(automation_writes(&bed.stack, mark).await.is_empty());
}

#[tokio::test]
async fn a_failed_publish_names_the_runbook() {
    let bed = Bed::new("fail", &[]);
    let name = unique("Fails-Publish");
    bed.stage("2026.11.0", &[Rb::ps(&name, "Write-Output 'fine'\n")], |_| {}).await;
    let failure = json!({"runbook": name, "code": "RunbookCompilationFailed", "message": "Line 1: unexpected token"});
    let r = bed
        .stack
        .http()
        .post(format!("{}/automation/fail-publish", bed.stack.control()))
        .json(&failure)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "arming the publish failure: {}", r.status());
    let o = bed.run(&["run", "runbooks"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(
        last.contains(&format!("runbooks/{name}"))
            && last.contains("RunbookCompilationFailed")
            && last.contains("unexpected token"),
        "{last}"
    );
    let v = bed.outputs();
    assert_eq!(v["error"]["code"], "RunbookCompilationFailed");
    assert!(v["error"]["resource"].as_str().unwrap().ends_with(&format!("/runbooks/{name}")), "{v}");
    assert_eq!(emulator_view(&bed.stack, &name).await["state"], "Edit", "the draft stays, unpublished");
    // Half happened, and the outputs say which half: the draft was written, the publish was not.
    let actions: Vec<&str> = v["changed"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["put draft runbook", "put draft content"], "{v}");
    assert_eq!(v["changes"], 2);
    assert_eq!(v["status"], "failed");
}

#[tokio::test]
async fn throttling_server_errors_and_rbac_propagation_are_recovered() {
    let bed = Bed::new("faults", &[]);
    let name = unique("Faulty");
    bed.stage("2026.11.0", &[Rb::ps(&name, "Write-Output 'faults'\n")], |_| {}).await;
    let stack = &bed.stack;
    stack
        .arm_fault(json!({"api": "automation", "kind": "throttle", "count": 3, "retryAfter": 1, "pathContains": name}))
        .await;
    stack.arm_fault(json!({"api": "automation", "kind": "server-error", "count": 3, "pathContains": name})).await;
    // A fresh role assignment: the account's runbooks are refused for a few seconds.
    let runbooks = format!("{}/runbooks", stack.var("VIBEDATA_AUTOMATION_ACCOUNT"));
    stack.arm_fault(json!({"api": "automation", "kind": "rbac", "seconds": 3, "pathContains": runbooks})).await;
    let mark = stack.journal_mark().await;
    let o = bed.run(&["run", "runbooks"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("waiting for role assignment"), "{}", stdout(&o));
    assert_eq!(published(stack, &name).await.unwrap().0, "Published");
    let served: Vec<u64> = stack
        .journal_since(mark)
        .await
        .iter()
        .filter(|e| e["api"] == "automation")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    for status in [429, 500, 403] {
        assert!(served.contains(&status), "a {status} was served and recovered from: {served:?}");
    }
}

#[tokio::test]
async fn sigkill_between_draft_and_publish_then_a_rerun_publishes_each_once() {
    // One runbook at a time, so the kill lands at one known point: the first published, the
    // second drafted, the third untouched. (In parallel the same resume logic runs per runbook.)
    let bed = Bed::new("kill", &[("VIBEDATA_RUNBOOK_CONCURRENCY", "1")]);
    let names: Vec<String> = ["Kill-A", "Kill-B", "Kill-C"].iter().map(|n| unique(n)).collect();
    let runbooks: Vec<Rb> = names.iter().map(|n| Rb::ps(n, &format!("Write-Output '{n}'\n"))).collect();
    bed.stage("2026.11.0", &runbooks, |_| {}).await;
    let stack = &bed.stack;
    // The second runbook's draft-content operation hangs, so the kill lands after its draft was
    // written and before its publish was sent.
    let draft = format!("{}/draft/content", names[1]);
    stack.arm_fault(json!({"api": "automation", "kind": "latency", "count": 1, "latencyMs": 5000, "pathContains": format!("{draft}/operationResults")})).await;
    let mark = stack.journal_mark().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .envs(&bed.env)
        .args(["run", "runbooks"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = false;
    for _ in 0..300 {
        if stack
            .journal_since(mark)
            .await
            .iter()
            .any(|e| e["method"] == "PUT" && e["path"].as_str().unwrap_or("").ends_with(&draft))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The draft content is in the account and its operation's poll is held for 5 s, so the
    // runner cannot publish yet: killing it now lands exactly between draft and publish.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen, "the second runbook's draft content was never written");
    let state = |v: Value| (v["state"].as_str().map(str::to_owned), v["publishCount"].as_u64());
    assert_eq!(state(emulator_view(stack, &names[0]).await), (Some("Published".into()), Some(1)));
    assert_eq!(state(emulator_view(stack, &names[1]).await), (Some("Edit".into()), Some(0)), "drafted, not published");
    assert_eq!(emulator_view(stack, &names[2]).await, Value::Null, "killed before the third");

    // The rerun waits out the killed runner's lease (15 s at most), then finishes.
    let v = bed.runbooks();
    let actions: Vec<&str> =
        v["summary"]["runbooks"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["unchanged", "resumed", "created"]);
    for n in &names {
        assert_eq!(
            state(emulator_view(stack, n).await),
            (Some("Published".into()), Some(1)),
            "{n} published exactly once"
        );
    }
}

#[tokio::test]
async fn the_sample_release_goes_from_the_publisher_to_published_runbooks() {
    let release = "2026.11.20";
    let manifest = format!("vibedata/release-manifest:{release}");
    let bed = Bed::new(
        "sample",
        &[("VIBEDATA_RELEASE_MANIFEST", &manifest), ("VIBEDATA_IMAGES", "vibedata/api,vibedata/web,vibedata/worker")],
    );
    let o = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sample-release"))
        .args([
            "push",
            "--release",
            release,
            "--out",
            &format!("{}/target/sample-release-tests/{release}", env!("CARGO_MANIFEST_DIR")),
        ])
        .envs(&bed.stack.env)
        .output()
        .unwrap();
    assert!(o.status.success(), "sample-release push: {}", String::from_utf8_lossy(&o.stderr));
    let o = bed.run(&["run", "artifacts"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The sample runbooks' names are fixed, so an earlier run on this stack may have published
    // them already: either way they end Published with the release's content.
    let v = bed.runbooks();
    let listed = v["summary"]["runbooks"].as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Purge_Staging", "Refresh-Tokens", "Rotate-Keys", "Sync-Registry"]);
    for r in listed {
        let name = r["name"].as_str().unwrap();
        assert_eq!(
            published(&bed.stack, name).await,
            Some(("Published".into(), r["contentHash"].as_str().map(str::to_owned))),
            "{name}"
        );
    }
    let mark = bed.stack.journal_mark().await;
    assert_eq!(bed.runbooks()["status"], "unchanged");
    assert!(automation_writes(&bed.stack, mark).await.is_empty());
}
