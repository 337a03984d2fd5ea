//! The certificate chain of a signature: Notary Project's certificate requirements, checked
//! explicitly with `x509-cert` (rustls-webpki does not know them), then the path to a trust-store
//! root by `rustls-webpki`.

use std::time::SystemTime;

use aws_lc_rs::signature::{self as sig, VerificationAlgorithm};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::Certificate;

use super::{NotaryError, TrustPolicy};

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// The DER body of the codeSigning OID, as rustls-webpki wants it.
const CODE_SIGNING_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// EKUs a Notary signing certificate must not carry: anyExtendedKeyUsage, serverAuth, clientAuth,
/// emailProtection, timeStamping.
const FORBIDDEN_EKUS: [(&str, &str); 5] = [
    ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ("1.3.6.1.5.5.7.3.1", "serverAuth"),
    ("1.3.6.1.5.5.7.3.2", "clientAuth"),
    ("1.3.6.1.5.5.7.3.4", "emailProtection"),
    ("1.3.6.1.5.5.7.3.8", "timeStamping"),
];

/// The leaf, once its chain is accepted.
pub(super) struct Leaf {
    /// The JWS name of the only algorithm its key may sign with.
    pub alg: &'static str,
    /// The key, described for messages (`RSA-3072`, `EC P-256`).
    pub key: String,
    pub subject: String,
    /// `(attribute short name, value)` of the subject, for identity matching.
    pub subject_attributes: Vec<(String, String)>,
    verify: &'static dyn VerificationAlgorithm,
    public_key: Vec<u8>,
}

pub(super) fn verify_signature(leaf: &Leaf, signed: &[u8], signature: &[u8]) -> Result<(), NotaryError> {
    sig::UnparsedPublicKey::new(leaf.verify, &leaf.public_key)
        .verify(signed, signature)
        .map_err(|_| NotaryError::BadSignature)
}

/// Checks the chain (leaf first) against Notary's rules and the trust store, at `now`.
pub(super) fn check_chain(chain: &[Vec<u8>], policy: &TrustPolicy, now: SystemTime) -> Result<Leaf, NotaryError> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| NotaryError::Certificate {
                index: i,
                subject: "?".into(),
                reason: format!("does not parse ({e})"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    for (i, c) in certs.iter().enumerate() {
        let tbs = c.tbs_certificate();
        let subject = tbs.subject().to_string();
        let v = tbs.validity();
        let (nb, na) = (v.not_before.to_unix_duration().as_secs(), v.not_after.to_unix_duration().as_secs());
        if now_secs < nb {
            return Err(NotaryError::Validity {
                index: i,
                subject,
                reason: format!("is not valid before {}", super::rfc3339(nb as i64)),
            });
        }
        if now_secs > na {
            return Err(NotaryError::Validity {
                index: i,
                subject,
                reason: format!("expired at {}", super::rfc3339(na as i64)),
            });
        }
        if i + 1 < certs.len() && tbs.issuer() != certs[i + 1].tbs_certificate().subject() {
            return Err(NotaryError::Untrusted(format!(
                "certificate {i} ({subject}) is not issued by the next one in the chain"
            )));
        }
        if i == 0 {
            leaf_rules(c).map_err(|reason| NotaryError::Certificate { index: i, subject: subject.clone(), reason })?;
        } else {
            ca_rules(c).map_err(|reason| NotaryError::Certificate { index: i, subject: subject.clone(), reason })?;
        }
    }
    let last = certs.last().ok_or_else(|| NotaryError::Untrusted("the chain is empty".into()))?.tbs_certificate();
    if last.issuer() != last.subject() {
        return Err(NotaryError::Untrusted(format!("the chain ends at {}, not at a root", last.subject())));
    }
    if !policy.holds(chain.last().expect("the chain is not empty")) {
        return Err(NotaryError::Untrusted(format!("its root {} is not in the trust store", last.subject())));
    }

    let leaf_der = CertificateDer::from(chain[0].as_slice());
    let intermediates: Vec<CertificateDer<'_>> =
        chain[1..].iter().map(|d| CertificateDer::from(d.as_slice())).collect();
    let anchors = policy.anchors()?;
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| NotaryError::Untrusted(format!("the leaf is unusable ({e})")))?;
    if chain.len() > 1 {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_secs)),
            webpki::KeyUsage::required_if_present(CODE_SIGNING_DER),
            None,
            None,
        )
        .map_err(|e| NotaryError::Untrusted(format!("no path to a trust-store root ({e:?})")))?;
    }
    // A root-only chain (a self-signed signing certificate) is trusted by being in the store,
    // which was checked byte for byte above; the leaf rules applied to it.

    let tbs = certs[0].tbs_certificate();
    let (alg, key, verify, public_key) = leaf_key(&certs[0]).map_err(|reason| NotaryError::Certificate {
        index: 0,
        subject: tbs.subject().to_string(),
        reason,
    })?;
    let subject_attributes = tbs
        .subject()
        .iter()
        .filter_map(|atv| atv.to_string().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    Ok(Leaf { alg, key, subject: tbs.subject().to_string(), subject_attributes, verify, public_key })
}

