//! Artifact storage (DESIGN §4): the release manifest as JSON under `releases/`, and one
//! content-addressed OCI Image Layout under `oci/` holding the manifest, runbook and migrations
//! artifacts. Later phases and Day-2 updates read from here, never from the publisher.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::validate;
use crate::config::ArtifactsConfig;
use crate::error::PhaseError;
use crate::oci::release_artifact::{release_document, ReleaseArtifactError};
use crate::oci::{Descriptor, Layout, Registry};
use crate::phases::{Change, Env};
use crate::release::ReleaseManifest;
use crate::stored_release::paths;

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

fn bad(cfg: &ArtifactsConfig, message: String) -> PhaseError {
    PhaseError::bad_input(format!("{}:{}", cfg.manifest_repository, cfg.manifest_tag), message)
}

/// Reads the release manifest artifact `repo@digest` from `registry`, verifies it, and validates
/// the document it carries.
pub async fn read_release(
    registry: &Registry,
    repo: &str,
    digest: &str,
    cfg: &ArtifactsConfig,
) -> Result<(ReleaseManifest, Bytes), PhaseError> {
    let document = release_document(registry, repo, digest).await.map_err(|e| match e {
        ReleaseArtifactError::Registry(e) => e.into(),
        other => bad(cfg, other.to_string()),
    })?;
    let manifest = validate(&document, cfg)?;
    Ok((manifest, document))
}

/// A small blob, whole, verified against its digest.
async fn fetch_blob(registry: &Registry, repo: &str, digest: &str, max: u64) -> Result<Bytes, PhaseError> {
    Ok(registry.blob_bytes(repo, digest, max).await?)
}

/// `(ref name, repository, digest)` of every artifact the layout holds for a release.
fn artifact_refs(
    manifest: &ReleaseManifest,
    manifest_repo: &str,
    manifest_digest: &str,
) -> Vec<(String, String, String)> {
    let r = &manifest.release;
    let mut refs = vec![(paths::manifest_ref(r), manifest_repo.to_owned(), manifest_digest.to_owned())];
    refs.extend(
        manifest
            .runbooks
            .iter()
            .map(|rb| (paths::runbook_ref(r, &rb.name), rb.artifact.repository.clone(), rb.artifact.digest.clone())),
    );
    refs.extend(
        manifest
            .migrations
            .iter()
            .map(|m| (paths::migrations_ref(r), m.artifact.repository.clone(), m.artifact.digest.clone())),
    );
    refs.extend(
        manifest
            .charts
            .iter()
            .map(|c| (paths::chart_ref(r, &c.name), c.artifact.repository.clone(), c.artifact.digest.clone())),
    );
    refs.extend(
        manifest.ai.iter().map(|a| (paths::ai_ref(r), a.artifact.repository.clone(), a.artifact.digest.clone())),
    );
    refs
}

fn release_json(manifest: &ReleaseManifest, manifest_digest: &str) -> Bytes {
    let pointer = json!({"release": manifest.release, "manifestDigest": manifest_digest, "manifest": paths::manifest_json(&manifest.release)});
    Bytes::from(serde_json::to_vec_pretty(&pointer).expect("serializes"))
}

fn write(what: impl Into<String>) -> Change {
    Change::new("artifact storage", what, "write")
}

