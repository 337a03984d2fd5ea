//! Helpers of the tests that run Artifact Bootstrap: publishing the sample release (whole, or a
//! manifest document of the test's own), reading the registries as the phase does, and the
//! emulator's import journal.

#![allow(dead_code)] // each test binary that includes this uses a part of it

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use vibedata_bootstrap::azure::identity::Secret;
use vibedata_bootstrap::oci::{Credentials, Registry, RegistryOptions};

use crate::common::*;

pub const IMAGES: &str = "vibedata/api,vibedata/web,vibedata/worker";

/// Publishes release `release` to the stack's publisher registry; returns the manifest digest.
pub fn publish(stack: &Stack, release: &str) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sample-release"))
        .args([
            "push",
            "--release",
            release,
            "--out",
            &format!("{}/target/sample-release-tests/{release}", env!("CARGO_MANIFEST_DIR")),
        ])
        .envs(&stack.env)
        .output()
        .expect("scripts/sample-release");
    assert!(out.status.success(), "sample-release push: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("sample-release prints JSON");
    find_digest(&report, "vibedata/release-manifest").expect("manifest digest in report")
}

pub fn find_digest(v: &Value, repo: &str) -> Option<String> {
    match v {
        Value::Object(m) => {
            if m.get("repository").and_then(Value::as_str) == Some(repo) {
                if let Some(d) = m.get("digest").and_then(Value::as_str) {
                    return Some(d.to_owned());
                }
            }
            m.values().find_map(|x| find_digest(x, repo))
        }
        Value::Array(a) => a.iter().find_map(|x| find_digest(x, repo)),
        _ => None,
    }
}

/// The environment of a run against release `release`, writing outputs to `out`.
pub fn env_for(
    stack: &Stack,
    test: &str,
    release: &str,
    out: &std::path::Path,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let manifest = format!("vibedata/release-manifest:{release}");
    let container = format!("art-{}", test.replace('_', "-"));
    let mut overrides = vec![
        ("VIBEDATA_IMAGES", IMAGES),
        ("VIBEDATA_RELEASE_MANIFEST", manifest.as_str()),
        ("VIBEDATA_ARTIFACT_CONTAINER", container.as_str()),
        ("AZ_SCRIPTS_OUTPUT_PATH", out.to_str().unwrap()),
    ];
    overrides.extend_from_slice(extra);
    stack.env_for(test, &overrides)
}

