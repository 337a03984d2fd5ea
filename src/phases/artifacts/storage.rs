//! Artifact storage (DESIGN §4): the release manifest as JSON under `releases/`, and one
//! content-addressed OCI Image Layout under `oci/` holding the manifest, runbook and migrations
//! artifacts. Later phases and Day-2 updates read from here, never from the publisher.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{validate, PHASE};
use crate::config::ArtifactsConfig;
use crate::context::Context;
use crate::error::RunError;
use crate::oci::{Descriptor, Layout, Registry};
use crate::release::{self, ReleaseManifest};

/// Artifacts are scripts and SQL; anything bigger is not one of ours.
const MAX_ARTIFACT_BLOB: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

pub struct Stored {
    pub writes: u64,
    pub refs: Vec<String>,
}

fn bad(cfg: &ArtifactsConfig, message: String) -> RunError {
    RunError::BadInput {
        phase: PHASE.into(),
        resource: format!("{}:{}", cfg.manifest_repository, cfg.manifest_tag),
        message,
    }
}

/// Reads the release manifest artifact `repo@digest` from `registry`, verifies it, and validates
/// the document it carries.
pub async fn read_release(
    registry: &Registry,
    repo: &str,
    digest: &str,
    cfg: &ArtifactsConfig,
) -> Result<(ReleaseManifest, Bytes), RunError> {
    let m = registry.manifest(repo, digest).await.map_err(|e| RunError::oci(PHASE, e))?;
    let parsed: OciManifest = serde_json::from_slice(&m.bytes)
        .map_err(|e| bad(cfg, format!("the release manifest artifact is not an OCI manifest: {e}")))?;
    let layer = parsed.layers.iter().find(|l| l.media_type == release::MANIFEST_ARTIFACT_TYPE).ok_or_else(|| {
        bad(cfg, format!("the artifact has no layer of media type {}", release::MANIFEST_ARTIFACT_TYPE))
    })?;
    if layer.size as usize > release::MAX_MANIFEST_BYTES {
        return Err(bad(
            cfg,
            format!("the manifest is {} bytes, over the {}-byte limit", layer.size, release::MAX_MANIFEST_BYTES),
        ));
    }
    let document = fetch_blob(registry, repo, &layer.digest, release::MAX_MANIFEST_BYTES as u64).await?;
    let manifest = validate(&document, cfg)?;
    Ok((manifest, document))
}

/// A small blob, whole, verified against its digest.
async fn fetch_blob(registry: &Registry, repo: &str, digest: &str, max: u64) -> Result<Bytes, RunError> {
    let mut stream = Box::pin(registry.blob_stream(repo, digest).await.map_err(|e| RunError::oci(PHASE, e))?);
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RunError::Phase {
            phase: PHASE.into(),
            code: "RegistryReadFailed".into(),
            resource: format!("{repo}@{digest}"),
            message: e.to_string(),
        })?;
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > max {
            return Err(RunError::BadInput {
                phase: PHASE.into(),
                resource: format!("{repo}@{digest}"),
                message: format!("blob is larger than {max} bytes"),
            });
        }
    }
    let bytes = buf.freeze();
    crate::oci::verify_digest(repo, digest, &bytes).map_err(|e| RunError::oci(PHASE, e))?;
    Ok(bytes)
}

/// `(ref name, repository, digest)` of every artifact the layout holds for a release.
fn artifact_refs(
    manifest: &ReleaseManifest,
    manifest_repo: &str,
    manifest_digest: &str,
) -> Vec<(String, String, String)> {
    let r = &manifest.release;
    let mut refs = vec![(format!("{r}/manifest/release"), manifest_repo.to_owned(), manifest_digest.to_owned())];
    refs.extend(
        manifest
            .runbooks
            .iter()
            .map(|rb| (format!("{r}/runbook/{}", rb.name), rb.artifact.repository.clone(), rb.artifact.digest.clone())),
    );
    refs.extend(
        manifest
            .migrations
            .iter()
            .map(|m| (format!("{r}/migrations/migrations"), m.artifact.repository.clone(), m.artifact.digest.clone())),
    );
    refs
}

