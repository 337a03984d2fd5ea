//! Registry copies against the local stack's real registries (CNCF distribution): the publisher
//! with htpasswd Basic auth, the customer with token auth whose token service is the emulator's
//! ACR `/oauth2/*`, reached as the managed identity.

mod oci_support;

use std::sync::{Arc, Mutex};

use oci_support::{noise, push_image, run_prefix, stack, RELEASE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vibedata_bootstrap::oci::{copy, CopyOptions, OciError, Registry};

fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    std::iter::once(&v["config"])
        .chain(v["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_an_image_to_the_customer_and_a_second_copy_skips_every_blob() {
    let Some(stack) = stack() else { return };
    let (publisher, customer) = (stack.publisher(), stack.customer());
    let dst_repo = format!("{}/vibedata/api", run_prefix());
    let source = publisher.manifest("vibedata/api", RELEASE).await.unwrap();
    let blobs = blobs_of(&source.bytes);

    let first = copy(&publisher, "vibedata/api", RELEASE, &customer, &dst_repo, Some(RELEASE), &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(first.digest, source.digest, "the copy keeps the digest");
    assert_eq!(
        (first.manifests, first.manifests_pushed, first.blobs_copied, first.blobs_skipped),
        (1, 1, blobs.len(), 0),
        "{first:?}"
    );
    assert!(first.tag_updated && first.bytes_copied > 0);

    // Read back with a fresh handle (a new token exchange): same bytes, every blob there.
    let reader = stack.customer();
    let copied = reader.manifest(&dst_repo, RELEASE).await.unwrap();
    assert_eq!((copied.digest.as_str(), copied.bytes.as_ref()), (source.digest.as_str(), source.bytes.as_ref()));
    for b in &blobs {
        assert!(reader.blob_exists(&dst_repo, b).await.unwrap(), "{b} missing");
    }

    let second =
        copy(&publisher, "vibedata/api", RELEASE, &customer, &dst_repo, Some(RELEASE), &CopyOptions::default())
            .await
            .unwrap();
    assert_eq!(second.digest, source.digest);
    assert_eq!(
        (second.blobs_skipped, second.blobs_copied, second.blobs_mounted, second.manifests_pushed),
        (blobs.len(), 0, 0, 0),
        "{second:?}"
    );
    assert!(!second.tag_updated);

    // By digest into another repository, untagged.
    let by_digest = copy(
        &publisher,
        "vibedata/api",
        &source.digest,
        &customer,
        &format!("{dst_repo}-bydigest"),
        None,
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(by_digest.digest, source.digest);
    assert!(!by_digest.tag_updated);
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_the_multi_arch_index_with_every_platform_and_its_digest() {
    let Some(stack) = stack() else { return };
    let (publisher, customer) = (stack.publisher(), stack.customer());
    let dst_repo = format!("{}/vibedata/web", run_prefix());
    let index = publisher.manifest("vibedata/web", RELEASE).await.unwrap();
    assert_eq!(index.media_type, vibedata_bootstrap::oci::OCI_INDEX);
    let children: Vec<String> = serde_json::from_slice::<serde_json::Value>(&index.bytes).unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(children.len(), 2);

    let report = copy(
        &publisher,
        "vibedata/web",
        RELEASE,
        &customer,
        &dst_repo,
        Some(RELEASE),
        &CopyOptions { jobs: 8, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(report.digest, index.digest);
    assert_eq!((report.manifests, report.manifests_pushed), (3, 3));
    assert_eq!(customer.manifest_digest(&dst_repo, RELEASE).await.unwrap().as_deref(), Some(index.digest.as_str()));
    for child in &children {
        assert_eq!(
            customer.manifest_digest(&dst_repo, child).await.unwrap().as_deref(),
            Some(child.as_str()),
            "platform manifest {child}"
        );
        let m = customer.manifest(&dst_repo, child).await.unwrap();
        for b in blobs_of(&m.bytes) {
            assert!(customer.blob_exists(&dst_repo, &b).await.unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_base_layer_is_mounted_into_a_second_repository() {
    let Some(stack) = stack() else { return };
    let (publisher, customer) = (stack.publisher(), stack.customer());
    let prefix = format!("{}/mount", run_prefix());
    let api = copy(
        &publisher,
        "vibedata/api",
        RELEASE,
        &customer,
        &format!("{prefix}/api"),
        Some(RELEASE),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(api.blobs_mounted, 0);
    // vibedata/auth shares the base-os layer (and the native runtime) with vibedata/api.
    let auth = copy(
        &publisher,
        "vibedata/auth",
        RELEASE,
        &customer,
        &format!("{prefix}/auth"),
        Some(RELEASE),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert!(auth.blobs_mounted >= 1, "the shared layer is mounted, not uploaded again: {auth:?}");

    // A new process knows nothing: the caller's hint set names where a blob is.
    let fresh = stack.customer();
    let api_manifest = publisher.manifest("vibedata/api", RELEASE).await.unwrap();
    let hints = blobs_of(&api_manifest.bytes).into_iter().map(|d| (format!("{prefix}/api"), d)).collect();
    let hinted = copy(
        &publisher,
        "vibedata/api",
        RELEASE,
        &fresh,
        &format!("{prefix}/api-again"),
        Some(RELEASE),
        &CopyOptions { mount_hints: hints, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!((hinted.blobs_mounted, hinted.blobs_copied), (blobs_of(&api_manifest.bytes).len(), 0), "{hinted:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_source_blob_is_rejected_and_the_target_tag_is_not_created() {
    let Some(stack) = stack() else { return };
    let (publisher, customer) = (stack.publisher(), stack.customer());
    let repo = format!("{}/tamper", run_prefix());
    // Content unique to this run: the registry shares blobs across repositories by digest, and a
    // blob tampered with by an earlier run must not be pushed "again" (the push would be a no-op).
    let (_, layer) = push_image(&publisher, &repo, "1", noise(3 << 20, uuid::Uuid::new_v4().as_u64_pair().0)).await;

    // Flip bytes of the layer in the publisher's storage, keeping its size.
    let hex = &layer["sha256:".len()..];
    let path =
        stack.dir.join(format!("data/registry-publisher/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut content = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for b in content.iter_mut().skip(1000).take(64) {
        *b ^= 0xff;
    }
    std::fs::write(&path, &content).unwrap();

    let err = copy(&publisher, &repo, "1", &customer, &repo, Some("1"), &CopyOptions::default()).await.unwrap_err();
    match &err {
        OciError::DigestMismatch { repository, expected, .. } => {
            assert!(repository.contains(&repo), "names the repository: {err}");
            assert_eq!(expected, &layer, "names the digest: {err}");
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    assert_eq!(customer.manifest_digest(&repo, "1").await.unwrap(), None, "no tag");
    assert!(!customer.blob_exists(&repo, &layer).await.unwrap(), "no blob committed under the digest");
}

/// A loopback HTTPS server (the stack's server certificate) that records every request and
/// answers `/v2/` with a 401 naming `challenge`, anything else with 404.
struct Poser {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn poser(stack: &oci_support::Stack, challenge: impl Fn(u16) -> String + Send + Sync + 'static) -> Poser {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(stack.dir.join("ca/server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(stack.dir.join("ca/server.key")).unwrap();
    let config =
        tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log, challenge) = (seen.clone(), Arc::new(challenge));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log, challenge) = (acceptor.clone(), log.clone(), challenge.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                log.lock().unwrap().push(head.clone());
                let reply = if head.starts_with("GET /v2/ ") {
                    format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", challenge(port))
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Poser { port, seen }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aad_token_never_goes_to_a_host_that_is_not_configured() {
    let Some(stack) = stack() else { return };
    let aad = stack.tokens().token(oci_support::ARM_SCOPE).await.unwrap();
    let publisher = stack.publisher();
    let auth_endpoint = stack.get("VIBEDATA_ACR_AUTH_ENDPOINT");

    // 1. A registry whose challenge realm points at yet another host: refused, nothing sent there.
    let elsewhere = poser(stack, |_| "Basic realm=\"x\"".into()).await;
    let elsewhere_port = elsewhere.port;
    let fake = poser(stack, move |_| {
        format!("Bearer realm=\"https://127.0.0.1:{elsewhere_port}/oauth2/token\",service=\"vibedatacustomer\"")
    })
    .await;
    let dst = Registry::new(
        &format!("127.0.0.1:{}", fake.port),
        stack.acr_identity(auth_endpoint),
        stack.http(),
        &stack.options(),
    )
    .unwrap();
    let err = copy(&publisher, "vibedata/api", RELEASE, &dst, "vibedata/api", Some(RELEASE), &CopyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::RealmRefused { .. }), "{err}");
    assert!(elsewhere.seen.lock().unwrap().is_empty(), "the foreign realm received nothing");
    for req in fake.seen.lock().unwrap().iter() {
        assert!(!req.to_ascii_lowercase().contains("authorization:"), "the fake registry got credentials: {req}");
    }

    // 2. A registry whose realm is itself (as on ACR), with the exchange configured on the
    //    emulator: the AAD token goes to the emulator only; the registry sees registry tokens.
    let fake = poser(stack, |port| {
        format!("Bearer realm=\"https://127.0.0.1:{port}/oauth2/token\",service=\"vibedatacustomer\"")
    })
    .await;
    let dst = Registry::new(
        &format!("127.0.0.1:{}", fake.port),
        stack.acr_identity(auth_endpoint),
        stack.http(),
        &stack.options(),
    )
    .unwrap();
    let _ =
        copy(&publisher, "vibedata/api", RELEASE, &dst, "vibedata/api", Some(RELEASE), &CopyOptions::default()).await;
    let seen = fake.seen.lock().unwrap().clone();
    assert!(seen.len() > 1, "the copy went past the challenge: {} requests", seen.len());
    assert!(
        seen.iter().any(|r| r.to_ascii_lowercase().contains("authorization: bearer ")),
        "a registry token was presented"
    );
    for req in &seen {
        assert!(!req.contains(aad.expose()), "the fake registry got the AAD token");
        assert!(
            !req.contains("/oauth2/"),
            "nothing asked the registry for tokens: {}",
            req.lines().next().unwrap_or("")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_token_exchange_is_retried_after_its_retry_after() {
    let Some(stack) = stack() else { return };
    let control = stack.get("VIBEDATA_EMULATOR_CONTROL").to_owned();
    let http = stack.http();
    let fault = serde_json::json!({"api": "acr.exchange", "kind": "throttle", "count": 1, "retryAfter": 1});
    http.post(format!("{control}/faults")).json(&fault).send().await.unwrap().error_for_status().unwrap();

    let (publisher, customer) = (stack.publisher(), stack.customer());
    let dst_repo = format!("{}/throttled/api", run_prefix());
    let report =
        copy(&publisher, "vibedata/api", RELEASE, &customer, &dst_repo, Some(RELEASE), &CopyOptions::default())
            .await
            .unwrap();
    assert!(report.tag_updated);
    let journal: serde_json::Value = http.get(format!("{control}/journal")).send().await.unwrap().json().await.unwrap();
    let exchanges: Vec<u64> = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api"] == "acr.exchange")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert!(exchanges.contains(&429) && exchanges.contains(&200), "throttled, then served: {exchanges:?}");
}