pub fn registry(stack: &Stack, customer: bool) -> Registry {
    let http = vibedata_bootstrap::azure::http_client(
        Some(std::path::Path::new(stack.var("VIBEDATA_CA_FILE"))),
        Duration::from_secs(30),
    )
    .unwrap();
    let opts = RegistryOptions { ca_file: Some(stack.var("VIBEDATA_CA_FILE").into()), ..Default::default() };
    if customer {
        // Read the customer registry as the identity does, through the emulator's exchange.
        std::env::set_var("IDENTITY_ENDPOINT", stack.var("IDENTITY_ENDPOINT"));
        std::env::set_var("IDENTITY_HEADER", stack.var("IDENTITY_HEADER"));
        let tokens = vibedata_bootstrap::azure::identity::Tokens::managed_identity(
            &vibedata_bootstrap::config::IdentityRef::ClientId(stack.var("VIBEDATA_IDENTITY_CLIENT_ID").into()),
            http.clone(),
        )
        .unwrap();
        let id = vibedata_bootstrap::oci::AcrIdentity {
            tokens,
            aad_scope: "https://management.azure.com/.default".into(),
            auth_endpoint: url::Url::parse(stack.var("VIBEDATA_ACR_AUTH_ENDPOINT")).unwrap(),
            tenant: None,
        };
        Registry::new(stack.var("VIBEDATA_ACR_LOGIN_SERVER"), Credentials::AcrIdentity(id), http, &opts).unwrap()
    } else {
        let creds = Credentials::Basic {
            username: stack.var("VIBEDATA_STACK_PUBLISHER_USER").into(),
            password: Secret::new(stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD")),
        };
        Registry::new(stack.var("VIBEDATA_PUBLISHER_REGISTRY"), creds, http, &opts).unwrap()
    }
}

pub async fn imports_since(stack: &Stack, mark: u64) -> Vec<Value> {
    stack
        .journal_since(mark)
        .await
        .into_iter()
        .filter(|e| e["api"] == "acr.importImage" && e["method"] == "POST")
        .collect()
}

pub async fn set_import_duration(stack: &Stack, ms: u64) {
    let r =
        stack.http().put(format!("{}/import", stack.control())).json(&json!({"durationMs": ms})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

pub async fn set_network(stack: &Stack, rules: Value) {
    let r = stack.http().put(format!("{}/registry-network", stack.control())).json(&rules).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

pub async fn container_exists(stack: &Stack, name: &str) -> bool {
    let url = format!("{}/{name}?restype=container", stack.var("VIBEDATA_STORAGE_BLOB_URL"));
    let r = stack
        .http()
        .head(url)
        .bearer_auth(stack.token("https://storage.azure.com").await)
        .header("x-ms-version", "2021-12-02")
        .send()
        .await
        .unwrap();
    r.status().is_success()
}

/// Pushes `document` as a release-manifest artifact under `vibedata/release-manifest:<tag>`,
/// signed by the sample release's fixture signer (so that what a case tests is the document).
pub async fn push_document(stack: &Stack, tag: &str, document: &[u8]) {
    push_unsigned_document(stack, tag, document).await;
    sign(stack, "vibedata/release-manifest", tag);
}

/// `push_document` without the signatures.
pub async fn push_unsigned_document(stack: &Stack, tag: &str, document: &[u8]) -> String {
    let t = vibedata_bootstrap::release::MANIFEST_ARTIFACT_TYPE;
    push_artifact(stack, "vibedata/release-manifest", tag, t, t, document).await
}

/// Pushes the fixture signatures (JWS and COSE, scripts/sample_release/sign.py) of `repo:tag`.
pub fn sign(stack: &Stack, repo: &str, tag: &str) {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sample-release"))
        .args(["sign", "--repository", repo, "--tag", tag])
        .envs(&stack.env)
        .output()
        .expect("scripts/sample-release sign");
    assert!(out.status.success(), "sample-release sign: {}", String::from_utf8_lossy(&out.stderr));
}

/// Pushes an OCI artifact of one layer (`layer`, of media type `layer_type`) with an empty
/// config to the publisher registry as `repo:tag`; returns its manifest digest.
pub async fn push_artifact(
    stack: &Stack,
    repo: &str,
    tag: &str,
    artifact_type: &str,
    layer_type: &str,
    layer: &[u8],
) -> String {
    let publisher = registry(stack, false);
    let mut put = Vec::new();
    for bytes in [Bytes::from_static(b"{}"), Bytes::copy_from_slice(layer)] {
        let digest = vibedata_bootstrap::oci::sha256_digest(&bytes);
        let size = bytes.len();
        let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes)]);
        publisher.upload_blob(repo, &digest, stream).await.unwrap();
        put.push((digest, size));
    }
    let ((config, _), (layer, size)) = (put[0].clone(), put[1].clone());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": layer_type, "digest": layer, "size": size}]
    })
    .to_string();
    let digest = vibedata_bootstrap::oci::sha256_digest(manifest.as_bytes());
    publisher
        .put_manifest(repo, tag, Bytes::from(manifest), "application/vnd.oci.image.manifest.v1+json")
        .await
        .unwrap();
    digest
}

/// The document of the release manifest published under `tag`, parsed.
pub async fn manifest_document(stack: &Stack, tag: &str) -> Value {
    let publisher = registry(stack, false);
    let digest = publisher.manifest_digest("vibedata/release-manifest", tag).await.unwrap().unwrap();
    let m = publisher.manifest("vibedata/release-manifest", &digest).await.unwrap();
    let parsed: Value = serde_json::from_slice(&m.bytes).unwrap();
    let layer = parsed["layers"][0]["digest"].as_str().unwrap().to_owned();
    let mut stream = Box::pin(publisher.blob_stream("vibedata/release-manifest", &layer).await.unwrap());
    let mut buf = Vec::new();
    while let Some(c) = futures::StreamExt::next(&mut stream).await {
        buf.extend_from_slice(&c.unwrap());
    }
    serde_json::from_slice(&buf).unwrap()
}

/// Whether the customer registry holds the sample chart: it is tagged with its version, which
/// every release of the sample shares, so only the first release on a stack imports it.
pub async fn chart_present(stack: &Stack) -> bool {
    registry(stack, true).manifest_digest("vibedata/charts/airbyte", "2.2.0").await.unwrap().is_some()
}
