//! The verifier against envelopes made here by an independent signer: certificates by `rcgen`,
//! signatures by `aws-lc-rs` key pairs, JWS assembled by hand, COSE by coset's builder. Nothing
//! of the verifier is used to make them.

use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, Issuer, KeyPair,
    KeyUsagePurpose as Ku,
};
use serde_json::{json, Value};

use super::*;

const SUBJECT_DIGEST: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
const SIGNER_DN: &str = "x509.subject: C=US, ST=WA, O=Vibedata Test Publisher, CN=release signing";

fn subject() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: SUBJECT_DIGEST.into(),
        size: 1234,
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000) // 2026-09
}

/// What to vary in the leaf.
struct LeafSpec {
    key_usages: Vec<Ku>,
    ekus: Vec<Eku>,
    not_after: (i32, u8, u8),
    cn: &'static str,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            key_usages: vec![Ku::DigitalSignature],
            ekus: vec![Eku::CodeSigning],
            not_after: (2036, 1, 1),
            cn: "release signing",
        }
    }
}

struct Pki {
    root_pem: String,
    chain: Vec<Vec<u8>>,
    leaf_key: EcdsaKeyPair,
}

fn root(cn: &str) -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    (p, KeyPair::generate().unwrap())
}

fn pki(spec: LeafSpec) -> Pki {
    let (rp, rk) = root("Vibedata Test Root");
    let root_cert = rp.self_signed(&rk).unwrap();
    let mut lp = CertificateParams::new(Vec::<String>::new()).unwrap();
    for (t, v) in [
        (DnType::CountryName, "US"),
        (DnType::StateOrProvinceName, "WA"),
        (DnType::OrganizationName, "Vibedata Test Publisher"),
        (DnType::CommonName, spec.cn),
    ] {
        lp.distinguished_name.push(t, v);
    }
    lp.is_ca = IsCa::ExplicitNoCa;
    lp.key_usages = spec.key_usages;
    lp.extended_key_usages = spec.ekus;
    lp.not_before = rcgen::date_time_ymd(2025, 6, 1);
    lp.not_after = rcgen::date_time_ymd(spec.not_after.0, spec.not_after.1, spec.not_after.2);
    let lk = KeyPair::generate().unwrap();
    let leaf = lp.signed_by(&lk, &Issuer::from_params(&rp, &rk)).unwrap();
    let leaf_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &lk.serialize_der()).unwrap();
    Pki { root_pem: root_cert.pem(), chain: vec![leaf.der().to_vec(), root_cert.der().to_vec()], leaf_key }
}

fn policy(p: &Pki) -> TrustPolicy {
    TrustPolicy::new(&p.root_pem, &[SIGNER_DN.to_owned()]).unwrap()
}

fn payload(d: &Descriptor) -> Vec<u8> {
    serde_json::to_vec(&json!({"targetArtifact": {"mediaType": d.media_type, "digest": d.digest, "size": d.size}}))
        .unwrap()
}

fn protected(alg: &str) -> Value {
    json!({
        "alg": alg,
        "cty": PAYLOAD_MEDIA_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
        "crit": ["io.cncf.notary.signingScheme"],
    })
}

fn sign(key: &EcdsaKeyPair, msg: &[u8]) -> Vec<u8> {
    key.sign(&SystemRandom::new(), msg).unwrap().as_ref().to_vec()
}

fn jws_with(p: &Pki, protected: &Value, payload: &[u8]) -> Vec<u8> {
    let (ph, pl) = (URL_SAFE_NO_PAD.encode(serde_json::to_vec(protected).unwrap()), URL_SAFE_NO_PAD.encode(payload));
    let sig = sign(&p.leaf_key, format!("{ph}.{pl}").as_bytes());
    serde_json::to_vec(&json!({
        "payload": pl, "protected": ph,
        "header": {"x5c": p.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(), "io.cncf.notary.signingAgent": "test-signer/1"},
        "signature": URL_SAFE_NO_PAD.encode(sig),
    }))
    .unwrap()
}

fn jws(p: &Pki) -> Vec<u8> {
    jws_with(p, &protected("ES256"), &payload(&subject()))
}

