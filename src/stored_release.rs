//! The current release as the Artifact Bootstrap stored it (DESIGN §4), for the phases after it.
//!
//! Later phases read artifact storage, never the publisher. `releases/latest.json` names the
//! release and its manifest digest; the manifest document is checked against the release-manifest
//! artifact in the OCI layout, and each artifact's layout ref must point at the digest the
//! manifest pins. Every blob is verified on the way out ([`Layout::get_blob`]).

use bytes::Bytes;
use serde::Deserialize;

use crate::context::Context;
use crate::error::{Code, PhaseError};
use crate::oci::reference::valid_tag;
use crate::oci::{Descriptor, Layout};
use crate::release::{self, ReleaseManifest};

/// Where artifact storage keeps what: the one place these names are spelled.
pub mod paths {
    /// Where `run artifacts` points at the current release.
    pub const POINTER: &str = "releases/latest.json";

    /// The manifest document of `release`, as JSON for readers without an OCI client.
    pub fn manifest_json(release: &str) -> String {
        format!("releases/{release}/manifest.json")
    }

    /// Layout ref names (`org.opencontainers.image.ref.name`) of a release's artifacts.
    pub fn manifest_ref(release: &str) -> String {
        format!("{release}/manifest/release")
    }

    pub fn runbook_ref(release: &str, runbook: &str) -> String {
        format!("{release}/runbook/{runbook}")
    }

    pub fn migrations_ref(release: &str) -> String {
        format!("{release}/migrations/migrations")
    }

    pub fn chart_ref(release: &str, chart: &str) -> String {
        format!("{release}/chart/{chart}")
    }

    pub fn ai_ref(release: &str) -> String {
        format!("{release}/ai/definitions")
    }

    /// The Day-0 report the health phase leaves behind (bookkeeping, not a change).
    pub const DAY0_REPORT: &str = "reports/day0.html";
}

pub use paths::POINTER;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pointer {
    release: String,
    manifest_digest: String,
}

/// The parts of an OCI artifact manifest the readers check.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The release in artifact storage, its manifest verified and parsed.
pub struct StoredRelease {
    pub release: String,
    pub manifest_digest: String,
    pub manifest: ReleaseManifest,
    layout: Layout,
    storage: String,
}

impl StoredRelease {
    /// Reads and verifies the current release; fails when artifact storage holds none.
    pub async fn load(ctx: &Context) -> Result<StoredRelease, PhaseError> {
        let pointer_at = format!("{}/{POINTER}", ctx.config.artifact_container);
        StoredRelease::current(ctx).await?.ok_or_else(|| {
            PhaseError::failed(
                Code::ReleaseNotFound,
                pointer_at,
                "artifact storage holds no release yet; the Artifact Bootstrap (`run artifacts`) stores it",
            )
        })
    }

