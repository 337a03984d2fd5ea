//! Notary Project signature verification (`notary.x509`, JWS and COSE envelopes), offline.
//!
//! Self-contained on purpose (it imports nothing else of this crate) so that it can be published
//! as a crate one day. What it checks, in order, for one signature of a subject manifest `D`:
//! the signature manifest's shape (`signature_layer`), then the envelope (`verify_envelope`):
//! its headers (`crit`, `signingScheme`, `cty`), the certificate chain (Notary's keyUsage, EKU and
//! basicConstraints rules, then a path to a trust-store root by `rustls-webpki`), the `alg` the
//! leaf key dictates, the signature itself, the payload's descriptor against `D`, the trusted
//! identity and the expiry. Revocation (CRL/OCSP) and RFC 3161 timestamps are not checked: every
//! certificate must be valid now, and callers must say so in what they report.

mod cert;
mod cose;
mod jws;
mod policy;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use std::time::SystemTime;

use serde::Deserialize;

pub use policy::{Identity, TrustPolicy};

/// `artifactType` (or, in the legacy form, `config.mediaType`) of a Notary signature manifest.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// The JWS envelope's layer media type.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// The COSE envelope's layer media type.
pub const COSE_MEDIA_TYPE: &str = "application/cose";
/// The signed payload's media type (`cty`).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// How many signatures of one subject are tried at most (notation's `--max-signatures` default).
pub const MAX_SIGNATURES: usize = 100;

const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
/// The only scheme accepted: `notary.x509.signingAuthority` needs a timestamp authority.
const SCHEME_X509: &str = "notary.x509";

/// Why a signature was not accepted. Each message names what failed; the caller adds the subject.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotaryError {
    /// The signature manifest is not a Notary signature of the subject (shape, layers, subject).
    #[error("not a Notary signature: {0}")]
    NotASignature(String),
    /// The envelope cannot be decoded (not flattened JWS JSON, not a tagged COSE_Sign1, bad base64).
    #[error("malformed {envelope} envelope: {reason}")]
    Malformed { envelope: &'static str, reason: String },
    /// A protected header the scheme requires is absent or has the wrong type.
    #[error("the protected header lacks a valid {0}")]
    MissingHeader(&'static str),
    /// A protected header has a value this verifier does not accept (scheme, content type, time).
    #[error("unsupported {header}: {value}")]
    Unsupported { header: &'static str, value: String },
    /// `crit` names a header this verifier does not understand, or omits one that must be critical.
    #[error("critical header {0}")]
    Critical(String),
    /// `alg` is not the algorithm the leaf certificate's key dictates (substitution defence).
    #[error("alg {alg} does not match the signing key ({key}, which signs with {wanted})")]
    AlgorithmMismatch { alg: String, key: String, wanted: String },
    /// The signature does not verify under the leaf certificate's key.
    #[error("the signature does not verify with the leaf certificate's key")]
    BadSignature,
    /// The signed payload does not describe the subject manifest.
    #[error("the signed payload's {field} is {got}, the manifest's is {want}")]
    PayloadMismatch { field: &'static str, got: String, want: String },
    /// A certificate breaks a Notary Project certificate rule (keyUsage, EKU, basicConstraints, key size).
    #[error("certificate {index} ({subject}): {reason}")]
    Certificate { index: usize, subject: String, reason: String },
    /// A certificate is outside its validity period now (no timestamp countersignature is honoured).
    #[error("certificate {index} ({subject}) {reason}")]
    Validity { index: usize, subject: String, reason: String },
    /// The chain does not lead to a certificate of the trust store.
    #[error("the certificate chain is not trusted: {0}")]
    Untrusted(String),
    /// The leaf's subject matches none of the trusted identities.
    #[error("the signer {0} is not a trusted identity")]
    IdentityMismatch(String),
    /// The signature carries an expiry that has passed.
    #[error("the signature expired at {0}")]
    Expired(String),
    /// The trust store text holds no certificate, or one that does not parse.
    #[error("the trust store {0}")]
    TrustStore(String),
    /// A trusted identity is not `x509.subject: <DN>`.
    #[error("trusted identity '{0}' is not of the form 'x509.subject: C=.., O=.., CN=..'")]
    BadIdentity(String),
}

/// The OCI descriptor of the signed manifest `D`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeType {
    Jws,
    Cose,
}

impl EnvelopeType {
    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeType::Jws => JWS_MEDIA_TYPE,
            EnvelopeType::Cose => COSE_MEDIA_TYPE,
        }
    }
}

/// What an accepted signature tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub envelope: EnvelopeType,
    /// The leaf certificate's subject (RFC 4514 order).
    pub signer: String,
    /// `io.cncf.notary.signingTime`, seconds since the epoch: the signer's claim, not a timestamp.
    pub signing_time: i64,
    pub signing_agent: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureManifest {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
}

