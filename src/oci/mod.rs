//! The registry data plane: references, the ACR token exchange, digest-verified streaming copies
//! between registries, and the OCI Image Layout kept in artifact storage.
//!
//! - [`auth`]: who we are to a registry, and to which hosts each secret may go;
//! - [`client`]: one registry ([`Registry`]), over `oci-client` plus a few direct calls;
//! - [`copy`]: copy one image or index by digest, with bounded memory and parallelism;
//! - [`layout`]: the content-addressed OCI layout under `oci/` in a Blob container;
//! - [`release_artifact`]: the release manifest document out of its artifact.

pub mod auth;
pub mod client;
pub mod copy;
pub mod layout;
pub mod reference;
mod referrers;
pub mod release_artifact;
mod stream;
mod transport;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use auth::{AcrIdentity, Credentials};
pub use client::{Manifest, Registry, RegistryOptions};
pub use copy::{copy, CopyOptions, CopyReport};
pub use layout::Layout;
pub use referrers::{schema_index, tag_schema, Referrers, ReferrersSource};

use crate::azure::AzureError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What we ask for on every manifest GET/HEAD: single-platform manifests and indexes alike, so a
/// multi-arch tag resolves to its index (never to one platform picked for us).
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// The largest manifest we accept. Registries cap manifests at 4 MiB (distribution, ACR); a
/// bigger answer is not a manifest and would only cost memory.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Everything that can go wrong on the registry data plane.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A reference (`host[:port]/repo:tag`, a repository, a tag, a digest) is malformed. Returned
    /// before any request is sent.
    #[error("bad reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },

    /// Content did not hash to the digest that names it: a manifest fetched by digest, a blob
    /// while streaming, or a blob read from artifact storage. Nothing was committed with it.
    #[error("{repository}: content of {expected} hashes to {actual}; refusing it")]
    DigestMismatch { repository: String, expected: String, actual: String },

    /// A registry's 401 challenge names a token realm on a host that is neither the registry
    /// itself nor its configured auth endpoint. Nothing was sent there.
    #[error("{registry}: refused the token realm {realm}: credentials for this registry only go to {allowed}")]
    RealmRefused { registry: String, realm: String, allowed: String },

    /// A secret would have gone to a host it does not belong to (an AAD token to anything but the
    /// configured exchange endpoint, a password to anything but its registry). Not sent.
    #[error("refused to send {what} to {host}: it only goes to {allowed}")]
    SecretHostMismatch { what: &'static str, host: String, allowed: String },

    /// The ACR token exchange or a registry token server refused us, or answered nonsense.
    #[error("{registry}: cannot get a registry token: {detail}")]
    Auth { registry: String, detail: String },

    /// The registry answered 401/403 with the credential we negotiated (after one fresh token).
    #[error("{registry}: access to {resource} denied (HTTP {status} {code})")]
    Denied { registry: String, resource: String, status: u16, code: String },

    /// A manifest or blob that must exist does not (404 / `*_UNKNOWN`).
    #[error("{registry}: {resource} not found")]
    NotFound { registry: String, resource: String },

    /// The registry answered an error that retrying does not fix, or a throttle/5xx that
    /// outlasted every retry of the shared `RetryPolicy`.
    #[error("{registry}: {resource}: HTTP {status} {code}: {message}")]
    Registry { registry: String, resource: String, status: u16, code: String, message: String },

    /// The registry could not be reached, or the connection broke, after every retry.
    #[error("{registry}: {resource}: cannot reach the registry: {detail}")]
    Transport { registry: String, resource: String, detail: String },

    /// A manifest we cannot copy faithfully: not JSON, an unknown media type, too big, or a
    /// Docker schema 1 manifest.
    #[error("{resource}: unsupported manifest: {detail}")]
    Manifest { resource: String, detail: String },

    /// After the copy, the target tag or digest does not name the source digest.
    #[error("{registry}/{repository}:{reference} is {actual}, expected {expected} after the copy")]
    VerifyFailed { registry: String, repository: String, reference: String, expected: String, actual: String },

    /// A blob read whole is bigger than what may be held in memory for it: not one of ours.
    #[error("{resource} is larger than {max} bytes")]
    TooLarge { resource: String, max: u64 },

    /// Getting an AAD token for the ACR exchange failed, or artifact storage failed.
    #[error(transparent)]
    Azure(#[from] AzureError),

    /// The HTTP client could not be built (e.g. an unreadable CA file).
    #[error("{0}")]
    Local(String),
}

impl OciError {
    /// A stable code for outputs and the last stderr line.
    pub fn code(&self) -> &str {
        match self {
            OciError::BadReference { .. } => "BadReference",
            OciError::DigestMismatch { .. } => "DigestMismatch",
            OciError::RealmRefused { .. } => "RealmRefused",
            OciError::SecretHostMismatch { .. } => "SecretHostMismatch",
            OciError::Auth { .. } => "RegistryAuthFailed",
            OciError::Denied { code, .. } | OciError::Registry { code, .. } => code,
            OciError::NotFound { .. } => "NotFound",
            OciError::Transport { .. } => "RegistryUnreachable",
            OciError::Manifest { .. } => "UnsupportedManifest",
            OciError::TooLarge { .. } => "BlobTooLarge",
            OciError::VerifyFailed { .. } => "VerifyFailed",
            OciError::Azure(e) => e.code(),
            OciError::Local(_) => "LocalError",
        }
    }

    /// 2 for bad input (nothing was sent), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            OciError::BadReference { .. } => 2,
            _ => 1,
        }
    }

    /// Worth trying the whole operation again (a broken stream, a throttle that outlived the
    /// per-request retries is not: the policy already waited).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, OciError::Transport { .. })
            || matches!(self, OciError::Registry { status, .. } if crate::azure::retry::is_retried_status(*status))
    }
}

/// An OCI content descriptor, as in manifests and `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An error out of a blob stream ([`Registry::blob_stream`]): a digest that did not verify is
/// [`OciError::DigestMismatch`], anything else a broken transfer.
pub fn stream_error(e: std::io::Error, registry: &Registry, repository: &str, resource: &str) -> OciError {
    transport::from_io(e, registry.host(), repository, resource)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Fails with [`OciError::DigestMismatch`] unless `bytes` hash to `digest`.
pub fn verify_digest(repository: &str, digest: &str, bytes: &[u8]) -> Result<(), OciError> {
    let actual = sha256_digest(bytes);
    if actual == digest {
        Ok(())
    } else {
        Err(OciError::DigestMismatch { repository: repository.to_owned(), expected: digest.to_owned(), actual })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        let d = sha256_digest(b"{}");
        assert_eq!(d, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert!(verify_digest("r", &d, b"{}").is_ok());
        let e = verify_digest("vibedata/api", &d, b"{ }").unwrap_err();
        assert!(matches!(e, OciError::DigestMismatch { .. }));
        assert!(e.to_string().contains("vibedata/api") && e.to_string().contains(&d), "{e}");
    }
}
