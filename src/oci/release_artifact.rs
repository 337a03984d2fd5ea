//! The release manifest as a registry holds it: an OCI artifact whose one layer of type
//! [`release::MANIFEST_ARTIFACT_TYPE`] is the manifest document. Read by Artifact Bootstrap
//! (which validates it against its configuration) and by `copy --release`.

use bytes::Bytes;
use serde::Deserialize;

use super::{Descriptor, OciError, Registry};
use crate::release;

/// Why the artifact `repo@digest` holds no usable manifest document.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseArtifactError {
    /// The registry could not be read (or a digest did not verify).
    #[error(transparent)]
    Registry(#[from] OciError),
    /// What the digest names is not an OCI image manifest.
    #[error("the release manifest artifact is not an OCI manifest: {0}")]
    NotOci(String),
    /// The artifact has no layer of the manifest's media type.
    #[error("the artifact has no layer of media type {}", release::MANIFEST_ARTIFACT_TYPE)]
    NoLayer,
    /// The layer is bigger than a manifest may be.
    #[error("the manifest is {size} bytes, over the {}-byte limit", release::MAX_MANIFEST_BYTES)]
    TooLarge { size: u64 },
}

#[derive(Deserialize)]
struct Layers {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The manifest document of the artifact `repo@digest`, verified against its layer's digest.
pub async fn release_document(registry: &Registry, repo: &str, digest: &str) -> Result<Bytes, ReleaseArtifactError> {
    let m = registry.manifest(repo, digest).await?;
    let parsed: Layers = serde_json::from_slice(&m.bytes).map_err(|e| ReleaseArtifactError::NotOci(e.to_string()))?;
    let layer = parsed
        .layers
        .iter()
        .find(|l| l.media_type == release::MANIFEST_ARTIFACT_TYPE)
        .ok_or(ReleaseArtifactError::NoLayer)?;
    if layer.size as usize > release::MAX_MANIFEST_BYTES {
        return Err(ReleaseArtifactError::TooLarge { size: layer.size });
    }
    Ok(registry.blob_bytes(repo, &layer.digest, release::MAX_MANIFEST_BYTES as u64).await?)
}
