//! Reads the release's runbooks from artifact storage (DESIGN §4), never from the publisher:
//! `releases/latest.json` names the release and its manifest digest; the manifest document is
//! checked against the release-manifest artifact in the OCI layout; each runbook's layout ref
//! must point at the digest the manifest pins. Every blob is verified on the way out
//! ([`Layout::get_blob`]), and every runbook is extracted and validated here, before the phase
//! mutates anything.

use serde::Deserialize;

use super::extract::{self, Script};
use super::PHASE;
use crate::context::Context;
use crate::error::RunError;
use crate::oci::reference::valid_tag;
use crate::oci::{Descriptor, Layout};
use crate::release::{self, ReleaseManifest, RunbookEntry};

/// A runbook of the release, with its validated script.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub entry: RunbookEntry,
    pub script: Script,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub release: String,
    pub manifest_digest: String,
    pub runbooks: Vec<Loaded>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pointer {
    release: String,
    manifest_digest: String,
}

/// The parts of an OCI artifact manifest we check.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn bad(resource: impl Into<String>, message: impl Into<String>) -> RunError {
    RunError::BadInput { phase: PHASE.into(), resource: resource.into(), message: message.into() }
}

/// Reads, verifies and extracts every runbook of the current release. `limit` bounds each script.
pub async fn load(ctx: &Context, limit: u64) -> Result<Release, RunError> {
    let storage = &ctx.config.artifact_container;
    let container = ctx.container(storage)?;
    let az = |e| RunError::azure(PHASE, e);
    let oci = |e| RunError::oci(PHASE, e);

    let pointer_path = "releases/latest.json";
    let pointer = container.get(pointer_path).await.map_err(az)?.ok_or_else(|| RunError::Phase {
        phase: PHASE.into(),
        code: "ReleaseNotFound".into(),
        resource: format!("{storage}/{pointer_path}"),
        message: "artifact storage holds no release; the Artifact Bootstrap (run artifacts) stores it".into(),
    })?;
    let pointer: Pointer = serde_json::from_slice(&pointer).map_err(|e| bad(format!("{storage}/{pointer_path}"), format!("not a release pointer: {e}")))?;
    // The release names a blob path below; a tag's alphabet keeps it inside `releases/`.
    if !valid_tag(&pointer.release) {
        return Err(bad(format!("{storage}/{pointer_path}"), format!("release {:?} is not a valid release name", pointer.release)));
    }

    let doc_path = format!("releases/{}/manifest.json", pointer.release);
    let document = container.get(&doc_path).await.map_err(az)?.ok_or_else(|| bad(format!("{storage}/{doc_path}"), "the release manifest is missing"))?;
    let layout = Layout::new(container);
    verify_document(&layout, &pointer.manifest_digest, &document, &format!("{storage}/{doc_path}")).await?;
    let manifest = parse(&document, &pointer.release, &format!("{storage}/{doc_path}"))?;

    let mut runbooks = Vec::with_capacity(manifest.runbooks.len());
    for entry in manifest.runbooks {
        let ref_name = format!("{}/runbook/{}", manifest.release, entry.name);
        let resource = format!("{storage}/oci {ref_name}");
        // The same codes as the DB Deployment's reader: both mean "rerun `run artifacts`".
        let by_ref = layout.resolve(&ref_name).await.map_err(oci)?.map(|d| d.digest);
        if by_ref.as_deref() != Some(entry.artifact.digest.as_str()) {
            return Err(RunError::Phase {
                phase: PHASE.into(),
                code: "ArtifactStorageMismatch".into(),
                resource,
                message: format!("the layout points at {}, the release manifest pins {}; rerun `run artifacts`", by_ref.as_deref().unwrap_or("nothing"), entry.artifact.digest),
            });
        }
        let layer = runbook_layer(&layout, &entry, &resource, limit).await?;
        let script = extract::extract(&layer, &entry, limit).map_err(|e| bad(&resource, format!("runbook {}: {e}", entry.name)))?;
        tracing::debug!(runbook = %entry.name, digest = %script.digest, "runbook extracted and validated");
        runbooks.push(Loaded { entry, script });
    }
    tracing::info!(release = %manifest.release, runbooks = runbooks.len(), "read, verified and validated every runbook of the release");
    Ok(Release { release: manifest.release, manifest_digest: pointer.manifest_digest, runbooks })
}

