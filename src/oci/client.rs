//! One registry: its login server, how we authenticate, and the data-plane operations a copy
//! needs.
//!
//! Manifest GET/PUT and blob GET go through `oci-client`. We hand it only tokens we negotiated
//! ourselves (its token cache is primed per repository before each call, and its per-registry
//! fallback credential is an empty bearer), so it never follows a challenge realm on its own.
//! The other calls are direct `reqwest` requests on the shared client, each for a reason given
//! where it is: the two HEADs, the blob upload (one streamed PATCH), the cross-repository mount,
//! and cancelling an upload session.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::{RegistryToken, RegistryTokenType};
use oci_client::{Reference, RegistryOperation};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION};
use url::Url;

use super::auth::{Authenticator, Authz, Credentials, Scope};
use super::reference::{valid_digest, valid_repository, Target};
use super::{transport, verify_digest, OciError, MANIFEST_MEDIA_TYPES, MAX_MANIFEST_BYTES};
use crate::azure::retry::RetryPolicy;

/// How the registry handles are built: the same CA, timeouts and retry policy as the rest of a
/// run.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// An extra trusted CA (the local stack's). `oci-client` builds its own HTTP client, so it
    /// gets the file too, not only the shared client.
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub policy: RetryPolicy,
}

/// A manifest as the registry stores it: the exact bytes (their hash is the digest).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: String,
}

/// A registry, by login server (`host[:port]`), always over HTTPS.
pub struct Registry {
    host: String,
    origin: Url,
    auth: Authenticator,
    pub(super) http: reqwest::Client,
    oci: oci_client::Client,
    policy: RetryPolicy,
    /// Repositories of this registry known to hold a blob (pushed, mounted or seen in this process,
    /// or hinted by the caller): where a cross-repository mount can come from.
    known: Mutex<HashMap<String, Vec<String>>>,
    /// One lock per blob digest, so two copies never upload the same blob at once: the second
    /// waits, then mounts what the first uploaded.
    pub(crate) blob_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("host", &self.host).finish()
    }
}

impl Registry {
    /// `http` is the run's shared client (`crate::azure::http_client`).
    pub fn new(
        login_server: &str,
        credentials: Credentials,
        http: reqwest::Client,
        opts: &RegistryOptions,
    ) -> Result<Registry, OciError> {
        if !super::reference::valid_registry(login_server) {
            return Err(OciError::BadReference {
                reference: login_server.into(),
                reason: "not a registry host[:port]".into(),
            });
        }
        let origin = Url::parse(&format!("https://{login_server}"))
            .map_err(|e| OciError::BadReference { reference: login_server.into(), reason: e.to_string() })?;
        Self::with_origin(login_server, origin, credentials, http, opts)
    }