fn cose_with(p: &Pki, crit: &[&str], scheme: bool) -> Vec<u8> {
    let mut h = HeaderBuilder::new().algorithm(iana::Algorithm::ES256).content_type(PAYLOAD_MEDIA_TYPE.into());
    for c in crit {
        h = h.add_critical_label(coset::RegisteredLabelWithPrivate::Text((*c).into()));
    }
    if scheme {
        h = h.text_value("io.cncf.notary.signingScheme".into(), coset::cbor::Value::Text("notary.x509".into()));
    }
    let h = h
        .text_value(
            "io.cncf.notary.signingTime".into(),
            coset::cbor::Value::Tag(1, Box::new(coset::cbor::Value::Integer(1_767_225_600.into()))),
        )
        .build();
    let chain = coset::cbor::Value::Array(p.chain.iter().map(|c| coset::cbor::Value::Bytes(c.clone())).collect());
    let u = HeaderBuilder::new().value(33, chain).build();
    CoseSign1Builder::new()
        .protected(h)
        .unprotected(u)
        .payload(payload(&subject()))
        .create_signature(b"", |tbs| sign(&p.leaf_key, tbs))
        .build()
        .to_tagged_vec()
        .unwrap()
}

fn verify_jws(bytes: &[u8], policy: &TrustPolicy) -> Result<Verified, NotaryError> {
    verify_envelope(JWS_MEDIA_TYPE, bytes, &subject(), policy, now())
}

#[test]
fn a_good_jws_signature_is_accepted_and_names_its_signer() {
    let p = pki(LeafSpec::default());
    let v = verify_jws(&jws(&p), &policy(&p)).unwrap();
    assert_eq!(v.envelope, EnvelopeType::Jws);
    assert_eq!(v.signer, "O=Vibedata Test Publisher,ST=WA,C=US,CN=release signing");
    assert_eq!(rfc3339(v.signing_time), "2026-01-01T00:00:00Z");
    assert_eq!(v.signing_agent.as_deref(), Some("test-signer/1"));
}

#[test]
fn a_good_cose_signature_is_accepted() {
    let p = pki(LeafSpec::default());
    let v = verify_envelope(
        COSE_MEDIA_TYPE,
        &cose_with(&p, &["io.cncf.notary.signingScheme"], true),
        &subject(),
        &policy(&p),
        now(),
    )
    .unwrap();
    assert_eq!((v.envelope, v.signing_time), (EnvelopeType::Cose, 1_767_225_600));
}

#[test]
fn cose_without_the_scheme_or_with_an_unknown_critical_label_fails() {
    let p = pki(LeafSpec::default());
    let run = |b: Vec<u8>| verify_envelope(COSE_MEDIA_TYPE, &b, &subject(), &policy(&p), now()).unwrap_err();
    assert_eq!(
        run(cose_with(&p, &["io.cncf.notary.signingScheme"], false)),
        NotaryError::MissingHeader("io.cncf.notary.signingScheme")
    );
    assert_eq!(
        run(cose_with(&p, &["io.cncf.notary.signingScheme", "x.unknown"], true)),
        NotaryError::Critical("x.unknown is not understood".into())
    );
    // An untagged COSE_Sign1 is refused.
    let untagged = coset::CoseSign1::from_tagged_slice(&cose_with(&p, &["io.cncf.notary.signingScheme"], true))
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(matches!(run(untagged), NotaryError::Malformed { envelope: "COSE", .. }));
}

#[test]
fn a_payload_that_describes_another_manifest_fails() {
    let p = pki(LeafSpec::default());
    type Change = fn(&mut Descriptor);
    let cases: [(Change, &str); 3] = [
        (|d| d.digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(), "digest"),
        (|d| d.size += 1, "size"),
        (|d| d.media_type = "application/vnd.oci.image.index.v1+json".into(), "mediaType"),
    ];
    for (change, field) in cases {
        let mut d = subject();
        change(&mut d);
        let err = verify_jws(&jws_with(&p, &protected("ES256"), &payload(&d)), &policy(&p)).unwrap_err();
        assert!(matches!(err, NotaryError::PayloadMismatch { field: f, .. } if f == field), "{field}: {err}");
    }
}

