//! Signed releases over the local stack: the release manifest's Notary signature is verified in
//! the publisher registry (CNCF distribution, so through the referrers tag schema) before
//! anything is imported. Signatures are the sample release's fixture signatures
//! (scripts/sample_release/sign.py) or broken ones pushed here; each refused case must import
//! nothing and write no artifact storage.

mod artifacts_support;
mod common;

use artifacts_support::*;
use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

const REPO: &str = "vibedata/release-manifest";
const RELEASE: &str = "2026.11.12";
const NOTARY_SIG: &str = "application/vnd.cncf.notary.signature";

/// A release document of its own under `tag`, signed or not; returns the manifest digest.
async fn document(stack: &Stack, tag: &str, signed: bool, salt: &str) -> String {
    publish(stack, RELEASE);
    let doc = manifest_document(stack, RELEASE).await;
    // A digest of its own per tag, so the referrers of one case never meet another's: the same
    // document with trailing whitespace spelling a hash of the tag in spaces and tabs.
    let mut bytes = serde_json::to_vec(&doc).unwrap();
    let h = vibedata_bootstrap::oci::sha256_digest(format!("{tag} {salt}").as_bytes());
    bytes.extend(h.bytes().skip(7).take(32).map(|c| if c < b'8' { b' ' } else { b'\t' }));
    let digest = push_unsigned_document(stack, tag, &bytes).await;
    if signed {
        sign(stack, REPO, tag);
    }
    digest
}

fn schema_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

async fn index(stack: &Stack, digest: &str) -> Vec<Value> {
    let m = registry(stack, false).manifest(REPO, &schema_tag(digest)).await.unwrap();
    serde_json::from_slice::<Value>(&m.bytes).unwrap()["manifests"].as_array().unwrap().clone()
}

async fn put_index(stack: &Stack, digest: &str, entries: Vec<Value>) {
    let body =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    registry(stack, false)
        .put_manifest(
            REPO,
            &schema_tag(digest),
            Bytes::from(body.to_string()),
            "application/vnd.oci.image.index.v1+json",
        )
        .await
        .unwrap();
}

/// A signature manifest of `subject` whose envelope is not a signature; returns its index entry.
async fn bogus(stack: &Stack, subject: &str, n: usize) -> Value {
    let publisher = registry(stack, false);
    let envelope = Bytes::from_static(br#"{"payload":"e30","protected":"e30","header":{},"signature":"AA"}"#);
    let mut descriptors = Vec::new();
    for blob in [Bytes::from_static(b"{}"), envelope] {
        let digest = vibedata_bootstrap::oci::sha256_digest(&blob);
        if !publisher.blob_exists(REPO, &digest).await.unwrap() {
            let size = blob.len();
            publisher
                .upload_blob(REPO, &digest, futures::stream::iter(vec![Ok::<_, std::io::Error>(blob)]))
                .await
                .unwrap();
            descriptors.push((digest, size));
        } else {
            descriptors.push((digest, blob.len()));
        }
    }
    let m = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": NOTARY_SIG,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": descriptors[0].0, "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": descriptors[1].0, "size": descriptors[1].1}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 1},
        "annotations": {"n": n.to_string()},
    })
    .to_string();
    let digest = vibedata_bootstrap::oci::sha256_digest(m.as_bytes());
    publisher
        .put_manifest(REPO, &digest, Bytes::from(m.clone()), "application/vnd.oci.image.manifest.v1+json")
        .await
        .unwrap();
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": m.len(), "artifactType": NOTARY_SIG})
}

/// `run artifacts` for `tag`: exit 2, the last line names the manifest digest and `expect`, and
/// nothing was imported or stored.
async fn refused(stack: &Stack, case: &str, tag: &str, digest: &str, extra: &[(&str, &str)], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let env = env_for(stack, &format!("sig-{case}"), tag, &out, extra);
    let mark = stack.journal_mark().await;
    let o = stack.cli(&env, &["run", "artifacts"]);
    assert_eq!(o.status.code(), Some(2), "{case}: {}", stderr(&o));
    let last = last_stderr_line(&o);
    assert!(last.contains(digest) && last.contains(expect), "{case}: {last}");
    assert!(imports_since(stack, mark).await.is_empty(), "{case}: something was imported");
    let mutating: Vec<_> = stack.journal_since(mark).await.into_iter().filter(|e| e["mutating"] == true).collect();
    assert!(mutating.is_empty(), "{case}: {mutating:?}");
    assert!(!container_exists(stack, &format!("art-sig-{case}")).await, "{case}: artifact storage written");
}