fn extension<'a, T: Decode<'a> + x509_cert::der::oid::AssociatedOid>(
    c: &'a Certificate,
    what: &str,
) -> Result<Option<(bool, T)>, String> {
    c.tbs_certificate().get_extension::<T>().map_err(|e| format!("its {what} extension does not parse ({e})"))
}

pub(super) fn ca_rules(c: &Certificate) -> Result<(), String> {
    match extension::<BasicConstraints>(c, "basicConstraints")? {
        Some((true, bc)) if bc.ca => {}
        Some((false, _)) => return Err("basicConstraints is not critical".into()),
        Some(_) => return Err("basicConstraints does not say cA=true".into()),
        None => return Err("a CA certificate without basicConstraints".into()),
    }
    match extension::<KeyUsage>(c, "keyUsage")? {
        Some((true, ku)) if ku.key_cert_sign() => Ok(()),
        Some((false, _)) => Err("keyUsage is not critical".into()),
        Some(_) => Err("keyUsage lacks keyCertSign".into()),
        None => Err("a CA certificate without keyUsage".into()),
    }
}

pub(super) fn leaf_rules(c: &Certificate) -> Result<(), String> {
    if let Some((_, bc)) = extension::<BasicConstraints>(c, "basicConstraints")? {
        // A self-signed signing certificate (root-only chain) must still be a leaf.
        if bc.ca {
            return Err("the signing certificate says cA=true".into());
        }
    }
    match extension::<KeyUsage>(c, "keyUsage")? {
        Some((true, ku)) => {
            if !ku.digital_signature() {
                return Err("keyUsage lacks digitalSignature".into());
            }
            let forbidden = [
                (ku.key_encipherment(), "keyEncipherment"),
                (ku.data_encipherment(), "dataEncipherment"),
                (ku.key_agreement(), "keyAgreement"),
                (ku.key_cert_sign(), "keyCertSign"),
                (ku.crl_sign(), "cRLSign"),
                (ku.encipher_only(), "encipherOnly"),
                (ku.decipher_only(), "decipherOnly"),
            ];
            if let Some((_, name)) = forbidden.iter().find(|(set, _)| *set) {
                return Err(format!("keyUsage includes {name}"));
            }
        }
        Some((false, _)) => return Err("keyUsage is not critical".into()),
        None => return Err("the signing certificate has no keyUsage".into()),
    }
    if let Some((_, eku)) = extension::<ExtendedKeyUsage>(c, "extendedKeyUsage")? {
        for oid in &eku.0 {
            if let Some((_, name)) = FORBIDDEN_EKUS.iter().find(|(o, _)| oid.to_string() == *o) {
                return Err(format!("extendedKeyUsage includes {name}"));
            }
        }
        if !eku.0.contains(&CODE_SIGNING) && !eku.0.is_empty() {
            return Err("extendedKeyUsage lacks codeSigning".into());
        }
    }
    Ok(())
}

type KeyParts = (&'static str, String, &'static dyn VerificationAlgorithm, Vec<u8>);

/// The leaf key's algorithm (JWS name), description, verifier and raw public key.
pub(super) fn leaf_key(c: &Certificate) -> Result<KeyParts, String> {
    let spki = c.tbs_certificate().subject_public_key_info();
    let raw = spki.subject_public_key.raw_bytes().to_vec();
    if spki.algorithm.oid == RSA {
        let bits = rsa_modulus_bits(&raw).ok_or("the RSA public key does not parse")?;
        let (alg, verify): (_, &'static dyn VerificationAlgorithm) = match bits {
            2048 => ("PS256", &sig::RSA_PSS_2048_8192_SHA256),
            3072 => ("PS384", &sig::RSA_PSS_2048_8192_SHA384),
            4096 => ("PS512", &sig::RSA_PSS_2048_8192_SHA512),
            other => return Err(format!("an RSA key of {other} bits (2048, 3072 or 4096 allowed)")),
        };
        return Ok((alg, format!("RSA-{bits}"), verify, raw));
    }
    if spki.algorithm.oid == EC {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or("an EC key without a named curve")?;
        let (alg, name, verify): (_, _, &'static dyn VerificationAlgorithm) = match curve {
            c if c == P256 => ("ES256", "P-256", &sig::ECDSA_P256_SHA256_FIXED),
            c if c == P384 => ("ES384", "P-384", &sig::ECDSA_P384_SHA384_FIXED),
            c if c == P521 => ("ES512", "P-521", &sig::ECDSA_P521_SHA512_FIXED),
            other => return Err(format!("an EC key on curve {other} (P-256, P-384 or P-521 allowed)")),
        };
        return Ok((alg, format!("EC {name}"), verify, raw));
    }
    Err(format!("a key of type {} (RSA or EC allowed)", spki.algorithm.oid))
}

/// The modulus length of a DER `RSAPublicKey`, in bits rounded to whole bytes.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    use x509_cert::der::asn1::UintRef;
    use x509_cert::der::{Reader, SliceReader};
    let mut r = SliceReader::new(der).ok()?;
    let n = r
        .sequence(|seq: &mut SliceReader<'_>| {
            let n = UintRef::decode(seq)?;
            let _e = UintRef::decode(seq)?;
            Ok::<_, x509_cert::der::Error>(n.as_bytes().len())
        })
        .ok()?;
    Some(n * 8)
}