#[test]
fn protected_header_rules() {
    let p = pki(LeafSpec::default());
    let pol = policy(&p);
    let with = |f: fn(&mut Value)| {
        let mut h = protected("ES256");
        f(&mut h);
        verify_jws(&jws_with(&p, &h, &payload(&subject())), &pol).unwrap_err()
    };
    assert_eq!(
        with(|h| h["alg"] = "PS256".into()),
        NotaryError::AlgorithmMismatch { alg: "PS256".into(), key: "EC P-256".into(), wanted: "ES256".into() }
    );
    assert_eq!(
        with(|h| h["crit"] = json!(["io.cncf.notary.signingScheme", "x.custom"])),
        NotaryError::Critical("x.custom is not understood".into())
    );
    assert_eq!(
        with(|h| {
            h.as_object_mut().unwrap().remove("io.cncf.notary.signingScheme");
        }),
        NotaryError::MissingHeader("io.cncf.notary.signingScheme")
    );
    assert_eq!(with(|h| h["crit"] = json!([])), NotaryError::MissingHeader("crit"));
    assert_eq!(
        with(|h| h["io.cncf.notary.expiry"] = "2026-02-01T00:00:00Z".into()),
        NotaryError::Critical("io.cncf.notary.expiry is not marked critical".into())
    );
    assert_eq!(
        with(|h| {
            h["io.cncf.notary.expiry"] = "2026-02-01T00:00:00Z".into();
            h["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
        }),
        NotaryError::Expired("2026-02-01T00:00:00Z".into())
    );
    assert!(matches!(
        with(|h| h["io.cncf.notary.signingScheme"] = "notary.x509.signingAuthority".into()),
        NotaryError::Unsupported { .. }
    ));
    assert!(matches!(with(|h| h["cty"] = "application/json".into()), NotaryError::Unsupported { .. }));
}

#[test]
fn a_tampered_signature_or_payload_fails() {
    let p = pki(LeafSpec::default());
    let mut env: Value = serde_json::from_slice(&jws(&p)).unwrap();
    let mut other = subject();
    other.size = 99;
    env["payload"] = URL_SAFE_NO_PAD.encode(payload(&other)).into();
    assert_eq!(verify_jws(&serde_json::to_vec(&env).unwrap(), &policy(&p)).unwrap_err(), NotaryError::BadSignature);
}

#[test]
fn compact_and_general_serializations_are_refused() {
    let p = pki(LeafSpec::default());
    let env: Value = serde_json::from_slice(&jws(&p)).unwrap();
    let compact = format!(
        "{}.{}.{}",
        env["protected"].as_str().unwrap(),
        env["payload"].as_str().unwrap(),
        env["signature"].as_str().unwrap()
    );
    let err = verify_jws(compact.as_bytes(), &policy(&p)).unwrap_err();
    assert!(err.to_string().contains("compact serialization"), "{err}");
    let general = json!({"payload": env["payload"], "signatures": [{"protected": env["protected"], "header": env["header"], "signature": env["signature"]}]});
    let err = verify_jws(&serde_json::to_vec(&general).unwrap(), &policy(&p)).unwrap_err();
    assert!(err.to_string().contains("exactly one signature"), "{err}");
}

#[test]
fn certificate_rules() {
    let fails = |spec: LeafSpec| {
        let p = pki(spec);
        verify_jws(&jws(&p), &policy(&p)).unwrap_err().to_string()
    };
    assert!(fails(LeafSpec { ekus: vec![Eku::ServerAuth], ..Default::default() })
        .contains("extendedKeyUsage includes serverAuth"));
    assert!(fails(LeafSpec { ekus: vec![Eku::CodeSigning, Eku::Any], ..Default::default() })
        .contains("anyExtendedKeyUsage"));
    assert!(fails(LeafSpec { key_usages: vec![Ku::KeyEncipherment], ..Default::default() })
        .contains("keyUsage lacks digitalSignature"));
    assert!(fails(LeafSpec { key_usages: vec![Ku::DigitalSignature, Ku::KeyCertSign], ..Default::default() })
        .contains("keyUsage includes keyCertSign"));
    assert!(fails(LeafSpec { key_usages: vec![], ..Default::default() }).contains("no keyUsage"));
    assert!(
        fails(LeafSpec { not_after: (2026, 3, 1), ..Default::default() }).contains("expired at 2026-03-01T00:00:00Z")
    );
    // No EKU at all is allowed.
    let p = pki(LeafSpec { ekus: vec![], ..Default::default() });
    verify_jws(&jws(&p), &policy(&p)).unwrap();
}

#[test]
fn a_chain_outside_the_trust_store_fails() {
    let p = pki(LeafSpec::default());
    let (op, ok) = root("Another Root");
    let other = TrustPolicy::new(&op.self_signed(&ok).unwrap().pem(), &[SIGNER_DN.to_owned()]).unwrap();
    let err = verify_jws(&jws(&p), &other).unwrap_err();
    assert!(matches!(&err, NotaryError::Untrusted(m) if m.contains("not in the trust store")), "{err}");
    // A chain cut before its root does not end at a root.
    let mut cut = pki(LeafSpec::default());
    cut.chain.pop();
    let err = verify_jws(&jws(&cut), &policy(&cut)).unwrap_err();
    assert!(matches!(&err, NotaryError::Untrusted(m) if m.contains("not at a root")), "{err}");
}

#[test]
fn identities_are_matched_as_attribute_sets() {
    let p = pki(LeafSpec::default());
    let with =
        |ids: &[&str]| TrustPolicy::new(&p.root_pem, &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    verify_jws(&jws(&p), &with(&["x509.subject: O=Vibedata Test Publisher, CN=release signing"])).unwrap();
    let err = verify_jws(&jws(&p), &with(&["x509.subject: C=US, O=Someone Else, CN=release signing"])).unwrap_err();
    assert_eq!(err, NotaryError::IdentityMismatch("O=Vibedata Test Publisher,ST=WA,C=US,CN=release signing".into()));
    for bad in ["CN=x", "x509.subject: CN", "x509.subject: CN=a, CN=b", "*"] {
        assert!(matches!(TrustPolicy::new(&p.root_pem, &[bad.to_owned()]), Err(NotaryError::BadIdentity(_))), "{bad}");
    }
    assert!(matches!(TrustPolicy::new("no pem here", &[SIGNER_DN.to_owned()]), Err(NotaryError::TrustStore(_))));
}

#[test]
fn signature_manifests_in_both_forms() {
    let layer = json!({"mediaType": JWS_MEDIA_TYPE, "digest": "sha256:aa", "size": 10});
    let subject_ref =
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SUBJECT_DIGEST, "size": 1234});
    let manifest = |artifact: Option<&str>, config: &str, layers: Value, subj: &Value| {
        let mut m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": layers, "subject": subj});
        if let Some(a) = artifact {
            m["artifactType"] = a.into();
        }
        serde_json::to_vec(&m).unwrap()
    };
    let oci11 =
        manifest(Some(SIGNATURE_ARTIFACT_TYPE), "application/vnd.oci.empty.v1+json", json!([layer]), &subject_ref);
    assert_eq!(signature_layer(&oci11, &subject()).unwrap().media_type, JWS_MEDIA_TYPE);
    let legacy = manifest(None, SIGNATURE_ARTIFACT_TYPE, json!([layer]), &subject_ref);
    assert_eq!(signature_layer(&legacy, &subject()).unwrap().digest, "sha256:aa");
    let two = manifest(
        Some(SIGNATURE_ARTIFACT_TYPE),
        "application/vnd.oci.empty.v1+json",
        json!([layer, layer]),
        &subject_ref,
    );
    assert_eq!(
        signature_layer(&two, &subject()).unwrap_err(),
        NotaryError::NotASignature("it has 2 layers, not one".into())
    );
    let other = manifest(
        Some("application/vnd.dev.cosign.artifact.sig.v1+json"),
        "application/vnd.oci.empty.v1+json",
        json!([layer]),
        &subject_ref,
    );
    assert!(signature_layer(&other, &subject()).is_err());
    let elsewhere = manifest(
        Some(SIGNATURE_ARTIFACT_TYPE),
        "x",
        json!([layer]),
        &json!({"mediaType": "m", "digest": "sha256:bb", "size": 1}),
    );
    assert!(signature_layer(&elsewhere, &subject()).unwrap_err().to_string().contains("subject is sha256:bb"));
}
