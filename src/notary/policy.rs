//! The trust store (publisher root certificates, PEM) and the trusted identities.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use webpki::anchor_from_trusted_cert;

use super::NotaryError;

/// A trusted identity: the leaf subject's attributes that must all be present (notation's
/// `x509.subject` set match: the certificate may carry more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    attributes: Vec<(String, String)>,
}

impl Identity {
    /// Parses `x509.subject: C=US, ST=WA, O=Publisher, CN=Release`. Values may not contain commas.
    pub fn parse(text: &str) -> Result<Identity, NotaryError> {
        let bad = || NotaryError::BadIdentity(text.to_owned());
        let dn = text.trim().strip_prefix("x509.subject:").ok_or_else(bad)?;
        let attributes = dn
            .split(',')
            .map(|part| {
                let (k, v) = part.split_once('=').ok_or_else(bad)?;
                let (k, v) = (k.trim().to_ascii_uppercase(), v.trim().to_owned());
                if k.is_empty() || v.is_empty() {
                    return Err(bad());
                }
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys: Vec<_> = attributes.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        if keys.len() != attributes.len() {
            return Err(bad());
        }
        Ok(Identity { attributes })
    }

    fn matches(&self, subject: &[(String, String)]) -> bool {
        self.attributes.iter().all(|a| subject.contains(a))
    }
}

/// Trust-store roots and trusted identities: what `verify_envelope` accepts.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    roots: Vec<CertificateDer<'static>>,
    identities: Vec<Identity>,
}

impl TrustPolicy {
    /// `pem` holds one or more `CERTIFICATE` blocks; `identities` at least one `x509.subject: …`.
    pub fn new(pem: &str, identities: &[String]) -> Result<TrustPolicy, NotaryError> {
        let roots = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NotaryError::TrustStore(format!("is not PEM ({e})")))?;
        if roots.is_empty() {
            return Err(NotaryError::TrustStore("holds no CERTIFICATE block".into()));
        }
        for (i, r) in roots.iter().enumerate() {
            anchor_from_trusted_cert(r)
                .map_err(|e| NotaryError::TrustStore(format!("certificate {i} does not parse ({e})")))?;
        }
        if identities.is_empty() {
            return Err(NotaryError::BadIdentity(String::new()));
        }
        let identities = identities.iter().map(|i| Identity::parse(i)).collect::<Result<_, _>>()?;
        Ok(TrustPolicy { roots, identities })
    }

    pub fn roots(&self) -> usize {
        self.roots.len()
    }

    pub(super) fn holds(&self, der: &[u8]) -> bool {
        self.roots.iter().any(|r| r.as_ref() == der)
    }

    pub(super) fn anchors(&self) -> Result<Vec<rustls_pki_types::TrustAnchor<'_>>, NotaryError> {
        self.roots
            .iter()
            .map(|r| {
                anchor_from_trusted_cert(r)
                    .map_err(|e| NotaryError::TrustStore(format!("certificate does not parse ({e})")))
            })
            .collect()
    }

    pub(super) fn trusts(&self, subject: &[(String, String)]) -> bool {
        self.identities.iter().any(|i| i.matches(subject))
    }
}