    /// Reads and verifies the current release, if artifact storage holds one.
    pub async fn current(ctx: &Context) -> Result<Option<StoredRelease>, PhaseError> {
        let storage = ctx.config.artifact_container.clone();
        let container = ctx.container(&storage)?;
        let bad = |resource: String, message: String| PhaseError::BadInput { resource, message };
        let pointer_at = format!("{storage}/{POINTER}");
        let Some(pointer) = container.get(POINTER).await? else { return Ok(None) };
        let pointer: Pointer = serde_json::from_slice(&pointer)
            .map_err(|e| bad(pointer_at.clone(), format!("not a release pointer: {e}")))?;
        // The release names a blob path below; a tag's alphabet keeps it inside `releases/`.
        if !valid_tag(&pointer.release) {
            return Err(bad(pointer_at, format!("release {:?} is not a valid release name", pointer.release)));
        }
        let layout = Layout::new(container);
        let stored = StoredRelease {
            release: pointer.release.clone(),
            manifest_digest: pointer.manifest_digest.clone(),
            manifest: ReleaseManifest {
                schema_version: 0,
                release: String::new(),
                images: vec![],
                runbooks: vec![],
                migrations: None,
                charts: vec![],
                ai: None,
            },
            layout,
            storage,
        };
        // The document is the one layer of the release-manifest artifact the pointer names, so
        // the digests it pins are the ones the publisher pinned.
        let resource = format!("{}/oci {}", stored.storage, stored.manifest_digest);
        let document = stored
            .single_layer(
                &stored.manifest_digest,
                release::MANIFEST_ARTIFACT_TYPE,
                release::MANIFEST_ARTIFACT_TYPE,
                release::MAX_MANIFEST_BYTES as u64,
                &resource,
            )
            .await?;
        let manifest: ReleaseManifest = serde_json::from_slice(&document)
            .map_err(|e| bad(resource.clone(), format!("not a release manifest: {e}")))?;
        if !release::SCHEMA_VERSIONS.contains(&manifest.schema_version) {
            return Err(bad(
                resource,
                format!("schemaVersion {} is not supported by this binary", manifest.schema_version),
            ));
        }
        if manifest.release != pointer.release {
            return Err(bad(
                resource,
                format!("the manifest is of release {:?}, the pointer names {:?}", manifest.release, pointer.release),
            ));
        }
        Ok(Some(StoredRelease { manifest, ..stored }))
    }

    /// The one layer of the artifact stored under `ref_name`, after checking that the ref points at
    /// `pinned` (the manifest's digest), the artifact's type, and the layer's media type and size.
    pub async fn artifact_layer(
        &self,
        ref_name: &str,
        pinned: &str,
        artifact_type: &str,
        layer_type: &str,
        max: u64,
    ) -> Result<Bytes, PhaseError> {
        let resource = format!("{}/oci {ref_name}", self.storage);
        let by_ref = self.layout.resolve(ref_name).await?.map(|d| d.digest);
        if by_ref.as_deref() != Some(pinned) {
            return Err(PhaseError::failed(
                Code::ArtifactStorageMismatch,
                resource,
                format!(
                    "the layout points at {}, the release manifest pins {pinned}; rerun `run artifacts`",
                    by_ref.as_deref().unwrap_or("nothing")
                ),
            ));
        }
        self.single_layer(pinned, artifact_type, layer_type, max, &resource).await
    }

    async fn single_layer(
        &self,
        digest: &str,
        artifact_type: &str,
        layer_type: &str,
        max: u64,
        resource: &str,
    ) -> Result<Bytes, PhaseError> {
        let bad = |message: String| PhaseError::bad_input(resource, message);
        let bytes = self.blob(digest, resource).await?;
        let m: ArtifactManifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("{digest} is not an OCI artifact manifest: {e}")))?;
        if m.artifact_type.as_deref() != Some(artifact_type) {
            return Err(bad(format!(
                "artifactType is {:?}, expected {artifact_type}",
                m.artifact_type.as_deref().unwrap_or("none")
            )));
        }
        let [layer] = m.layers.as_slice() else {
            return Err(bad(format!("has {} layers, expected exactly one of {layer_type}", m.layers.len())));
        };
        if layer.media_type != layer_type {
            return Err(bad(format!("its layer is {}, expected {layer_type}", layer.media_type)));
        }
        // Refused before it is read into memory.
        if layer.size > max {
            return Err(bad(format!("its layer is {} bytes, over the {max}-byte limit", layer.size)));
        }
        let bytes = self.blob(&layer.digest, resource).await?;
        if bytes.len() as u64 != layer.size {
            return Err(bad(format!(
                "layer {} is {} bytes, its descriptor says {}",
                layer.digest,
                bytes.len(),
                layer.size
            )));
        }
        Ok(bytes)
    }

    async fn blob(&self, digest: &str, resource: &str) -> Result<Bytes, PhaseError> {
        self.layout.get_blob(digest).await?.ok_or_else(|| {
            PhaseError::failed(
                Code::BlobNotFound,
                format!("{resource}: oci/blobs/{digest}"),
                "artifact storage lacks a blob the release needs; rerun `run artifacts`",
            )
        })
    }
}