    pub(crate) fn with_origin(
        host: &str,
        origin: Url,
        credentials: Credentials,
        http: reqwest::Client,
        opts: &RegistryOptions,
    ) -> Result<Registry, OciError> {
        let mut config = ClientConfig {
            protocol: if origin.scheme() == "https" { ClientProtocol::Https } else { ClientProtocol::Http },
            read_timeout: opts.timeout,
            connect_timeout: Some(Duration::from_secs(10)),
            user_agent: concat!("vibedata-bootstrap/", env!("CARGO_PKG_VERSION")),
            // We fetch indexes and their children ourselves; never pick a platform for us.
            platform_resolver: None,
            ..Default::default()
        };
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| OciError::Local(format!("cannot read CA file {}: {e}", path.display())))?;
            config.extra_root_certificates.push(Certificate { encoding: CertificateEncoding::Pem, data: pem });
        }
        let oci = oci_client::Client::try_from(config)
            .map_err(|e| OciError::Local(format!("cannot build the registry client: {e}")))?;
        let auth = Authenticator::new(host, origin.clone(), credentials, http.clone(), opts.policy.clone());
        Ok(Registry {
            host: host.to_owned(),
            origin,
            auth,
            http,
            oci,
            policy: opts.policy.clone(),
            known: Mutex::default(),
            blob_locks: Mutex::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Records that `repository` holds `digest`, so later copies into this registry can mount
    /// it from there instead of uploading it again.
    pub fn note_blob(&self, repository: &str, digest: &str) {
        let mut known = self.known.lock().expect("known lock");
        let repos = known.entry(digest.to_owned()).or_default();
        if !repos.iter().any(|r| r == repository) {
            repos.push(repository.to_owned());
        }
    }

    /// Repositories other than `except` known to hold `digest`.
    pub fn blob_sources(&self, digest: &str, except: &str) -> Vec<String> {
        let known = self.known.lock().expect("known lock");
        known.get(digest).map(|r| r.iter().filter(|r| *r != except).cloned().collect()).unwrap_or_default()
    }

    /// Negotiates (and caches) the pull,push token of `repository` now.
    pub(crate) async fn authorize_push(&self, repository: &str) -> Result<(), OciError> {
        self.auth.authorize(&[Scope::push(repository)]).await.map(|_| ())
    }

    /// What pushing to `repository` needs granted (see `Authenticator::permission`).
    pub(crate) fn permission_for_push(&self, repository: &str) -> &'static crate::azure::permission::Permission {
        self.auth.permission(&[Scope::push(repository)])
    }

    pub(super) fn url(&self, path: &str) -> Url {
        self.origin.join(path).expect("registry path")
    }

    fn reference(&self, repository: &str, target: &Target) -> Reference {
        match target {
            Target::Tag(t) => Reference::with_tag(self.host.clone(), repository.to_owned(), t.clone()),
            Target::Digest(d) => Reference::with_digest(self.host.clone(), repository.to_owned(), d.clone()),
        }
    }

    /// Puts our token for `scopes` where `oci-client` looks first, for `repository` and `op`, and
    /// makes sure its fallback for this registry is an empty bearer (which sends nothing to any
    /// realm) rather than a challenge it would follow itself.
    async fn prime(&self, repository: &str, op: RegistryOperation, scopes: &[Scope]) -> Result<(), OciError> {
        let token = match self.auth.authorize(scopes).await? {
            Authz::None => return Ok(()),
            Authz::Basic { username, password } => RegistryTokenType::Basic(username, password.expose().to_owned()),
            Authz::Bearer(t) => RegistryTokenType::Bearer(RegistryToken::Token { token: t.expose().to_owned() }),
        };
        self.oci.store_auth_if_needed(&self.host, &RegistryAuth::Bearer(String::new())).await;
        let reference = Reference::with_tag(self.host.clone(), repository.to_owned(), "x".into());
        self.oci.tokens.insert(&reference, op, token).await;
        Ok(())
    }

    /// Runs an `oci-client` call with our token, retrying transient failures, and once more with
    /// a freshly negotiated token after a 401.
    async fn with_oci<T, F, Fut>(
        &self,
        repository: &str,
        op: RegistryOperation,
        scopes: &[Scope],
        resource: &str,
        call: F,
    ) -> Result<T, OciError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        let mut refreshed = false;
        loop {
            let result = transport::retry(&self.policy, resource, self.auth.permission(scopes), || async {
                self.prime(repository, op, scopes).await?;
                call().await.map_err(|e| transport::from_oci(e, &self.host, repository, resource))
            })
            .await;
            match result {
                Err(OciError::Denied { status: 401, .. }) if !refreshed => {
                    refreshed = true;
                    self.auth.invalidate().await;
                }
                other => return other.map_err(|e| self.explain_denied(e, scopes)),
            }
        }
    }

    /// A direct request with our token, retried per the policy, once more after a 401.
    pub(super) async fn direct(
        &self,
        scopes: &[Scope],
        resource: &str,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciError> {
        let mut refreshed = false;
        loop {
            let authz = self.auth.authorize(scopes).await?;
            let permission = self.auth.permission(scopes);
            let resp = transport::send(&self.policy, &self.host, resource, idempotent, permission, || match &authz {
                Authz::None => build(),
                Authz::Basic { username, password } => build().basic_auth(username, Some(password.expose())),
                Authz::Bearer(t) => build().header(AUTHORIZATION, format!("Bearer {}", t.expose())),
            })
            .await?;
            let status = resp.status().as_u16();
            if status == 401 && !refreshed {
                refreshed = true;
                self.auth.invalidate().await;
                continue;
            }
            if status == 401 || status == 403 {
                let code = if status == 401 { "UNAUTHORIZED" } else { "DENIED" };
                let denied = OciError::Denied {
                    registry: self.host.clone(),
                    resource: resource.to_owned(),
                    status,
                    code: code.into(),
                };
                return Err(self.explain_denied(denied, scopes));
            }
            return Ok(resp);
        }
    }

    /// A refusal with the managed identity names the permission it lacked (the registry only
    /// says 401: ACR issued a token without the scope the identity's roles do not cover).
    fn explain_denied(&self, e: OciError, scopes: &[Scope]) -> OciError {
        let permission = self.auth.permission(scopes);
        match e {
            OciError::Denied { registry, resource, status, code }
                if permission.kind != crate::azure::permission::Kind::NoRbac =>
            {
                let abac: Vec<&str> = crate::azure::acr::abac(permission).iter().map(|p| p.name).collect();
                let role = crate::roles::narrowest_for(permission.name).map(|r| format!(" ({} {})", r.name, r.id));
                OciError::Denied {
                    registry,
                    resource: format!(
                        "{resource}: the identity needs {} (in ABAC mode {}); hint: assign it a role that grants it{} on the registry",
                        permission.name,
                        abac.join(" and "),
                        role.unwrap_or_default()
                    ),
                    status,
                    code,
                }
            }
            other => other,
        }
    }

    /// `GET /v2/` with a token for no repository: the registry is up and accepts our credentials
    /// (the health probe's ACR check).
    pub async fn ping(&self) -> Result<(), OciError> {
        let resp = self.direct(&[], "/v2/", true, || self.http.get(self.url("/v2/"))).await?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(transport::from_status(status, &resp.text().await.unwrap_or_default(), &self.host, "/v2/"))
    }

    /// The manifest `reference` (tag or digest) of `repository`. Fetched by digest, its bytes are
    /// verified against that digest.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, OciError> {
        let target = check(repository, reference)?;
        let image = self.reference(repository, &target);
        let resource = format!("{repository}:{reference}");
        let (bytes, digest) = self
            .with_oci(repository, RegistryOperation::Pull, &[Scope::pull(repository)], &resource, || {
                // The auth argument only matters on oci-client's first call for this registry,
                // and `prime` has already stored the empty-bearer fallback for a registry that
                // wants credentials; for an open one, anonymous is what it is.
                self.oci.pull_manifest_raw(&image, &RegistryAuth::Anonymous, MANIFEST_MEDIA_TYPES)
            })
            .await?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(OciError::Manifest {
                resource,
                detail: format!("{} bytes is larger than a manifest may be", bytes.len()),
            });
        }
        // oci-client checks too; the rule is ours, so we do not depend on it.
        if let Target::Digest(d) = &target {
            verify_digest(repository, d, &bytes)?;
        }
        let media_type = super::copy::media_type_of(&bytes, &resource)?;
        let digest = if let Target::Digest(d) = target { d } else { digest };
        Ok(Manifest { bytes, media_type, digest })
    }

    /// The digest `reference` names in `repository`, or `None` when it does not exist.
    ///
    /// Direct HEAD: `oci-client`'s `fetch_manifest_digest` falls back to a GET when the header is
    /// missing and reports 404 as an error; we want exactly one HEAD and `None`.
    pub async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<String>, OciError> {
        check(repository, reference)?;
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let resource = format!("{repository}:{reference}");
        let accept = MANIFEST_MEDIA_TYPES.join(", ");
        let resp = self
            .direct(&[Scope::pull(repository)], &resource, true, || self.http.head(url.clone()).header(ACCEPT, &accept))
            .await?;
        match resp.status().as_u16() {
            200 => match resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .filter(|d| valid_digest(d))
            {
                Some(d) => Ok(Some(d.to_owned())),
                // Some registries leave the header out of HEAD answers: hash the manifest itself.
                None => Ok(Some(super::sha256_digest(&self.manifest(repository, reference).await?.bytes))),
            },
            404 => Ok(None),
            s => Err(transport::from_status(s, "", &self.host, &resource)),
        }
    }

    /// Whether `repository` holds the blob `digest` (direct HEAD, for the same reasons).
    pub async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, OciError> {
        check(repository, digest)?;
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let resource = format!("{repository}@{digest}");
        let resp = self.direct(&[Scope::pull(repository)], &resource, true, || self.http.head(url.clone())).await?;
        match resp.status().as_u16() {
            200 => {
                self.note_blob(repository, digest);
                Ok(true)
            }
            404 => Ok(false),
            s => Err(transport::from_status(s, "", &self.host, &resource)),
        }
    }

    /// The blob `digest` as a stream. `oci-client` verifies the bytes against the digest at the
    /// end of the stream (an error instead of the end); the copy checks again before committing.
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, OciError> {
        check(repository, digest)?;
        let image = self.reference(repository, &Target::Digest(digest.to_owned()));
        let desc = OciDescriptor { digest: digest.to_owned(), ..Default::default() };
        let resource = format!("{repository}@{digest}");
        let sized = self
            .with_oci(repository, RegistryOperation::Pull, &[Scope::pull(repository)], &resource, || {
                self.oci.pull_blob_stream(&image, &desc)
            })
            .await?;
        Ok(sized.stream)
    }

    /// A small blob, whole and verified against its digest; refused past `max` bytes without
    /// reading further (a release's artifacts are scripts, SQL, charts and JSON).
    pub async fn blob_bytes(&self, repository: &str, digest: &str, max: u64) -> Result<bytes::Bytes, OciError> {
        use futures::StreamExt;
        let resource = format!("{repository}@{digest}");
        let mut stream = Box::pin(self.blob_stream(repository, digest).await?);
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| super::stream_error(e, self, repository, &resource))?;
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > max {
                return Err(OciError::TooLarge { resource, max });
            }
        }
        let bytes = buf.freeze();
        super::verify_digest(repository, digest, &bytes)?;
        Ok(bytes)
    }

    /// Uploads a blob from `stream` as one streamed PATCH, then commits it with `PUT ?digest=`
    /// only when the stream ended without error (a stream failing its digest check at the end
    /// aborts the PATCH, and the session is cancelled).
    ///
    /// Direct calls: `oci-client`'s stream upload sends one PATCH per chunk (50 requests for a
    /// 200 MiB layer, each holding a chunk in memory); docker and skopeo stream one PATCH, which
    /// is faster and holds no chunk at all.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &str,
        stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    ) -> Result<(), OciError> {
        check(repository, digest)?;
        let resource = format!("{repository}@{digest}");
        let scopes = [Scope::push(repository)];
        let start = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let resp = self
            .direct(&scopes, &resource, true, || {
                self.http.post(start.clone()).header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        let location = self.upload_location(resp, 202, &resource).await?;
        // The PATCH and PUT below continue the session the POST opened (and recorded): they
        // need the same permission, and go around no loop because a stream cannot be replayed.
        let authz = self.auth.authorize(&scopes).await?;
        let patch = self
            .with_authz(self.http.patch(location.clone()), &authz, &location)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
        let resp = match patch.body(reqwest::Body::wrap_stream(stream)).send().await {
            Ok(r) => r,
            Err(e) => {
                self.cancel_upload(&scopes, location).await;
                return Err(stream_error(&e, repository).unwrap_or_else(|| {
                    transport::from_io(std::io::Error::other(e), &self.host, repository, &resource)
                }));
            }
        };
        let mut location = self.upload_location(resp, 202, &resource).await?;
        location.query_pairs_mut().append_pair("digest", digest);
        let put = self
            .with_authz(self.http.put(location.clone()), &authz, &location)
            .header(reqwest::header::CONTENT_LENGTH, "0");
        let resp = put.send().await.map_err(|e| OciError::Transport {
            registry: self.host.clone(),
            resource: resource.clone(),
            detail: crate::azure::pipeline::error_chain(&e),
        })?;
        if resp.status().as_u16() != 201 {
            return Err(transport::from_status(
                resp.status().as_u16(),
                &resp.text().await.unwrap_or_default(),
                &self.host,
                &resource,
            ));
        }
        self.note_blob(repository, digest);
        Ok(())
    }

    /// The `Location` of an upload session answer with status `want`, made absolute.
    async fn upload_location(&self, resp: reqwest::Response, want: u16, resource: &str) -> Result<Url, OciError> {
        let status = resp.status().as_u16();
        if status != want {
            return Err(transport::from_status(status, &resp.text().await.unwrap_or_default(), &self.host, resource));
        }
        resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|l| self.origin.join(l).ok()).ok_or_else(
            || OciError::Registry {
                registry: self.host.clone(),
                resource: resource.into(),
                status,
                code: "NoLocation".into(),
                message: "upload session without a Location".into(),
            },
        )
    }

    /// Adds our credential, but only for the registry's own origin: an upload `Location` may
    /// point elsewhere (a storage service), and no token or password goes there.
    fn with_authz(&self, req: reqwest::RequestBuilder, authz: &Authz, url: &Url) -> reqwest::RequestBuilder {
        if url.origin() != self.origin.origin() {
            return req;
        }
        match authz {
            Authz::None => req,
            Authz::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
            Authz::Bearer(t) => req.header(AUTHORIZATION, format!("Bearer {}", t.expose())),
        }
    }

    /// Cross-repository mount of `digest` from `from` into `repository`. `true` when mounted
    /// (201); `false` when the registry would not (202: it opened an upload session instead,
    /// which we cancel, and the caller uploads).
    ///
    /// Direct POST: `oci-client`'s `mount_blob` reports 202 as an error and leaves the session
    /// open. The token must cover both repositories (pull on `from`), as distribution checks.
    pub async fn mount_blob(&self, repository: &str, from: &str, digest: &str) -> Result<bool, OciError> {
        check(repository, digest)?;
        check(from, digest)?;
        let mut url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from);
        let resource = format!("{repository}@{digest} (mount from {from})");
        let scopes = [Scope::push(repository), Scope::pull(from)];
        let resp = self
            .direct(&scopes, &resource, true, || {
                self.http.post(url.clone()).header(reqwest::header::CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status().as_u16() {
            201 => {
                self.note_blob(repository, digest);
                Ok(true)
            }
            202 => {
                if let Some(location) =
                    resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).and_then(|l| self.origin.join(l).ok())
                {
                    self.cancel_upload(&scopes, location).await;
                }
                Ok(false)
            }
            s => Err(transport::from_status(s, &resp.text().await.unwrap_or_default(), &self.host, &resource)),
        }
    }

    /// Best effort: the registry purges abandoned sessions anyway. Our token only goes along when
    /// the session is on the registry's own origin.
    async fn cancel_upload(&self, scopes: &[Scope], location: Url) {
        if location.origin() != self.origin.origin() {
            return;
        }
        let _ = self.direct(scopes, "upload session", true, || self.http.delete(location.clone())).await;
    }

    /// Stores a manifest under `reference` (a digest, or a tag). By digest, the bytes must hash to
    /// it. Returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<String, OciError> {
        let target = check(repository, reference)?;
        if let Target::Digest(d) = &target {
            verify_digest(repository, d, &bytes)?;
        }
        let image = self.reference(repository, &target);
        let resource = format!("{repository}:{reference}");
        let content_type = HeaderValue::from_str(media_type).map_err(|_| OciError::Manifest {
            resource: resource.clone(),
            detail: format!("media type {media_type:?}"),
        })?;
        self.with_oci(repository, RegistryOperation::Push, &[Scope::push(repository)], &resource, || {
            self.oci.push_manifest_raw(&image, bytes.clone(), content_type.clone())
        })
        .await?;
        Ok(super::sha256_digest(&bytes))
    }
}

/// Checks a repository and a tag-or-digest before they go into a URL.
fn check(repository: &str, reference: &str) -> Result<Target, OciError> {
    if !valid_repository(repository) {
        return Err(OciError::BadReference { reference: repository.into(), reason: "not a repository name".into() });
    }
    Target::parse(reference).ok_or_else(|| OciError::BadReference {
        reference: reference.into(),
        reason: "neither a tag nor a sha256 digest".into(),
    })
}

/// Our digest check (or oci-client's) failing inside a request body, found in the error chain.
/// (`io::Error::source` skips the error it wraps, so each `io::Error` is looked into.)
fn stream_error(e: &reqwest::Error, repository: &str) -> Option<OciError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        for candidate in [Some(c), inner].into_iter().flatten() {
            if let Some(m) = candidate.downcast_ref::<super::stream::Mismatch>() {
                return Some(OciError::DigestMismatch {
                    repository: repository.into(),
                    expected: m.expected.clone(),
                    actual: m.actual.clone(),
                });
            }
            if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
                candidate.downcast_ref()
            {
                return Some(OciError::DigestMismatch {
                    repository: repository.into(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
        cause = c.source();
    }
    None
}
