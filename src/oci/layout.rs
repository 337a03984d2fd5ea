//! The content-addressed OCI Image Layout in artifact storage (DESIGN §4): `oci/oci-layout`,
//! `oci/index.json`, `oci/blobs/sha256/<hex>`, shared by all releases. Later phases and Day-2
//! updates read release artifacts from here, never from the publisher.
//!
//! Every write is skipped when the content is already there, so a rerun against an unchanged
//! platform writes nothing, and each write reports whether it happened (the phase counts those
//! as `changes`). Blobs are verified against their digest on the way in and on the way out.
//!
//! `index.json` is read-modify-written without a condition: the Artifact Bootstrap phase, its
//! only writer, runs under its phase lock.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::reference::valid_digest;
use super::{verify_digest, Descriptor, OciError, OCI_INDEX};
use crate::azure::blob::Container;

/// The annotation naming an `index.json` entry: `<release>/<kind>/<name>`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI Image Layout under a prefix of a Blob container.
#[derive(Clone)]
pub struct Layout {
    container: Container,
    prefix: String,
}

impl Layout {
    /// The layout under `oci/`, as DESIGN §4 places it.
    pub fn new(container: Container) -> Layout {
        Self::with_prefix(container, "oci")
    }

    pub fn with_prefix(container: Container, prefix: &str) -> Layout {
        Layout { container, prefix: prefix.trim_matches('/').to_owned() }
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn blob_path(digest: &str, prefix: &str) -> Result<String, OciError> {
        if !valid_digest(digest) {
            return Err(OciError::BadReference { reference: digest.into(), reason: "not a sha256 digest".into() });
        }
        Ok(format!("{prefix}/blobs/sha256/{}", &digest["sha256:".len()..]))
    }

    fn resource(&self) -> String {
        format!("{}/{}", self.container.name(), self.prefix)
    }

    /// Writes `oci-layout` unless it is there with the same content. Returns whether it wrote.
    /// Whether [`Layout::init`] would find nothing to write.
    pub async fn is_initialized(&self) -> Result<bool, OciError> {
        Ok(self.container.get(&self.path("oci-layout")).await?.as_deref() == Some(OCI_LAYOUT))
    }

    pub async fn init(&self) -> Result<bool, OciError> {
        let path = self.path("oci-layout");
        if self.container.get(&path).await?.as_deref() == Some(OCI_LAYOUT) {
            return Ok(false);
        }
        self.container.put(&path, Bytes::from_static(OCI_LAYOUT), "application/json", None).await?;
        Ok(true)
    }

    /// Stores a blob under its digest after checking that `bytes` hash to it. Skipped (returns
    /// `false`) when a blob of that name exists: the name is the content's hash.
    pub async fn put_blob(&self, digest: &str, bytes: Bytes) -> Result<bool, OciError> {
        let path = Self::blob_path(digest, &self.prefix)?;
        verify_digest(&self.resource(), digest, &bytes)?;
        if self.container.blob_exists(&path).await? {
            return Ok(false);
        }
        self.container.put(&path, bytes, "application/octet-stream", None).await?;
        Ok(true)
    }

    /// A blob, verified against its digest on the way out; `None` when the layout lacks it.
    pub async fn get_blob(&self, digest: &str) -> Result<Option<Bytes>, OciError> {
        let path = Self::blob_path(digest, &self.prefix)?;
        let Some(bytes) = self.container.get(&path).await? else { return Ok(None) };
        verify_digest(&self.resource(), digest, &bytes)?;
        Ok(Some(bytes))
    }

    async fn read_index(&self) -> Result<(Index, Option<Bytes>), OciError> {
        let path = self.path("index.json");
        match self.container.get(&path).await? {
            None => Ok((Index::default(), None)),
            Some(bytes) => {
                let index = serde_json::from_slice(&bytes).map_err(|e| OciError::Manifest {
                    resource: format!("{}/index.json", self.resource()),
                    detail: e.to_string(),
                })?;
                Ok((index, Some(bytes)))
            }
        }
    }

    /// Points `ref_name` (`<release>/<kind>/<name>`) at `descriptor` in `index.json`, replacing
    /// an entry of that name. Writes only when the document changes; returns whether it wrote.
    pub async fn add_ref(&self, ref_name: &str, descriptor: &Descriptor) -> Result<bool, OciError> {
        if !valid_ref_name(ref_name) {
            return Err(OciError::BadReference {
                reference: ref_name.into(),
                reason: "expected <release>/<kind>/<name>".into(),
            });
        }
        if !valid_digest(&descriptor.digest) {
            return Err(OciError::BadReference {
                reference: descriptor.digest.clone(),
                reason: "not a sha256 digest".into(),
            });
        }
        let (mut index, old) = self.read_index().await?;
        let mut entry = descriptor.clone();
        entry.annotations.insert(REF_NAME.to_owned(), ref_name.to_owned());
        index.manifests.retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(ref_name));
        index.manifests.push(entry);
        // A stable order, so the same set of refs is always the same bytes.
        index.manifests.sort_by(|a, b| {
            a.annotations.get(REF_NAME).cmp(&b.annotations.get(REF_NAME)).then_with(|| a.digest.cmp(&b.digest))
        });
        let mut new = serde_json::to_vec_pretty(&index).expect("index serializes");
        new.push(b'\n');
        if old.as_deref() == Some(new.as_slice()) {
            return Ok(false);
        }
        self.container.put(&self.path("index.json"), Bytes::from(new), OCI_INDEX, None).await?;
        Ok(true)
    }

    /// The descriptor `ref_name` points at, if any.
    pub async fn resolve(&self, ref_name: &str) -> Result<Option<Descriptor>, OciError> {
        let (index, _) = self.read_index().await?;
        Ok(index.manifests.into_iter().find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(ref_name)))
    }
}

/// `<release>/<kind>/<name>`: three or more non-empty components of the characters the OCI
/// `ref.name` grammar allows.
pub fn valid_ref_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '@' | '+'))
        })
        && !parts.iter().any(|p| *p == "." || *p == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        assert!(valid_ref_name("2026.11.0/runbook/rotate-keys"));
        assert!(valid_ref_name("2026.11.0/migrations/vibedata-db-migrations"));
        assert!(!valid_ref_name("2026.11.0/runbook"));
        assert!(!valid_ref_name("2026.11.0//x"));
        assert!(!valid_ref_name("2026.11.0/../x"));
        assert!(!valid_ref_name("a/b/c d"));
    }

    #[test]
    fn blob_paths_are_content_addressed_and_checked() {
        let d = crate::oci::sha256_digest(b"x");
        assert_eq!(Layout::blob_path(&d, "oci").unwrap(), format!("oci/blobs/sha256/{}", &d[7..]));
        assert!(Layout::blob_path("sha256:../../index.json", "oci").is_err());
    }
}