/// `run artifacts --dry-run` for `tag`; returns the outputs' `signature` object.
fn planned(stack: &Stack, case: &str, tag: &str, extra: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let o = stack.cli(&env_for(stack, &format!("sig-{case}"), tag, &out, extra), &["run", "artifacts", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{case}: {}", stderr(&o));
    read_outputs(&out)["summary"]["signature"].clone()
}

#[tokio::test]
async fn unsigned_tampered_and_untrusted_releases_are_refused_before_any_import() {
    let stack = Stack::get();
    let pid = std::process::id();

    let tag = format!("unsigned-{pid}");
    let d = document(&stack, &tag, false, "").await;
    refused(&stack, "unsigned", &tag, &d, &[], "it is unsigned").await;

    // Another manifest's signatures listed under this one's digest: their subject is not it.
    let (signed_tag, tampered_tag) = (format!("orig-{pid}"), format!("tampered-{pid}"));
    let signed = document(&stack, &signed_tag, true, "").await;
    let tampered = document(&stack, &tampered_tag, false, "tampered").await;
    put_index(&stack, &tampered, index(&stack, &signed).await).await;
    refused(&stack, "tampered", &tampered_tag, &tampered, &[], &format!("its subject is {signed}")).await;

    // A trust store that does not hold the publisher's root.
    let other_root = include_str!("fixtures/notary/x509/rootCert.pem");
    refused(
        &stack,
        "untrusted",
        &signed_tag,
        &signed,
        &[("VIBEDATA_RELEASE_TRUST_STORE", other_root)],
        "not in the trust store",
    )
    .await;

    let ids = r#"["x509.subject: O=Someone Else, CN=Vibedata Sample Release"]"#;
    refused(
        &stack,
        "identity",
        &signed_tag,
        &signed,
        &[("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", ids)],
        "is not a trusted identity",
    )
    .await;
}

#[tokio::test]
async fn both_envelopes_verify_and_one_bad_signature_beside_a_good_one_is_passed_over() {
    let stack = Stack::get();
    let tag = format!("envelopes-{}", std::process::id());
    let d = document(&stack, &tag, true, "").await;
    let both = index(&stack, &d).await;
    assert_eq!(both.len(), 2, "JWS and COSE: {both:?}");
    for (entry, envelope) in both.iter().zip(["application/jose+json", "application/cose"]) {
        put_index(&stack, &d, vec![entry.clone()]).await;
        let s = planned(&stack, "envelope", &tag, &[]);
        assert_eq!((s["verified"].as_bool(), s["envelope"].as_str()), (Some(true), Some(envelope)), "{s}");
        assert_eq!(s["signer"], "CN=Vibedata Sample Release,O=Vibedata Sample Publisher,ST=WA,C=US");
        assert_eq!(s["signingTime"], "2026-01-01T00:00:00Z");
        assert_eq!(s["discovery"], "referrers tag schema");
        assert!(s["revocation"].as_str().unwrap().starts_with("not checked"), "{s}");
    }
    let mut entries = vec![bogus(&stack, &d, 0).await];
    entries.extend(both);
    put_index(&stack, &d, entries).await;
    let s = planned(&stack, "one-bad", &tag, &[]);
    assert_eq!(s["verified"], true, "{s}");
}

#[tokio::test]
async fn signatures_beyond_the_attempt_cap_are_not_tried() {
    let stack = Stack::get();
    let tag = format!("cap-{}", std::process::id());
    let d = document(&stack, &tag, true, "").await;
    let good = index(&stack, &d).await;
    let mut entries = Vec::new();
    for n in 0..vibedata_bootstrap::notary::MAX_SIGNATURES + 1 {
        entries.push(bogus(&stack, &d, n).await);
    }
    entries.extend(good);
    put_index(&stack, &d, entries).await;
    refused(&stack, "cap", &tag, &d, &[], "(the attempt cap)").await;
}

#[tokio::test]
async fn audit_mode_reports_an_unsigned_release_loudly_and_goes_on() {
    let stack = Stack::get();
    let tag = format!("audit-{}", std::process::id());
    document(&stack, &tag, false, "").await;
    let s = planned(&stack, "audit", &tag, &[("VIBEDATA_RELEASE_VERIFICATION", "audit")]);
    assert_eq!((s["verification"].as_str(), s["verified"].as_bool()), (Some("audit"), Some(false)), "{s}");
    assert!(s["warning"].as_str().unwrap().contains("AUDIT MODE"), "{s}");
    assert!(s["failures"][0].as_str().unwrap().contains("unsigned"), "{s}");
}

/// The real `notation` CLI (scripts/setup builds it into .tools/notation/), with a
/// configuration directory of its own.
struct Notation {
    home: tempfile::TempDir,
    ca: String,
}

impl Notation {
    fn new(stack: &Stack) -> Notation {
        assert!(std::path::Path::new(NOTATION).exists(), "{NOTATION} is missing: run scripts/setup");
        Notation { home: tempfile::tempdir().unwrap(), ca: stack.var("VIBEDATA_CA_FILE").to_owned() }
    }

    fn run(&self, args: &[&str], (user, password): (&str, &str)) {
        let o = std::process::Command::new(NOTATION)
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("SSL_CERT_FILE", &self.ca)
            .env("NOTATION_USERNAME", user)
            .env("NOTATION_PASSWORD", password)
            .output()
            .expect("run notation");
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "notation {args:?}: {said}");
    }

    /// Trusts what the stack trusts: the sample release's fixture root and signer.
    fn trust_the_stack(&self, stack: &Stack) {
        let store = self.home.path().join("notation/truststore/x509/ca/sample");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("root.pem"), stack.var("VIBEDATA_RELEASE_TRUST_STORE").replace("\\n", "\n")).unwrap();
        let identities: Value = serde_json::from_str(stack.var("VIBEDATA_RELEASE_TRUSTED_IDENTITIES")).unwrap();
        let policy = json!({"version": "1.0", "trustPolicies": [{
            "name": "sample", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict", "override": {"revocation": "skip"}},
            "trustStores": ["ca:sample"], "trustedIdentities": identities}]});
        let file = self.home.path().join("policy.json");
        std::fs::write(&file, policy.to_string()).unwrap();
        self.run(&["policy", "import", "--force", file.to_str().unwrap()], ("", ""));
    }
}