/// The writes a real run would make to artifact storage, one per blob, ref and document that
/// is missing or different (reads only). The artifact manifests are read from `registry` (the
/// publisher) by the digests the release pins.
pub async fn plan(
    env: &Env<'_, ArtifactsConfig>,
    registry: &Registry,
    manifest: &ReleaseManifest,
    manifest_digest: &str,
    manifest_repo: &str,
    document: &Bytes,
) -> Result<Vec<Change>, PhaseError> {
    let name = env.config().artifact_container.clone();
    let container = env.ctx.container(&name)?;
    // Before the first run nothing exists, and nothing can be read.
    let exists = container.exists().await?;
    let layout = Layout::new(container.clone());
    let mut would = Vec::new();
    if !exists {
        would.push(write(name.clone()));
    }
    if !exists || !layout.is_initialized().await? {
        would.push(write(format!("{name}/oci oci-layout")));
    }
    let mut planned = std::collections::BTreeSet::new();
    let mut blob = |digest: &str| planned.insert(digest.to_owned());
    for (ref_name, repo, digest) in artifact_refs(manifest, manifest_repo, manifest_digest) {
        let m = registry.manifest(&repo, &digest).await?;
        let parsed: OciManifest = serde_json::from_slice(&m.bytes).map_err(|e| {
            PhaseError::bad_input(format!("{repo}@{digest}"), format!("not an OCI artifact manifest: {e}"))
        })?;
        for d in std::iter::once(&parsed.config.digest).chain(parsed.layers.iter().map(|l| &l.digest)).chain([&digest])
        {
            if (!exists || layout.get_blob(d).await?.is_none()) && blob(d) {
                would.push(write(format!("{name}/oci {d}")));
            }
        }
        if !exists || layout.resolve(&ref_name).await?.map(|d| d.digest).as_deref() != Some(digest.as_str()) {
            would.push(write(format!("{name}/oci {ref_name}")));
        }
    }
    for (path, body) in [
        (paths::manifest_json(&manifest.release), document.clone()),
        (paths::POINTER.to_owned(), release_json(manifest, manifest_digest)),
    ] {
        if !exists || container.get(&path).await?.as_ref() != Some(&body) {
            would.push(write(format!("{name}/{path}")));
        }
    }
    Ok(would)
}

/// Writes whatever artifact storage lacks, recording each write. Every blob is verified before
/// it is written.
pub async fn store(
    env: &Env<'_, ArtifactsConfig>,
    registry: &Registry,
    manifest: &ReleaseManifest,
    manifest_digest: &str,
    manifest_repo: &str,
    document: &Bytes,
) -> Result<Stored, PhaseError> {
    let name = env.config().artifact_container.clone();
    let container = env.ctx.container(&name)?;
    let mut writes = 0u64;
    let mut wrote = |done: bool, what: String| {
        if done {
            writes += 1;
            env.changed(write(what));
        }
    };
    wrote(container.ensure().await?, name.clone());
    let layout = Layout::new(container.clone());
    wrote(layout.init().await?, format!("{name}/oci oci-layout"));

    let mut refs = Vec::new();
    for (ref_name, repo, digest) in artifact_refs(manifest, manifest_repo, manifest_digest) {
        let m = registry.manifest(&repo, &digest).await?;
        let parsed: OciManifest = serde_json::from_slice(&m.bytes).map_err(|e| {
            PhaseError::bad_input(format!("{repo}@{digest}"), format!("not an OCI artifact manifest: {e}"))
        })?;
        for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
            if blob.size > MAX_ARTIFACT_BLOB {
                return Err(PhaseError::bad_input(
                    format!("{repo}@{}", blob.digest),
                    format!("artifact blob of {} bytes is over the limit", blob.size),
                ));
            }
            if layout.get_blob(&blob.digest).await?.is_none() {
                let bytes = fetch_blob(registry, &repo, &blob.digest, MAX_ARTIFACT_BLOB).await?;
                wrote(layout.put_blob(&blob.digest, bytes).await?, format!("{name}/oci {}", blob.digest));
            }
        }
        wrote(layout.put_blob(&digest, m.bytes.clone()).await?, format!("{name}/oci {digest}"));
        let descriptor = Descriptor {
            media_type: parsed.media_type.unwrap_or(m.media_type),
            digest: digest.clone(),
            size: m.bytes.len() as u64,
            artifact_type: parsed.artifact_type,
            annotations: Default::default(),
        };
        wrote(layout.add_ref(&ref_name, &descriptor).await?, format!("{name}/oci {ref_name}"));
        refs.push(ref_name);
    }

    for (path, body) in [
        (paths::manifest_json(&manifest.release), document.clone()),
        (paths::POINTER.to_owned(), release_json(manifest, manifest_digest)),
    ] {
        if container.get(&path).await?.as_ref() != Some(&body) {
            container.put(&path, body, "application/json", None).await?;
            wrote(true, format!("{name}/{path}"));
        }
    }
    tracing::info!(writes, refs = refs.len(), container = %name, "artifact storage up to date");
    Ok(Stored { writes, refs })
}
