//! The registry-to-registry copy behind `importImage`: a small OCI distribution client of its
//! own (deliberately not the runtime's, so the emulator does not merely agree with our client).
//!
//! It only ever talks to the two registries of the config, over TLS trusting only the stack's
//! CA (`caFile`): the publisher (Basic auth with the import's credentials, sent to no other
//! host; redirects are followed only to the same host) and the customer registry (a registry JWT
//! the emulator mints itself). Manifests are copied byte for byte, so digests are preserved.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// ACR's documented limit of manifests per imported image.
const MAX_MANIFESTS: usize = 50;

/// Which side of the copy failed, and how: the import turns this into an ARM error.
#[derive(Debug)]
pub struct CopyError {
    pub side: Side,
    /// What was being done (`reading manifest vibedata/api:1.0`).
    pub context: String,
    /// The registry's status, when it answered.
    pub status: Option<StatusCode>,
    /// The registry's body or the transport error.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
    /// The bytes did not match their digest, or the manifest could not be understood.
    Content,
}

impl CopyError {
    fn new(side: Side, context: impl Into<String>, detail: impl Into<String>) -> CopyError {
        CopyError { side, context: context.into(), status: None, detail: detail.into() }
    }
}

/// How requests to one registry authenticate.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

/// One registry: its origin, an HTTP client trusting only the stack CA, and the credentials.
pub struct Registry {
    base: Url,
    http: reqwest::Client,
    auth: Auth,
    side: Side,
}

