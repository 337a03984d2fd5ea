//! The release's migrations, from artifact storage (DESIGN §4), digest-verified all the way.
//!
//! `releases/latest.json` names the release and its manifest digest; from there every step is a
//! blob fetched by digest and verified by [`Layout::get_blob`]: the release manifest artifact,
//! the manifest document in its layer, the migrations artifact it pins, and that artifact's one
//! layer. The layout's ref `<release>/migrations/migrations` must agree with the pin.

use oci_client::manifest::OciImageManifest;
use serde::Deserialize;

use super::PHASE;
use crate::context::Context;
use crate::db::MigrationSet;
use crate::error::RunError;
use crate::oci::Layout;
use crate::release::{self, ReleaseManifest};

/// The pointer `run artifacts` writes.
pub const POINTER: &str = "releases/latest.json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pointer {
    release: String,
    manifest_digest: String,
}

/// The release whose migrations are applied.
pub struct ReleaseMigrations {
    pub release: String,
    pub manifest_digest: String,
    /// The migrations artifact's digest and its set; `None` when the release ships none.
    pub migrations: Option<(String, MigrationSet)>,
}

fn bad(resource: &str, message: impl Into<String>) -> RunError {
    RunError::BadInput { phase: PHASE.into(), resource: resource.to_owned(), message: message.into() }
}

fn oci(e: crate::oci::OciError) -> RunError {
    RunError::oci(PHASE, e)
}

/// Reads the current release's migrations from artifact storage.
pub async fn load(ctx: &Context) -> Result<ReleaseMigrations, RunError> {
    let container = ctx.container(&ctx.config.artifact_container)?;
    let where_ = format!("{}/{POINTER}", ctx.config.artifact_container);
    let pointer = container.get(POINTER).await.map_err(|e| RunError::azure(PHASE, e))?.ok_or_else(|| RunError::Phase {
        phase: PHASE.into(),
        code: "ReleaseNotFound".into(),
        resource: where_.clone(),
        message: "artifact storage holds no release yet; run `vibedata-bootstrap run artifacts` first".into(),
    })?;
    let pointer: Pointer = serde_json::from_slice(&pointer).map_err(|e| bad(&where_, format!("not a release pointer: {e}")))?;
    let layout = Layout::new(container);

    let release_manifest = read_manifest(&layout, &pointer.manifest_digest, release::MANIFEST_ARTIFACT_TYPE).await?;
    let document = single_layer(&layout, &pointer.manifest_digest, &release_manifest, release::MANIFEST_ARTIFACT_TYPE, release::MAX_MANIFEST_BYTES as u64).await?;
    let doc = parse_release(&document).map_err(|m| bad(&pointer.manifest_digest, m))?;
    if doc.release != pointer.release {
        return Err(bad(&where_, format!("names release {}, but its manifest is release {}", pointer.release, doc.release)));
    }
    let Some(pin) = doc.migrations else {
        tracing::info!(release = %doc.release, "the release ships no migrations");
        return Ok(ReleaseMigrations { release: doc.release, manifest_digest: pointer.manifest_digest, migrations: None });
    };
    let digest = pin.artifact.digest;
    let ref_name = format!("{}/migrations/migrations", doc.release);
    let by_ref = layout.resolve(&ref_name).await.map_err(oci)?.map(|d| d.digest);
    if by_ref.as_deref() != Some(digest.as_str()) {
        return Err(RunError::Phase {
            phase: PHASE.into(),
            code: "ArtifactStorageMismatch".into(),
            resource: ref_name,
            message: format!("the layout points at {}, the release manifest pins {digest}; rerun `run artifacts`", by_ref.as_deref().unwrap_or("nothing")),
        });
    }
    let artifact = read_manifest(&layout, &digest, release::MIGRATIONS_ARTIFACT_TYPE).await?;
    let layer = single_layer(&layout, &digest, &artifact, release::MIGRATIONS_LAYER_TYPE, crate::db::migrations::MAX_UNPACKED_BYTES).await?;
    let origin = format!("release {} migrations ({digest})", doc.release);
    let set = MigrationSet::from_tar_gz("release", &origin, &layer).map_err(|e| bad(&digest, e.to_string()))?;
    tracing::info!(release = %doc.release, digest = %digest, files = set.migrations.len(), "release migrations read and verified");
    Ok(ReleaseMigrations { release: doc.release, manifest_digest: pointer.manifest_digest, migrations: Some((digest, set)) })
}

/// The release manifest document: a known `schemaVersion` and the fields this phase reads. The
/// Artifact Bootstrap validated the rest before storing it.
fn parse_release(bytes: &[u8]) -> Result<ReleaseManifest, String> {
    let doc: ReleaseManifest = serde_json::from_slice(bytes).map_err(|e| format!("the release manifest is not valid: {e}"))?;
    if !release::SCHEMA_VERSIONS.contains(&doc.schema_version) {
        return Err(format!("schemaVersion {} is not supported by this binary", doc.schema_version));
    }
    Ok(doc)
}

/// An artifact manifest from the layout, verified, of the expected `artifactType`.
async fn read_manifest(layout: &Layout, digest: &str, artifact_type: &str) -> Result<OciImageManifest, RunError> {
    let bytes = layout.get_blob(digest).await.map_err(oci)?.ok_or_else(|| missing(digest))?;
    let m: OciImageManifest = serde_json::from_slice(&bytes).map_err(|e| bad(digest, format!("not an OCI manifest: {e}")))?;
    if m.artifact_type.as_deref() != Some(artifact_type) {
        return Err(bad(digest, format!("artifactType is {:?}, expected {artifact_type}", m.artifact_type.as_deref().unwrap_or("none"))));
    }
    Ok(m)
}

/// The one layer of `media_type` an artifact must have, verified against its digest and size.
async fn single_layer(layout: &Layout, digest: &str, m: &OciImageManifest, media_type: &str, max: u64) -> Result<bytes::Bytes, RunError> {
    let [layer] = m.layers.as_slice() else {
        return Err(bad(digest, format!("has {} layers, expected exactly one of {media_type}", m.layers.len())));
    };
    if layer.media_type != media_type {
        return Err(bad(digest, format!("its layer is {}, expected {media_type}", layer.media_type)));
    }
    if layer.size < 0 || layer.size as u64 > max {
        return Err(bad(digest, format!("its layer is {} bytes, over the {max}-byte limit", layer.size)));
    }
    let bytes = layout.get_blob(&layer.digest).await.map_err(oci)?.ok_or_else(|| missing(&layer.digest))?;
    if bytes.len() as i64 != layer.size {
        return Err(bad(&layer.digest, format!("is {} bytes, its descriptor says {}", bytes.len(), layer.size)));
    }
    Ok(bytes)
}

fn missing(digest: &str) -> RunError {
    RunError::Phase {
        phase: PHASE.into(),
        code: "BlobNotFound".into(),
        resource: format!("oci/blobs/{digest}"),
        message: "artifact storage lacks a blob the release needs; rerun `run artifacts`".into(),
    }
}
