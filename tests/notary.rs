//! Signed releases over the local stack: the release manifest's Notary signature is verified in
//! the publisher registry (CNCF distribution, so through the referrers tag schema; through the
//! referrers API where the run names the emulator's front of it, `publisherReferrers`) before
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

const BOGUS_ENVELOPE: &[u8] = br#"{"payload":"e30","protected":"e30","header":{},"signature":"AA"}"#;

/// The bytes of a manifest of `subject` (artifact type `artifact`) whose envelope is not a
/// signature, made distinct by `n`.
fn bogus_manifest(subject: &str, n: usize, artifact: &str) -> String {
    let digest = vibedata_bootstrap::oci::sha256_digest;
    json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": artifact,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": digest(BOGUS_ENVELOPE), "size": BOGUS_ENVELOPE.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 1},
        "annotations": {"n": n.to_string()},
    })
    .to_string()
}

/// A signature manifest of `subject` whose envelope is not a signature; returns its index entry.
async fn bogus(stack: &Stack, subject: &str, n: usize) -> Value {
    bogus_as(stack, subject, n, NOTARY_SIG).await
}

/// [`bogus`] with another artifact type.
async fn bogus_as(stack: &Stack, subject: &str, n: usize, artifact: &str) -> Value {
    let publisher = registry(stack, false);
    for blob in [Bytes::from_static(b"{}"), Bytes::from_static(BOGUS_ENVELOPE)] {
        let digest = vibedata_bootstrap::oci::sha256_digest(&blob);
        if !publisher.blob_exists(REPO, &digest).await.unwrap() {
            publisher
                .upload_blob(REPO, &digest, futures::stream::iter(vec![Ok::<_, std::io::Error>(blob)]))
                .await
                .unwrap();
        }
    }
    let m = bogus_manifest(subject, n, artifact);
    let digest = vibedata_bootstrap::oci::sha256_digest(m.as_bytes());
    publisher
        .put_manifest(REPO, &digest, Bytes::from(m.clone()), "application/vnd.oci.image.manifest.v1+json")
        .await
        .unwrap();
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": m.len(), "artifactType": artifact})
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

/// `PUT /_emulator/referrers` (the front's knobs), or `DELETE` with `None`.
async fn referrers_knobs(stack: &Stack, knobs: Option<Value>) {
    let url = format!("{}/referrers", stack.control());
    let r = match knobs {
        Some(k) => stack.http().put(url).json(&k).send().await.unwrap(),
        None => stack.http().delete(url).send().await.unwrap(),
    };
    assert!(r.status().is_success(), "referrers knobs: {}", r.status());
}

/// The front's referrers answers since `mark`, for `digest`.
async fn referrers_calls(stack: &Stack, mark: u64, digest: &str) -> Vec<Value> {
    let path = format!("/v2/{REPO}/referrers/{digest}");
    let calls: Vec<Value> = stack
        .journal_since(mark)
        .await
        .into_iter()
        .filter(|e| e["api"] == "registry.referrers" && e["path"] == path.as_str())
        .collect();
    for c in &calls {
        assert_eq!((c["listener"].as_str(), c["status"].as_u64()), (Some("publisherReferrers"), Some(200)), "{c}");
        assert!(c["query"].as_str().unwrap_or("").contains("artifactType="), "{c}");
    }
    calls
}

/// Through the emulator's front of the publisher registry (the referrers API, as ACR serves
/// it): a signed release verifies whether the registry filters by `artifactType` or the client
/// must, and when the good signature is on the second page behind a bad one; it imports through
/// the front; an unsigned one is refused.
#[tokio::test]
async fn through_the_referrers_api_signed_releases_verify_on_any_page_and_unsigned_ones_are_refused() {
    let stack = Stack::get();
    referrers_knobs(&stack, None).await;
    let pid = std::process::id();
    let front = stack.var("VIBEDATA_STACK_PUBLISHER_REFERRERS").to_owned();
    let via = [("VIBEDATA_PUBLISHER_REGISTRY", front.as_str())];
    let tag = format!("api-{pid}");
    let d = document(&stack, &tag, true, "").await;
    // A referrer that is no signature: the registry's filter or the client's drops it.
    bogus_as(&stack, &d, 0, "application/vnd.example.sbom").await;

    // Filters applied, and a real import whose source is the front.
    let mark = stack.journal_mark().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.json");
    let o = stack.cli(&env_for(&stack, "sig-api", &tag, &out, &via), &["run", "artifacts"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = read_outputs(&out)["summary"]["signature"].clone();
    assert_eq!((s["verified"].as_bool(), s["discovery"].as_str()), (Some(true), Some("referrers API")), "{s}");
    let calls = referrers_calls(&stack, mark, &d).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["detail"], json!({"descriptors": 2, "filtersApplied": true, "next": null}));
    let imports = imports_since(&stack, mark).await;
    assert!(!imports.is_empty(), "nothing imported");
    let proxied = stack.journal_since(mark).await.into_iter().filter(|e| e["api"] == "registry.proxy").count();
    assert!(proxied > 0, "the release manifest was not read through the front");

    // No filter: every referrer comes back, without OCI-Filters-Applied, and the client filters.
    referrers_knobs(&stack, Some(json!({"filters": false}))).await;
    let mark = stack.journal_mark().await;
    let s = planned(&stack, "api", &tag, &via);
    assert_eq!((s["verified"].as_bool(), s["discovery"].as_str()), (Some(true), Some("referrers API")), "{s}");
    let calls = referrers_calls(&stack, mark, &d).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["detail"], json!({"descriptors": 3, "filtersApplied": false, "next": null}));

    // One descriptor a page, a bad signature sorting first: the good ones are behind `Link`.
    let first = vibedata_bootstrap::oci::sha256_digest;
    let good: Vec<String> = index(&stack, &d).await.iter().map(|e| e["digest"].as_str().unwrap().to_owned()).collect();
    let n = (1..).find(|n| good.iter().all(|g| first(bogus_manifest(&d, *n, NOTARY_SIG).as_bytes()) < *g)).unwrap();
    bogus(&stack, &d, n).await;
    referrers_knobs(&stack, Some(json!({"pageSize": 1}))).await;
    let mark = stack.journal_mark().await;
    let s = planned(&stack, "api-paged", &tag, &via);
    assert_eq!((s["verified"].as_bool(), s["discovery"].as_str()), (Some(true), Some("referrers API")), "{s}");
    let calls = referrers_calls(&stack, mark, &d).await;
    assert_eq!(calls.len(), 3, "a bad and two good signatures, one a page: {calls:?}");
    assert!(!calls[0]["query"].as_str().unwrap().contains("last="), "{calls:?}");
    for c in &calls[1..] {
        assert!(c["query"].as_str().unwrap().contains("last="), "the Link was not followed: {calls:?}");
    }
    assert!(calls[0]["detail"]["next"].is_string() && calls[2]["detail"]["next"].is_null(), "{calls:?}");
    referrers_knobs(&stack, None).await;

    // Unsigned: the API answers an empty index, and nothing is imported.
    let tag = format!("api-unsigned-{pid}");
    let u = document(&stack, &tag, false, "").await;
    let mark = stack.journal_mark().await;
    refused(&stack, "api-unsigned", &tag, &u, &via, "it is unsigned").await;
    let calls = referrers_calls(&stack, mark, &u).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["detail"]["descriptors"], 0);
}
