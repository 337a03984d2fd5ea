//! The bad-input corpus (`tests/corpus/*.json`, described in its README): every case is refused
//! with its exact error (a CLI exit code and last stderr line, or a handler status and error
//! code), and nothing is mutated — no mutating call in the emulator's journal while the case
//! runs, no artifact storage written, nothing imported — and its outputs say so.
//!
//! Runs alone (.config/nextest.toml): the journal it reads is the whole emulator's.

mod artifacts_support;
mod common;
#[allow(dead_code)] // the serve tests use the rest
#[path = "serve/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use artifacts_support::*;
use common::*;
use serde_json::Value;

/// The sample release the manifest cases edit.
const BASE: &str = "2026.11.80";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    /// The CLI's run target; absent for a handler case (`request`).
    #[serde(default)]
    run: Option<String>,
    /// Run targets that must succeed before the case (outside what it may not mutate).
    #[serde(default)]
    setup: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    artifacts: Vec<Artifact>,
    #[serde(default)]
    manifest: Vec<(String, String, Value)>,
    #[serde(default)]
    request: Option<Request>,
    #[serde(default)]
    exit: Option<i32>,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    code: Option<String>,
}

/// An artifact of the case's own, pushed to the publisher as `repository:<tag>`; the manifest
/// then pins it at `pin` (a JSON pointer to a digest).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Artifact {
    /// `runbook` or `migrations`: the artifact and layer media types.
    kind: String,
    repository: String,
    pin: String,
    /// The layer's tar entries, gzipped; or `layer`, the layer's raw text.
    #[serde(default)]
    files: Vec<Entry>,
    #[serde(default)]
    layer: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Written into the tar header as is (no normalisation: `../x` stays `../x`).
    path: String,
    #[serde(default)]
    content: Value,
    /// A symbolic link to this target instead of a file.
    #[serde(default)]
    link: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    method: String,
    path: String,
    #[serde(default)]
    body: Value,
}

/// A gzip tar of `files`, headers written by hand so that bad paths survive.
fn tar_gz(files: &[Entry], base: &Value) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for f in files {
        let data = match value(&f.content, base) {
            Value::String(s) => s.into_bytes(),
            Value::Null => Vec::new(),
            Value::Array(bytes) => bytes.iter().map(|b| b.as_u64().unwrap() as u8).collect(),
            other => panic!("{}: content must be a string or bytes: {other}", f.path),
        };
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..f.path.len()].copy_from_slice(f.path.as_bytes());
        h.set_mode(0o644);
        match &f.link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_size(0);
                h.set_cksum();
                tar.append(&h, std::io::empty()).unwrap();
            }
            None => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                tar.append(&h, data.as_slice()).unwrap();
            }
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

async fn push_case_artifact(stack: &Stack, a: &Artifact, tag: &str, base: &Value) -> String {
    use vibedata_bootstrap::release as r;
    let (artifact_type, layer_type) = match a.kind.as_str() {
        "runbook" => (r::RUNBOOK_ARTIFACT_TYPE, r::RUNBOOK_LAYER_TYPE),
        "migrations" => (r::MIGRATIONS_ARTIFACT_TYPE, r::MIGRATIONS_LAYER_TYPE),
        other => panic!("unknown artifact kind {other}"),
    };
    let layer = a.layer.clone().map(String::into_bytes).unwrap_or_else(|| tar_gz(&a.files, base));
    push_artifact(stack, &a.repository, tag, artifact_type, layer_type, &layer).await
}

/// Resolves `{"$repeat": [s, n]}` and `{"$copy": "/pointer"}` against the unedited document.
fn value(v: &Value, base: &Value) -> Value {
    match v.as_object() {
        Some(m) if m.contains_key("$repeat") => {
            let r = &m["$repeat"];
            Value::String(r[0].as_str().unwrap().repeat(r[1].as_u64().unwrap() as usize))
        }
        Some(m) if m.contains_key("$copy") => {
            base.pointer(m["$copy"].as_str().unwrap()).expect("$copy pointer").clone()
        }
        _ => v.clone(),
    }
}

fn edit(base: &Value, edits: &[(String, String, Value)]) -> Value {
    let mut doc = base.clone();
    for (op, pointer, v) in edits {
        let v = value(v, base);
        let target = doc.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer} in the sample manifest"));
        match op.as_str() {
            "set" => *target = v,
            "append" => target.as_array_mut().expect("append to an array").push(v),
            other => panic!("unknown edit {other}"),
        }
    }
    doc
}

