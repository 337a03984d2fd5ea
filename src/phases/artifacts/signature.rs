//! The release manifest's Notary signature, verified in the publisher registry before anything
//! is imported: list the referrers of the pinned digest `D` (API, else the tag schema), try each
//! Notary signature up to the attempt cap, and accept the first that verifies.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::config::{ArtifactsConfig, VerificationLevel};
use crate::error::PhaseError;
use crate::notary::{self, Descriptor, Verified, MAX_SIGNATURES, SIGNATURE_ARTIFACT_TYPE};
use crate::oci::{ReferrersSource, Registry};

/// The largest envelope fetched: notation's own are a few KiB with a chain.
const MAX_ENVELOPE_BYTES: u64 = 1024 * 1024;

/// What verification found.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub level: VerificationLevel,
    /// The accepted signature manifest (as its referrers entry) and what it told.
    pub accepted: Option<(crate::oci::Descriptor, Verified)>,
    /// Why the others (or all, in audit mode) were not accepted.
    pub failures: Vec<String>,
    pub source: Option<ReferrersSource>,
}

impl Provenance {
    /// The outputs' `signature` object. In audit mode it says so loudly.
    pub fn summary(&self) -> Value {
        let mut v = json!({
            "verification": self.level.as_str(),
            "verified": self.accepted.is_some(),
            "scheme": "notary.x509",
            "revocation": "not checked (CRL/OCSP are off; certificates must be valid now)",
        });
        if let Some((d, ok)) = &self.accepted {
            v["signer"] = ok.signer.clone().into();
            v["envelope"] = ok.envelope.media_type().into();
            v["signingTime"] = notary::rfc3339(ok.signing_time).into();
            v["signatureDigest"] = d.digest.clone().into();
        }
        if let Some(s) = self.source {
            v["discovery"] = match s {
                ReferrersSource::Api => "referrers API",
                ReferrersSource::TagSchema => "referrers tag schema",
            }
            .into();
        }
        if self.level == VerificationLevel::Audit {
            v["warning"] =
                "AUDIT MODE: an unverified release is imported anyway; for rehearsals only, never a customer install"
                    .into();
            v["failures"] = self.failures.clone().into();
        }
        v
    }
}

/// Verifies `repo@subject` in the publisher registry. Strict: any failure is bad input (exit 2)
/// naming the manifest digest; audit: failures are logged and returned.
pub async fn verify(
    publisher: &Registry,
    repo: &str,
    subject: &Descriptor,
    cfg: &ArtifactsConfig,
) -> Result<Provenance, PhaseError> {
    let level = cfg.verification.level;
    let mut p = Provenance { level, accepted: None, failures: Vec::new(), source: None };
    let reason = match &cfg.verification.policy {
        None => "no trust store is configured (VIBEDATA_RELEASE_TRUST_STORE)".to_owned(),
        Some(policy) => match attempt(publisher, repo, subject, policy, &mut p).await? {
            Ok(()) => return Ok(p),
            Err(reason) => reason,
        },
    };
    let resource = format!("{}/{repo}@{}", cfg.publisher_registry, subject.digest);
    match level {
        VerificationLevel::Strict => {
            Err(PhaseError::bad_input(resource, format!("the release manifest's signature: {reason}")))
        }
        VerificationLevel::Audit => {
            tracing::warn!(manifest = %resource, "AUDIT MODE: the release manifest's signature did not verify ({reason}); importing anyway");
            p.failures.insert(0, reason);
            Ok(p)
        }
    }
}

/// Tries the signatures; `Ok(Err(reason))` when none verified.
async fn attempt(
    publisher: &Registry,
    repo: &str,
    subject: &Descriptor,
    policy: &notary::TrustPolicy,
    p: &mut Provenance,
) -> Result<Result<(), String>, PhaseError> {
    let referrers = publisher.referrers(repo, &subject.digest, SIGNATURE_ARTIFACT_TYPE).await?;
    p.source = Some(referrers.source);
    let found = referrers.manifests.len();
    if found == 0 {
        return Ok(Err("it is unsigned (no Notary signature among its referrers)".into()));
    }
    for r in referrers.manifests.iter().take(MAX_SIGNATURES) {
        match one(publisher, repo, subject, policy, &r.digest).await? {
            Ok(v) => {
                tracing::info!(signer = %v.signer, envelope = v.envelope.media_type(), signature = %r.digest, "release manifest signature verified");
                p.accepted = Some((r.clone(), v));
                return Ok(Ok(()));
            }
            Err(e) => {
                tracing::info!(signature = %r.digest, "signature not accepted: {e}");
                p.failures.push(format!("{}: {e}", r.digest));
            }
        }
    }
    let first = p.failures.first().cloned().unwrap_or_default();
    Ok(Err(if found > MAX_SIGNATURES {
        format!("none of the first {MAX_SIGNATURES} of its {found} signatures verified (the attempt cap); the first: {first}")
    } else if found == 1 {
        first
    } else {
        format!("none of its {found} signatures verified; the first: {first}")
    }))
}

/// One signature: its manifest, its envelope, the verifier. Bad content is `Ok(Err)`; a failed
/// request is an error of its own.
async fn one(
    publisher: &Registry,
    repo: &str,
    subject: &Descriptor,
    policy: &notary::TrustPolicy,
    digest: &str,
) -> Result<Result<Verified, String>, PhaseError> {
    use crate::oci::OciError;
    // What the signature's own content caused counts against it; a failing registry does not.
    let content = |e: OciError| -> Result<String, PhaseError> {
        match e {
            OciError::DigestMismatch { .. }
            | OciError::NotFound { .. }
            | OciError::Manifest { .. }
            | OciError::TooLarge { .. }
            | OciError::BadReference { .. } => Ok(e.to_string()),
            other => Err(other.into()),
        }
    };
    let m = match publisher.manifest(repo, digest).await {
        Ok(m) => m,
        Err(e) => return content(e).map(Err),
    };
    let layer = match notary::signature_layer(&m.bytes, subject) {
        Ok(l) => l,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if layer.size > MAX_ENVELOPE_BYTES {
        return Ok(Err(format!("its envelope is {} bytes, over {MAX_ENVELOPE_BYTES}", layer.size)));
    }
    let envelope = match publisher.blob_bytes(repo, &layer.digest, MAX_ENVELOPE_BYTES).await {
        Ok(b) => b,
        Err(e) => return content(e).map(Err),
    };
    Ok(notary::verify_envelope(&layer.media_type, &envelope, subject, policy, SystemTime::now())
        .map_err(|e| e.to_string()))
}

/// What the customer registry still needs to keep the accepted signature beside the manifest.
#[derive(Debug, Clone, Default)]
pub struct Carry {
    /// The signature manifest's digest, when the customer registry lacks it.
    pub import: Option<String>,
    /// On a registry without the referrers API: the tag-schema index to write, whole.
    pub index: Option<(String, bytes::Bytes)>,
}

/// Reads the customer registry: is the accepted signature there, and does its referrers index
/// (when it has no referrers API) list it?
pub async fn carry(customer: &Registry, repo: &str, subject: &str, p: &Provenance) -> Result<Carry, PhaseError> {
    let Some((sig, _)) = &p.accepted else { return Ok(Carry::default()) };
    let import = customer.manifest_digest(repo, &sig.digest).await?.is_none().then(|| sig.digest.clone());
    let index = customer.referrers_update(repo, subject, std::slice::from_ref(sig)).await?;
    Ok(Carry { import, index })
}