/// An HTTP client for `login_server` (`host:port`) that trusts only `ca_pem` and follows
/// redirects only to that same host and port (so credentials never leave it).
pub fn client_for(login_server: &str, ca_pem: &[u8]) -> Result<reqwest::Client, String> {
    let certs = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(|e| format!("CA file: {e}"))?;
    let authority = login_server.to_ascii_lowercase();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let same = attempt.url().scheme() == "https" && authority_of(attempt.url()).is_some_and(|a| a == authority);
        if attempt.previous().len() >= 5 || !same {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .redirect(policy)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .user_agent(concat!("vibedata-emulator-import/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

fn authority_of(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port_or_known_default() {
        Some(443) | None => host,
        Some(p) => format!("{host}:{p}"),
    })
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A manifest as the registry served it: the exact bytes, their digest and media type.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Bytes,
    pub digest: String,
    pub media_type: String,
}

impl Manifest {
    fn json(&self) -> Result<Value, CopyError> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| CopyError::new(Side::Content, format!("parsing manifest {}", self.digest), e.to_string()))
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

impl Registry {
    pub fn new(login_server: &str, http: reqwest::Client, auth: Auth, side: Side) -> Registry {
        let base = Url::parse(&format!("https://{login_server}/")).expect("login server is host:port");
        Registry { base, http, auth, side }
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        match &self.auth {
            Auth::None => req,
            Auth::Basic { username, password } => {
                req.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(format!("{username}:{password}"))))
            }
            Auth::Bearer(token) => req.header(AUTHORIZATION, format!("Bearer {token}")),
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are relative")
    }

    async fn send(&self, req: reqwest::RequestBuilder, context: &str) -> Result<reqwest::Response, CopyError> {
        req.send().await.map_err(|e| CopyError::new(self.side, context, format!("{e}")))
    }

    async fn fail(&self, resp: reqwest::Response, context: &str) -> CopyError {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        CopyError { side: self.side, context: context.to_owned(), status: Some(status), detail: body.trim().to_owned() }
    }

    /// Whether `repo:reference` exists (HEAD of the manifest).
    pub async fn manifest_exists(&self, repo: &str, reference: &str) -> Result<bool, CopyError> {
        let head = self
            .request(Method::HEAD, self.url(&format!("v2/{repo}/manifests/{reference}")))
            .header(ACCEPT, ACCEPT_MANIFESTS);
        self.exists(head, format!("checking manifest {repo}:{reference}")).await
    }

    /// Sends a HEAD: 2xx is present, 404 absent, anything else an error.
    async fn exists(&self, head: reqwest::RequestBuilder, context: String) -> Result<bool, CopyError> {
        let resp = self.send(head, &context).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(resp, &context).await),
        }
    }

    /// GETs a manifest by tag or digest; a digest reference must match the bytes.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, CopyError> {
        let context =
            format!("reading manifest {repo}{}{reference}", if reference.starts_with("sha256:") { "@" } else { ":" });
        let resp = self
            .send(
                self.request(Method::GET, self.url(&format!("v2/{repo}/manifests/{reference}")))
                    .header(ACCEPT, ACCEPT_MANIFESTS),
                &context,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &context).await);
        }
        let header_type = content_type(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| CopyError::new(self.side, &context, e.to_string()))?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(CopyError::new(
                Side::Content,
                context,
                format!("the registry served bytes with digest {digest}"),
            ));
        }
        let body_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(str::to_owned));
        // The body's own mediaType wins over a generic Content-Type.
        let media_type = body_type
            .or(header_type.filter(|t| t != "application/json" && t != "application/octet-stream"))
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        Ok(Manifest { bytes: Bytes::from(bytes.to_vec()), digest, media_type })
    }

    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, CopyError> {
        let head = self.request(Method::HEAD, self.url(&format!("v2/{repo}/blobs/{digest}")));
        self.exists(head, format!("checking blob {repo}@{digest}")).await
    }

    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Bytes, CopyError> {
        let context = format!("reading blob {repo}@{digest}");
        let resp =
            self.send(self.request(Method::GET, self.url(&format!("v2/{repo}/blobs/{digest}"))), &context).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &context).await);
        }
        let bytes = resp.bytes().await.map_err(|e| CopyError::new(self.side, &context, e.to_string()))?;
        let got = sha256_digest(&bytes);
        if got != digest {
            return Err(CopyError::new(Side::Content, context, format!("the bytes have digest {got}")));
        }
        Ok(Bytes::from(bytes.to_vec()))
    }

    /// Monolithic upload: `POST /blobs/uploads/` then `PUT <location>&digest=`.
    pub async fn put_blob(&self, repo: &str, digest: &str, bytes: Bytes) -> Result<(), CopyError> {
        let context = format!("uploading blob {repo}@{digest}");
        let resp = self
            .send(
                self.request(Method::POST, self.url(&format!("v2/{repo}/blobs/uploads/")))
                    .header(reqwest::header::CONTENT_LENGTH, "0"),
                &context,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(resp, &context).await);
        }
        let Some(location) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
            return Err(CopyError::new(self.side, context, "the upload answer has no Location"));
        };
        let mut url = self
            .base
            .join(location)
            .map_err(|e| CopyError::new(self.side, &context, format!("bad upload Location: {e}")))?;
        if authority_of(&url) != authority_of(&self.base) {
            return Err(CopyError::new(self.side, context, "the upload Location points at another host"));
        }
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(self.request(Method::PUT, url).header(CONTENT_TYPE, "application/octet-stream").body(bytes), &context)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &context).await);
        }
        Ok(())
    }

    /// PUTs the manifest bytes unchanged under `reference` (a tag or its digest).
    pub async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> Result<(), CopyError> {
        let context =
            format!("writing manifest {repo}{}{reference}", if reference.starts_with("sha256:") { "@" } else { ":" });
        let resp = self
            .send(
                self.request(Method::PUT, self.url(&format!("v2/{repo}/manifests/{reference}")))
                    .header(CONTENT_TYPE, &m.media_type)
                    .body(m.bytes.clone()),
                &context,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &context).await);
        }
        if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            if d != m.digest {
                return Err(CopyError::new(
                    Side::Content,
                    context,
                    format!("the registry stored digest {d}, expected {}", m.digest),
                ));
            }
        }
        Ok(())
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Digests of the blobs an image manifest references (config, layers; `blobs` of the old OCI
/// artifact manifest). Foreign layers (with `urls`) are not copied, as registries do.
fn blob_digests(m: &Manifest) -> Result<Vec<String>, CopyError> {
    let v = m.json()?;
    let mut out = Vec::new();
    let mut push = |d: &Value| {
        if d.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty()) {
            return;
        }
        if let Some(digest) = d.get("digest").and_then(Value::as_str) {
            if !out.iter().any(|x| x == digest) {
                out.push(digest.to_owned());
            }
        }
    };
    if let Some(c) = v.get("config") {
        push(c);
    }
    for key in ["layers", "blobs"] {
        for d in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            push(d);
        }
    }
    if out.iter().any(|d| !d.starts_with("sha256:")) {
        return Err(CopyError::new(
            Side::Content,
            format!("manifest {}", m.digest),
            "only sha256 digests are supported",
        ));
    }
    Ok(out)
}

/// What one import copies: the top manifest, its child manifests (for an index) and, per
/// manifest, its blobs.
pub struct Tree {
    pub top: Manifest,
    pub children: Vec<Manifest>,
}