/// `{tag}`, `{artifact}` (the digest of the case's first artifact), `{$VAR}` (the run's
/// environment) and `{/pointer}` (of the unedited document) in an expected line.
fn expand(line: &str, tag: &str, artifact: Option<&str>, env: &BTreeMap<String, String>, base: &Value) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|e| i + e).unwrap_or(rest.len() - 1);
        let key = &rest[i + 1..end];
        match key {
            "tag" => out.push_str(tag),
            "artifact" => out.push_str(artifact.expect("{artifact} in a case without artifacts")),
            k if k.starts_with('$') => out.push_str(&env[&k[1..]]),
            k if k.starts_with('/') => {
                out.push_str(base.pointer(k).and_then(Value::as_str).expect("placeholder pointer"))
            }
            _ => out.push_str(&rest[i..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A journal entry that changed something. The emulator marks each entry; an entry from before
/// that mark existed is judged by its method (token requests excepted).
fn mutating(e: &Value) -> bool {
    e.get("mutating").and_then(Value::as_bool).unwrap_or_else(|| {
        let method = e["method"].as_str().unwrap_or("GET");
        let api = e["api"].as_str().unwrap_or("");
        !matches!(method, "GET" | "HEAD") && !matches!(api, "identity" | "acr.exchange" | "acr.token")
    })
}

/// What one case did that it should not have, or `None`.
async fn check_unmutated(stack: &Stack, name: &str, mark: u64) -> Option<String> {
    let writes: Vec<String> = stack
        .journal_since(mark)
        .await
        .iter()
        .filter(|e| mutating(e))
        .map(|e| format!("{} {}", e["method"], e["path"]))
        .collect();
    (!writes.is_empty()).then(|| format!("{name}: mutating calls {writes:?}"))
}

#[tokio::test]
async fn every_case_is_refused_with_its_error_and_nothing_mutated() {
    let stack = Stack::get();
    publish(&stack, BASE);
    let base = manifest_document(&stack, BASE).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus lost cases: {files:?}");
    let mut host: Option<harness::Host> = None;
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let case: Case =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tag = format!("corpus-{}", &name[..name.len().min(100)]);
        let test = format!("c-{}", name.chars().take(40).collect::<String>());
        let out = tempfile::tempdir().unwrap();
        let outputs = out.path().join("outputs.json");

        if let Some(req) = &case.request {
            // A handler case: one handler (envelope mode, as shipped) serves them all.
            let host = host.get_or_insert_with(|| {
                harness::Host::start("corpus", &env_for(&stack, "c-handler", BASE, &outputs, &[]), &[])
            });
            let mark = stack.journal_mark().await;
            let body = match value(&req.body, &base) {
                Value::Null => None,
                Value::String(s) => Some(s.into_bytes()),
                other => Some(other.to_string().into_bytes()),
            };
            let r = host.call(&req.method, &req.path, body).await;
            let code = serde_json::from_str::<Value>(&r.text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            if Some(r.status) != case.status || code != case.code {
                failures.push(format!(
                    "{name} ({}): {} {}: got {} {code:?}, expected {:?} {:?}: {}",
                    case.about, req.method, req.path, r.status, case.status, case.code, r.text
                ));
            }
            failures.extend(check_unmutated(&stack, &name, mark).await);
            continue;
        }

        let mut edits = case.manifest.clone();
        let mut pushed = Vec::new();
        for a in &case.artifacts {
            let digest = push_case_artifact(&stack, a, &tag, &base).await;
            edits.push(("set".into(), a.pin.clone(), Value::String(digest.clone())));
            pushed.push(digest);
        }
        let edited = !edits.is_empty();
        for e in &mut edits {
            if e.2 == "{tag}" {
                e.2 = Value::String(tag.clone());
            }
        }
        let release = if edited { tag.clone() } else { BASE.to_owned() };
        if edited {
            push_document(&stack, &tag, &serde_json::to_vec(&edit(&base, &edits)).unwrap()).await;
        }
        let extra: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let env = env_for(&stack, &test, &release, &outputs, &extra);
        for target in &case.setup {
            let o = stack.cli(&env, &["run", target]);
            assert!(o.status.success(), "{name}: setup `run {target}` failed: {}", stderr(&o));
        }
        let mark = stack.journal_mark().await;
        let run = case.run.as_deref().unwrap_or_else(|| panic!("{name}: neither run nor request"));
        let o = stack.cli(&env, &["run", run]);
        let expected =
            expand(case.stderr.as_deref().expect("stderr"), &tag, pushed.first().map(String::as_str), &env, &base);
        let got = last_stderr_line(&o);
        if o.status.code() != case.exit || got != expected {
            failures.push(format!(
                "{name} ({}): exit {:?}, expected {:?}\n  got:      {got}\n  expected: {expected}",
                case.about,
                o.status.code(),
                case.exit
            ));
            continue;
        }
        failures.extend(check_unmutated(&stack, &name, mark).await);
        let container = env["VIBEDATA_ARTIFACT_CONTAINER"].clone();
        // A case set up by an earlier run finds that run's artifact storage; it writes none.
        if case.setup.is_empty() {
            assert!(!container_exists(&stack, &container).await, "{name}: artifact storage written");
        }
        if edited && case.setup.is_empty() {
            let customer = registry(&stack, true);
            assert_eq!(
                customer.manifest_digest("vibedata/release-manifest", &tag).await.unwrap(),
                None,
                "{name}: imported"
            );
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&outputs).unwrap()).unwrap();
        // `run all` writes every phase's outputs under `phases`; a configuration error is one.
        let v = v.get("phases").and_then(|p| p.get(0)).cloned().unwrap_or(v);
        assert_eq!((v["changes"].as_u64(), v["changed"].as_array().map(Vec::len)), (Some(0), Some(0)), "{name}: {v}");
        assert_eq!(v["status"], "failed", "{name}");
    }
    if let Some(h) = host {
        h.stop();
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}