/// Checks that `manifest` is a Notary signature manifest of `subject` and returns its one layer
/// (the envelope blob). Both the OCI 1.1 form (`artifactType`) and the legacy one (the type in
/// `config.mediaType`) are accepted.
pub fn signature_layer(manifest: &[u8], subject: &Descriptor) -> Result<Descriptor, NotaryError> {
    let m: SignatureManifest = serde_json::from_slice(manifest)
        .map_err(|e| NotaryError::NotASignature(format!("the manifest is not an OCI image manifest ({e})")))?;
    if m.media_type.as_deref() != Some("application/vnd.oci.image.manifest.v1+json") {
        return Err(NotaryError::NotASignature(format!("mediaType is {:?}", m.media_type.unwrap_or_default())));
    }
    let typed = match m.artifact_type.as_deref() {
        Some(t) => t == SIGNATURE_ARTIFACT_TYPE,
        None => m.config.media_type == SIGNATURE_ARTIFACT_TYPE,
    };
    if !typed {
        return Err(NotaryError::NotASignature(format!(
            "artifactType is {:?}, config.mediaType {}",
            m.artifact_type.unwrap_or_default(),
            m.config.media_type
        )));
    }
    match m.subject {
        Some(s) if s.digest == subject.digest => {}
        other => {
            return Err(NotaryError::NotASignature(format!(
                "its subject is {}, not {}",
                other.map(|s| s.digest).unwrap_or_else(|| "absent".into()),
                subject.digest
            )))
        }
    }
    let [layer] = <[Descriptor; 1]>::try_from(m.layers)
        .map_err(|l| NotaryError::NotASignature(format!("it has {} layers, not one", l.len())))?;
    if layer.media_type != JWS_MEDIA_TYPE && layer.media_type != COSE_MEDIA_TYPE {
        return Err(NotaryError::NotASignature(format!("its layer's media type is {}", layer.media_type)));
    }
    Ok(layer)
}

/// An envelope decoded into what every scheme checks the same way.
struct Decoded {
    kind: EnvelopeType,
    /// The `alg` as the envelope names it (`PS384`, `ES256`, …).
    alg: String,
    payload: Vec<u8>,
    signing_time: i64,
    expiry: Option<i64>,
    /// DER certificates, leaf first.
    chain: Vec<Vec<u8>>,
    /// The bytes the signature covers.
    signed: Vec<u8>,
    signature: Vec<u8>,
    signing_agent: Option<String>,
}

/// Verifies one envelope (`media_type` is its layer's) as a signature of `subject` under `policy`
/// at `now`.
pub fn verify_envelope(
    media_type: &str,
    envelope: &[u8],
    subject: &Descriptor,
    policy: &TrustPolicy,
    now: SystemTime,
) -> Result<Verified, NotaryError> {
    let d = match media_type {
        JWS_MEDIA_TYPE => jws::decode(envelope)?,
        COSE_MEDIA_TYPE => cose::decode(envelope)?,
        other => return Err(NotaryError::NotASignature(format!("envelope media type {other}"))),
    };
    let leaf = cert::check_chain(&d.chain, policy, now)?;
    if leaf.alg != d.alg {
        return Err(NotaryError::AlgorithmMismatch { alg: d.alg, key: leaf.key.clone(), wanted: leaf.alg.into() });
    }
    cert::verify_signature(&leaf, &d.signed, &d.signature)?;
    check_payload(&d.payload, subject)?;
    if !policy.trusts(&leaf.subject_attributes) {
        return Err(NotaryError::IdentityMismatch(leaf.subject));
    }
    let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Some(expiry) = d.expiry {
        if expiry <= now_secs {
            return Err(NotaryError::Expired(rfc3339(expiry)));
        }
    }
    Ok(Verified {
        envelope: d.kind,
        signer: leaf.subject,
        signing_time: d.signing_time,
        signing_agent: d.signing_agent,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    target_artifact: Descriptor,
}

fn check_payload(payload: &[u8], subject: &Descriptor) -> Result<(), NotaryError> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| NotaryError::PayloadMismatch {
        field: "document",
        got: format!("not a Notary payload ({e})"),
        want: "a targetArtifact descriptor".into(),
    })?;
    let t = p.target_artifact;
    let mismatch = |field, got: String, want: String| Err(NotaryError::PayloadMismatch { field, got, want });
    if t.digest != subject.digest {
        return mismatch("digest", t.digest, subject.digest.clone());
    }
    if t.size != subject.size {
        return mismatch("size", t.size.to_string(), subject.size.to_string());
    }
    if t.media_type != subject.media_type {
        return mismatch("mediaType", t.media_type, subject.media_type.clone());
    }
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Checks `crit` against the headers present: the scheme must be critical, so must the expiry
/// when present, and nothing this verifier does not understand may be.
fn check_critical(crit: &[String], has_expiry: bool) -> Result<(), NotaryError> {
    for c in crit {
        if c != SIGNING_SCHEME && c != EXPIRY {
            return Err(NotaryError::Critical(format!("{c} is not understood")));
        }
        if c == EXPIRY && !has_expiry {
            return Err(NotaryError::Critical(format!("{c} is listed but absent")));
        }
    }
    for required in [Some(SIGNING_SCHEME), has_expiry.then_some(EXPIRY)].into_iter().flatten() {
        if !crit.iter().any(|c| c == required) {
            return Err(NotaryError::Critical(format!("{required} is not marked critical")));
        }
    }
    Ok(())
}

fn check_scheme(scheme: Option<&str>) -> Result<(), NotaryError> {
    match scheme {
        None => Err(NotaryError::MissingHeader(SIGNING_SCHEME)),
        Some(SCHEME_X509) => Ok(()),
        Some(other) => Err(NotaryError::Unsupported { header: SIGNING_SCHEME, value: other.into() }),
    }
}

fn check_content_type(cty: Option<&str>) -> Result<(), NotaryError> {
    match cty {
        Some(PAYLOAD_MEDIA_TYPE) => Ok(()),
        None => Err(NotaryError::MissingHeader("content type (cty)")),
        Some(other) => Err(NotaryError::Unsupported { header: "content type (cty)", value: other.into() }),
    }
}
