//! The bad-input corpus (`tests/corpus/*.json`, described in its README): every case is exit 2
//! with its exact error line, and nothing is mutated — no mutating call in the emulator's
//! journal, no artifact storage written, nothing imported — and its outputs say so.
//!
//! Runs alone (.config/nextest.toml): the journal it reads is the whole emulator's.

mod artifacts_support;
mod common;

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
    run: String,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    manifest: Vec<(String, String, Value)>,
    exit: i32,
    stderr: String,
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

/// `{tag}` and `{/pointer}` in an expected line.
fn expand(line: &str, tag: &str, base: &Value) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map(|e| i + e).unwrap_or(rest.len() - 1);
        let key = &rest[i + 1..end];
        match key {
            "tag" => out.push_str(tag),
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

#[tokio::test]
async fn every_case_is_exit_2_with_its_line_and_nothing_mutated() {
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
    assert!(files.len() >= 18, "the corpus lost cases: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let case: Case =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tag = format!("corpus-{}", &name[..name.len().min(100)]);
        let release = if case.manifest.is_empty() { BASE.to_owned() } else { tag.clone() };
        if !case.manifest.is_empty() {
            push_document(&stack, &tag, &serde_json::to_vec(&edit(&base, &case.manifest)).unwrap()).await;
        }
        let out = tempfile::tempdir().unwrap();
        let outputs = out.path().join("outputs.json");
        let test = format!("c-{}", name.chars().take(40).collect::<String>());
        let extra: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let env = env_for(&stack, &test, &release, &outputs, &extra);
        let mark = stack.journal_mark().await;
        let o = stack.cli(&env, &["run", &case.run]);
        let expected = expand(&case.stderr, &tag, &base);
        let got = last_stderr_line(&o);
        if o.status.code() != Some(case.exit) || got != expected {
            failures.push(format!(
                "{name} ({}): exit {:?}, expected {}\n  got:      {got}\n  expected: {expected}",
                case.about,
                o.status.code(),
                case.exit
            ));
            continue;
        }
        let writes: Vec<String> = stack
            .journal_since(mark)
            .await
            .iter()
            .filter(|e| mutating(e))
            .map(|e| format!("{} {}", e["method"], e["path"]))
            .collect();
        assert!(writes.is_empty(), "{name}: mutating calls {writes:?}");
        let container = env["VIBEDATA_ARTIFACT_CONTAINER"].clone();
        assert!(!container_exists(&stack, &container).await, "{name}: artifact storage written");
        if !case.manifest.is_empty() {
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
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}