fn release_json(manifest: &ReleaseManifest, manifest_digest: &str) -> Bytes {
    let pointer = json!({"release": manifest.release, "manifestDigest": manifest_digest, "manifest": format!("releases/{}/manifest.json", manifest.release)});
    Bytes::from(serde_json::to_vec_pretty(&pointer).expect("serializes"))
}

/// How many writes a real run would make (dry run: reads only).
pub async fn plan(ctx: &Context, manifest: &ReleaseManifest, manifest_digest: &str) -> Result<u64, RunError> {
    let container = ctx.container(&ctx.config.artifact_container)?;
    if !container.exists().await.map_err(|e| RunError::azure(PHASE, e))? {
        return Ok(1 + artifact_refs(manifest, "", manifest_digest).len() as u64 + 2);
    }
    let layout = Layout::new(container.clone());
    let mut would = 0;
    for (name, _, digest) in artifact_refs(manifest, "", manifest_digest) {
        if layout.resolve(&name).await.map_err(|e| RunError::oci(PHASE, e))?.map(|d| d.digest) != Some(digest) {
            would += 1;
        }
    }
    let latest = container.get("releases/latest.json").await.map_err(|e| RunError::azure(PHASE, e))?;
    if latest.as_deref() != Some(&release_json(manifest, manifest_digest)[..]) {
        would += 1;
    }
    Ok(would)
}

/// Writes whatever artifact storage lacks. Every blob is verified before it is written.
pub async fn store(
    ctx: &Context,
    registry: &Registry,
    manifest: &ReleaseManifest,
    manifest_digest: &str,
    manifest_repo: &str,
    document: &Bytes,
) -> Result<Stored, RunError> {
    let az = |e| RunError::azure(PHASE, e);
    let oci = |e| RunError::oci(PHASE, e);
    let container = ctx.container(&ctx.config.artifact_container)?;
    let mut writes = u64::from(container.ensure().await.map_err(az)?);
    let layout = Layout::new(container.clone());
    writes += u64::from(layout.init().await.map_err(oci)?);

    let mut refs = Vec::new();
    for (name, repo, digest) in artifact_refs(manifest, manifest_repo, manifest_digest) {
        let m = registry.manifest(&repo, &digest).await.map_err(oci)?;
        let parsed: OciManifest = serde_json::from_slice(&m.bytes).map_err(|e| RunError::BadInput {
            phase: PHASE.into(),
            resource: format!("{repo}@{digest}"),
            message: format!("not an OCI artifact manifest: {e}"),
        })?;
        for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
            if blob.size > MAX_ARTIFACT_BLOB {
                return Err(RunError::BadInput {
                    phase: PHASE.into(),
                    resource: format!("{repo}@{}", blob.digest),
                    message: format!("artifact blob of {} bytes is over the limit", blob.size),
                });
            }
            if layout.get_blob(&blob.digest).await.map_err(oci)?.is_none() {
                let bytes = fetch_blob(registry, &repo, &blob.digest, MAX_ARTIFACT_BLOB).await?;
                writes += u64::from(layout.put_blob(&blob.digest, bytes).await.map_err(oci)?);
            }
        }
        writes += u64::from(layout.put_blob(&digest, m.bytes.clone()).await.map_err(oci)?);
        let descriptor = Descriptor {
            media_type: parsed.media_type.unwrap_or(m.media_type),
            digest: digest.clone(),
            size: m.bytes.len() as u64,
            artifact_type: parsed.artifact_type,
            annotations: Default::default(),
        };
        writes += u64::from(layout.add_ref(&name, &descriptor).await.map_err(oci)?);
        refs.push(name);
    }

    for (path, body) in [
        (format!("releases/{}/manifest.json", manifest.release), document.clone()),
        ("releases/latest.json".to_owned(), release_json(manifest, manifest_digest)),
    ] {
        if container.get(&path).await.map_err(az)?.as_ref() != Some(&body) {
            container.put(&path, body, "application/json", None).await.map_err(az)?;
            writes += 1;
        }
    }
    tracing::info!(writes, refs = refs.len(), container = %ctx.config.artifact_container, "artifact storage up to date");
    Ok(Stored { writes, refs })
}