/// Reads `repo` at `reference` from `src` with every child manifest of an index.
pub async fn read_tree(src: &Registry, repo: &str, reference: &str) -> Result<Tree, CopyError> {
    let top = src.get_manifest(repo, reference).await?;
    let mut children = Vec::new();
    if top.is_index() {
        let v = top.json()?;
        let entries = v.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        if entries.len() + 1 > MAX_MANIFESTS {
            return Err(CopyError::new(
                Side::Content,
                format!("manifest {}", top.digest),
                format!("the image has {} manifests; at most {MAX_MANIFESTS} can be imported", entries.len() + 1),
            ));
        }
        for e in entries {
            let Some(d) = e.get("digest").and_then(Value::as_str) else {
                continue;
            };
            let child = src.get_manifest(repo, d).await?;
            if child.is_index() {
                return Err(CopyError::new(Side::Content, format!("manifest {d}"), "nested indexes are not supported"));
            }
            children.push(child);
        }
    } else if !matches!(top.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST)
        && !top.media_type.starts_with("application/vnd.oci.")
    {
        return Err(CopyError::new(
            Side::Content,
            format!("manifest {}", top.digest),
            format!("unsupported manifest media type '{}'", top.media_type),
        ));
    }
    Ok(Tree { top, children })
}

/// One async lock per blob digest, shared by every import in the process.
fn blob_lock(digest: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().expect("blob lock table");
    locks.entry(digest.to_owned()).or_default().clone()
}

/// Copies `tree` (read from `src_repo`) into `dst_repo`: blobs (HEAD-skip existing), child
/// manifests by digest, then the top manifest under each of `tags`, or by digest when `tags`
/// is empty. `cache` keeps blobs already read for the other target repositories.
pub async fn write_tree(
    src: &Registry,
    src_repo: &str,
    tree: &Tree,
    dst: &Registry,
    dst_repo: &str,
    tags: &[String],
    cache: &mut HashMap<String, Bytes>,
) -> Result<(), CopyError> {
    for m in tree.children.iter().chain(std::iter::once(&tree.top)) {
        if m.is_index() {
            continue;
        }
        for digest in blob_digests(m)? {
            // CNCF distribution's filesystem driver races when two uploads of the same digest
            // commit at once (one gets DIGEST_INVALID), and concurrent imports share base
            // layers. ACR does not show this, so the emulator must not either: one upload per
            // digest at a time, and the existence check under that lock.
            let lock = blob_lock(&digest);
            let _held = lock.lock().await;
            if dst.blob_exists(dst_repo, &digest).await? {
                continue;
            }
            let bytes = match cache.get(&digest) {
                Some(b) => b.clone(),
                None => {
                    let b = src.get_blob(src_repo, &digest).await?;
                    cache.insert(digest.clone(), b.clone());
                    b
                }
            };
            if let Err(e) = dst.put_blob(dst_repo, &digest, bytes).await {
                // Another process (a test pushing with skopeo, our own `copy`) may have committed
                // the same blob meanwhile; the registry then refuses this commit. Present is enough.
                if !dst.blob_exists(dst_repo, &digest).await? {
                    return Err(e);
                }
            }
        }
    }
    for child in &tree.children {
        dst.put_manifest(dst_repo, &child.digest, child).await?;
    }
    if tags.is_empty() {
        dst.put_manifest(dst_repo, &tree.top.digest, &tree.top).await?;
    }
    for tag in tags {
        dst.put_manifest(dst_repo, tag, &tree.top).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_blob_lists() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let m = Manifest {
            bytes: Bytes::from_static(
                br#"{"config":{"digest":"sha256:aa"},"layers":[{"digest":"sha256:bb"},{"digest":"sha256:aa"},{"digest":"sha256:cc","urls":["https://x"]}]}"#,
            ),
            digest: "sha256:00".into(),
            media_type: OCI_MANIFEST.into(),
        };
        assert_eq!(blob_digests(&m).unwrap(), vec!["sha256:aa", "sha256:bb"]);
    }

    #[test]
    fn redirect_authority() {
        assert_eq!(authority_of(&Url::parse("https://127.0.0.1:5000/v2/").unwrap()).unwrap(), "127.0.0.1:5000");
        assert_eq!(authority_of(&Url::parse("https://Example.com/x").unwrap()).unwrap(), "example.com");
    }
}