const NOTATION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/notation/v1.3.2/notation");

fn publisher_login(stack: &Stack) -> (&str, &str) {
    (stack.var("VIBEDATA_STACK_PUBLISHER_USER"), stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD"))
}

/// What notation signs, we verify (JWS and COSE, its RSA-3072 self-signed test certificate: a
/// root-only chain), and what the sample release's fixture signer signs, `notation verify` accepts.
#[tokio::test]
async fn notation_round_trip() {
    let stack = Stack::get();
    let notation = Notation::new(&stack);
    let registry_host = stack.var("VIBEDATA_PUBLISHER_REGISTRY").to_owned();
    notation.run(&["cert", "generate-test", "--default", "vibedata-roundtrip"], ("", ""));
    let cert = std::fs::read_to_string(notation.home.path().join("notation/localkeys/vibedata-roundtrip.crt")).unwrap();
    let ids = r#"["x509.subject: C=US, ST=WA, O=Notary, CN=vibedata-roundtrip"]"#;
    let pid = std::process::id();
    for (format, envelope) in [("jws", "application/jose+json"), ("cose", "application/cose")] {
        let tag = format!("notation-{format}-{pid}");
        let d = document(&stack, &tag, false, "").await;
        notation.run(
            &["sign", "--signature-format", format, &format!("{registry_host}/{REPO}@{d}")],
            publisher_login(&stack),
        );
        let extra = [("VIBEDATA_RELEASE_TRUST_STORE", cert.as_str()), ("VIBEDATA_RELEASE_TRUSTED_IDENTITIES", ids)];
        let s = planned(&stack, "notation", &tag, &extra);
        assert_eq!((s["verified"].as_bool(), s["envelope"].as_str()), (Some(true), Some(envelope)), "{format}: {s}");
        assert_eq!(s["signer"], "CN=vibedata-roundtrip,O=Notary,L=Seattle,ST=WA,C=US");
    }

    let tag = format!("notation-verify-{pid}");
    let d = document(&stack, &tag, true, "").await;
    notation.trust_the_stack(&stack);
    notation.run(&["verify", &format!("{registry_host}/{REPO}@{d}")], publisher_login(&stack));
}

/// importImage copies no referrers, so the phase imports the accepted signature by digest
/// (`untaggedTargetRepositories`) and, the customer registry lacking the referrers API here,
/// updates its tag-schema index; `notation verify` then succeeds against the customer registry,
/// and a rerun changes nothing.
#[tokio::test]
async fn the_customer_registry_keeps_the_signature_and_notation_verifies_it_there() {
    let stack = Stack::get();
    let release = format!("2026.11.13-{}", std::process::id());
    let d = publish(&stack, &release);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let env = env_for(&stack, "sig-carry", &release, &out, &[]);
    let o = stack.cli(&env, &["run", "artifacts"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = read_outputs(&out);
    let sig = v["summary"]["signature"]["signatureDigest"].as_str().unwrap().to_owned();
    let changed: Vec<_> = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] != "image" && c["kind"] != "manifest")
        .cloned()
        .collect();
    assert!(
        changed.contains(&json!({"kind": "signature", "resource": format!("{REPO}@{sig}"), "action": "import"})),
        "{changed:?}"
    );
    let index_change =
        json!({"kind": "referrers-index", "resource": format!("{REPO}:{}", schema_tag(&d)), "action": "update"});
    assert!(changed.contains(&index_change), "{changed:?}");
    let customer = registry(&stack, true);
    assert_eq!(customer.manifest_digest(REPO, &sig).await.unwrap(), Some(sig.clone()));
    let listed = customer.referrers(REPO, &d, NOTARY_SIG).await.unwrap();
    assert_eq!(listed.manifests.iter().map(|m| m.digest.as_str()).collect::<Vec<_>>(), [sig.as_str()]);

    let o = stack.cli(&env, &["run", "artifacts"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_outputs(&out)["changes"], 0, "a rerun changes nothing");

    // notation against the customer registry, logged in as `az acr login --expose-token` would.
    let aad = stack.token("https://management.azure.com/").await;
    let form = [
        ("grant_type", "access_token"),
        ("service", stack.var("VIBEDATA_ACR_NAME")),
        ("access_token", aad.as_str()),
        ("tenant", stack.var("VIBEDATA_TENANT_ID")),
    ];
    let url = format!("{}/oauth2/exchange", stack.var("VIBEDATA_ACR_AUTH_ENDPOINT"));
    let answer = stack.http().post(url).form(&form).send().await.unwrap();
    let exchange: Value = answer.json().await.unwrap();
    let refresh = exchange["refresh_token"].as_str().expect("a refresh token");
    let notation = Notation::new(&stack);
    notation.trust_the_stack(&stack);
    let target = format!("{}/{REPO}@{d}", stack.var("VIBEDATA_ACR_LOGIN_SERVER"));
    notation.run(&["verify", &target], ("00000000-0000-0000-0000-000000000000", refresh));
}

/// `copy --referrers` carries the signatures (by digest) and writes the target's tag-schema index.
#[tokio::test]
async fn copy_with_referrers_carries_the_signatures() {
    let stack = Stack::get();
    let tag = format!("copy-{}", std::process::id());
    let d = document(&stack, &tag, true, "").await;
    let src = format!("{}/{REPO}@{d}", stack.var("VIBEDATA_PUBLISHER_REGISTRY"));
    let dst_repo = format!("copied/{tag}");
    let dst = format!("{}/{dst_repo}", stack.var("VIBEDATA_ACR_LOGIN_SERVER"));
    let creds =
        format!("{}:{}", stack.var("VIBEDATA_STACK_PUBLISHER_USER"), stack.var("VIBEDATA_STACK_PUBLISHER_PASSWORD"));
    let mut env = stack.env_for("sig-copy", &[]);
    env.insert("NOTARY_TEST_PUB".into(), creds);
    let o = stack.cli(&env, &["copy", &src, &dst, "--src-creds-env", "NOTARY_TEST_PUB", "--dst-acr", "--referrers"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let copied: Vec<String> = serde_json::from_value(doc["referrers"].clone()).unwrap();
    assert_eq!(copied.len(), 2, "JWS and COSE: {doc}");
    let listed = registry(&stack, true).referrers(&dst_repo, &d, NOTARY_SIG).await.unwrap();
    let mut got: Vec<_> = listed.manifests.into_iter().map(|m| m.digest).collect();
    let mut want = copied.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