/// The manifest document must be the layer of the release-manifest artifact that the pointer's
/// digest names, so the runbook digests it pins are the ones the publisher pinned.
async fn verify_document(layout: &Layout, manifest_digest: &str, document: &[u8], resource: &str) -> Result<(), RunError> {
    let artifact = blob(layout, manifest_digest, resource).await?;
    let parsed: ArtifactManifest = serde_json::from_slice(&artifact).map_err(|e| bad(resource, format!("the release-manifest artifact {manifest_digest} is not an OCI manifest: {e}")))?;
    let layer = parsed
        .layers
        .iter()
        .find(|l| l.media_type == release::MANIFEST_ARTIFACT_TYPE)
        .ok_or_else(|| bad(resource, format!("the release-manifest artifact {manifest_digest} has no {} layer", release::MANIFEST_ARTIFACT_TYPE)))?;
    crate::oci::verify_digest(resource, &layer.digest, document).map_err(|e| RunError::oci(PHASE, e))
}

/// Parses the stored document and re-checks what this phase relies on: it may have been written
/// by hand or by an older binary, and nothing has been published yet.
fn parse(document: &[u8], release: &str, resource: &str) -> Result<ReleaseManifest, RunError> {
    if document.len() > release::MAX_MANIFEST_BYTES {
        return Err(bad(resource, format!("the manifest is over the {}-byte limit", release::MAX_MANIFEST_BYTES)));
    }
    let manifest: ReleaseManifest = serde_json::from_slice(document).map_err(|e| bad(resource, format!("not a release manifest: {e}")))?;
    if !release::SCHEMA_VERSIONS.contains(&manifest.schema_version) {
        return Err(bad(resource, format!("schemaVersion {} is not supported by this binary", manifest.schema_version)));
    }
    if manifest.release != release {
        return Err(bad(resource, format!("the manifest is of release {:?}, the pointer names {release:?}", manifest.release)));
    }
    release::check_runbooks(&manifest.runbooks).map_err(|e| bad(resource, e.to_string()))?;
    Ok(manifest)
}

/// The one layer of a runbook artifact, verified, after checking the artifact's shape.
async fn runbook_layer(layout: &Layout, entry: &RunbookEntry, resource: &str, limit: u64) -> Result<Vec<u8>, RunError> {
    let manifest = blob(layout, &entry.artifact.digest, resource).await?;
    let parsed: ArtifactManifest = serde_json::from_slice(&manifest).map_err(|e| bad(resource, format!("not an OCI artifact manifest: {e}")))?;
    if parsed.artifact_type.as_deref() != Some(release::RUNBOOK_ARTIFACT_TYPE) {
        return Err(bad(resource, format!("artifactType is {:?}, expected {}", parsed.artifact_type.as_deref().unwrap_or("none"), release::RUNBOOK_ARTIFACT_TYPE)));
    }
    let [layer] = parsed.layers.as_slice() else {
        return Err(bad(resource, format!("a runbook artifact has exactly one layer; this one has {}", parsed.layers.len())));
    };
    if layer.media_type != release::RUNBOOK_LAYER_TYPE {
        return Err(bad(resource, format!("layer media type is {}, expected {}", layer.media_type, release::RUNBOOK_LAYER_TYPE)));
    }
    // A compressed script is smaller than the script plus its tar framing; a bigger layer is
    // refused before it is read into memory.
    let max = limit + extract::FRAMING;
    if layer.size > max {
        return Err(bad(resource, format!("runbook {}: the layer is {} bytes, over the {max}-byte limit", entry.name, layer.size)));
    }
    blob(layout, &layer.digest, resource).await
}

async fn blob(layout: &Layout, digest: &str, resource: &str) -> Result<Vec<u8>, RunError> {
    layout
        .get_blob(digest)
        .await
        .map_err(|e| RunError::oci(PHASE, e))?
        .map(|b| b.to_vec())
        .ok_or_else(|| RunError::Phase {
            phase: PHASE.into(),
            code: "BlobNotFound".into(),
            resource: format!("{resource}: oci/blobs/{digest}"),
            message: "artifact storage lacks a blob the release needs; rerun `run artifacts`".into(),
        })
}
