//! The verifier against notation-core-go v1.3.0's own test vectors (Apache-2.0), reproduced in
//! `tests/fixtures/notary/` (see the README there): its certificate-rule PEMs and its JWS and COSE
//! conformance envelopes.

use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use x509_cert::der::Decode;
use x509_cert::Certificate;

use super::cert::{ca_rules, check_chain, leaf_key, leaf_rules};
use super::*;

macro_rules! pem {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/notary/x509/", $name, ".pem"))
    };
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

fn cert(pem: &str) -> Certificate {
    Certificate::from_der(&der(pem)).unwrap()
}

fn when() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn policy() -> TrustPolicy {
    TrustPolicy::new(pem!("rootCert"), &["x509.subject: CN=CodeSigningLeaf".to_owned()]).unwrap()
}

#[test]
fn their_valid_chain_passes_and_their_reordered_or_foreign_chains_fail() {
    let chain =
        [pem!("codeSigningLeaf"), pem!("intermediateCert2"), pem!("intermediateCert1"), pem!("rootCert")].map(der);
    let leaf = check_chain(&chain, &policy(), when()).unwrap();
    assert_eq!((leaf.subject.as_str(), leaf.alg), ("CN=CodeSigningLeaf", "PS256"));
    let reordered =
        [pem!("codeSigningLeaf"), pem!("intermediateCert1"), pem!("intermediateCert2"), pem!("rootCert")].map(der);
    assert!(
        matches!(check_chain(&reordered, &policy(), when()), Err(NotaryError::Untrusted(m)) if m.contains("not issued by the next"))
    );
    let unrelated =
        [pem!("codeSigningLeaf"), pem!("unrelatedCert"), pem!("intermediateCert1"), pem!("rootCert")].map(der);
    assert!(check_chain(&unrelated, &policy(), when()).is_err());
}

/// Each vector fails `rule` with a message containing its text.
fn refused(rule: fn(&Certificate) -> Result<(), String>, cases: &[(&str, &str)]) {
    for (pem, want) in cases {
        let got = rule(&cert(pem)).unwrap_err();
        assert!(got.contains(want), "{got} should say {want}");
    }
}

#[test]
fn their_leaf_rule_vectors() {
    assert_eq!(leaf_rules(&cert(pem!("validNoOptionsLeaf"))), Ok(()));
    refused(
        leaf_rules,
        &[
            (pem!("caTrueLeaf"), "cA=true"),
            (pem!("kuNoDigitalSignatureLeaf"), "keyUsage lacks digitalSignature"),
            (pem!("kuWrongValuesLeaf"), "keyUsage includes"),
            (pem!("ekuWrongValuesCodeLeaf"), "extendedKeyUsage includes serverAuth"),
            (pem!("ekuMissingCodeSigningLeaf"), "extendedKeyUsage lacks codeSigning"),
        ],
    );
    refused(
        |c| leaf_key(c).map(|_| ()),
        &[(pem!("rsaKeyTooSmallLeaf"), "RSA key of 1024 bits"), (pem!("ecdsaKeyTooSmallLeaf"), "curve")],
    );
}

#[test]
fn their_ca_rule_vectors() {
    for ok in [pem!("rootCert"), pem!("intermediateCert1"), pem!("intermediateCert2")] {
        assert_eq!(ca_rules(&cert(ok)), Ok(()));
    }
    refused(
        ca_rules,
        &[
            (pem!("noBasicConstraintsCa"), "without basicConstraints"),
            (pem!("basicConstraintsNotCa"), "cA=true"),
            (pem!("kuNotCriticalCertSignCa"), "keyUsage is not critical"),
            (pem!("kuMissingCa"), "without keyUsage"),
            (pem!("kuNotCertSignCa"), "lacks keyCertSign"),
        ],
    );
}

/// Their conformance envelopes carry an extended critical attribute (`signedCritKey1`) that only a
/// plugin would understand; everything before it (alg, cty, scheme, times, the crit list) must
/// decode, and the unknown critical entry must stop verification.
#[test]
fn their_conformance_envelopes_decode_up_to_their_unknown_critical_attribute() {
    let subject = Descriptor { media_type: "m".into(), digest: "sha256:0".into(), size: 0 };
    let policy = policy();
    let jws = include_bytes!("../../tests/fixtures/notary/envelopes/jws-conformance.json");
    let err = verify_envelope(JWS_MEDIA_TYPE, jws, &subject, &policy, when()).unwrap_err();
    assert_eq!(err, NotaryError::Critical("signedCritKey1 is not understood".into()));

    let cose: Value =
        serde_json::from_slice(include_bytes!("../../tests/fixtures/notary/envelopes/cose-conformance.json")).unwrap();
    let bytes = hex::decode(cose["expectedOutput"]["cborHex"].as_str().unwrap()).unwrap();
    let err = verify_envelope(COSE_MEDIA_TYPE, &bytes, &subject, &policy, when()).unwrap_err();
    assert_eq!(err, NotaryError::Critical("signedCritKey1 is not understood".into()));
    // And the COSE message is what coset reads as PS384 with their signing time.
    let msg = <coset::CoseSign1 as coset::TaggedCborSerializable>::from_tagged_slice(&bytes).unwrap();
    assert_eq!(
        msg.protected.header.alg,
        Some(coset::RegisteredLabelWithPrivate::Assigned(coset::iana::Algorithm::PS384))
    );
    assert_eq!(cose["signingTime"], 1_661_321_924);
}
