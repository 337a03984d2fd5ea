//! The `publisherReferrers` listener: a front for the publisher registry (CNCF distribution 2.8,
//! which has no referrers API) that answers OCI distribution-spec 1.1 "Listing Referrers"
//! (`GET /v2/<name>/referrers/<digest>`) itself and forwards every other `/v2/...` request to the
//! registry. ACR serves the referrers API itself; this is what lets the runtime's API path
//! (`src/oci/referrers.rs`) run e2e. The index is built from the manifests in the registry's
//! filesystem storage (`publisherRegistry.storage`), so untagged manifests pushed by digest count.
//! Knobs: `PUT /_emulator/referrers {"pageSize": N, "filters": bool}`, `DELETE` resets.

use std::path::Path;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::journal::Note;
use crate::state::Shared;

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The control knobs. `filters`: honour `artifactType` (and say so in `OCI-Filters-Applied`);
/// `pageSize`: at most that many descriptors per answer, the rest behind `Link: rel="next"`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub page_size: Option<usize>,
    pub filters: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { page_size: None, filters: true }
    }
}

#[derive(Default)]
pub struct ReferrersState {
    settings: Mutex<Settings>,
}

impl ReferrersState {
    pub fn get(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set(&self, s: Settings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// The front's router: the control API (every listener serves it; `scripts/stack` waits on
/// each one's `/_emulator/health`), everything else to [`front`], journaled by the middleware.
pub fn router(state: Shared) -> Router {
    crate::front::router(state, front)
}

/// `/v2/<name>/referrers/<digest>` → `(name, digest)`.
pub fn referrers_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v2/")?;
    let (name, digest) = rest.rsplit_once("/referrers/")?;
    (!name.is_empty() && digest.starts_with("sha256:") && !digest.contains('/')).then_some((name, digest))
}

async fn front(State(st): State<Shared>, req: Request) -> Response {
    let Some(backend) = st.config.publisher_registry.as_ref().map(|p| p.login_server.clone()) else {
        return registry_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "no publisherRegistry configured");
    };
    let client = match crate::front::client(&st) {
        Ok(c) => c,
        Err(e) => return registry_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e),
    };
    let path = req.uri().path().to_owned();
    if req.method() == axum::http::Method::GET {
        if let Some((name, digest)) = referrers_path(&path) {
            let (name, digest) = (name.to_owned(), digest.to_owned());
            return referrers(&st, &client, &backend, req, &name, &digest).await;
        }
    }
    crate::front::forward(&client, &backend, req, unreachable).await
}

fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::http::json(status, json!({"errors": [{"code": code, "message": message}]}))
}

/// [`crate::front::forward`]'s answer when the registry cannot be reached.
fn unreachable(status: StatusCode, detail: String) -> Response {
    registry_error(status, "UNAVAILABLE", &format!("publisher registry: {detail}"))
}

/// The caller must be one the registry accepts: its `/v2/` with the caller's Authorization.
async fn authorised(client: &reqwest::Client, backend: &str, headers: &HeaderMap) -> Result<(), Response> {
    let mut probe = client.get(format!("https://{backend}/v2/"));
    if let Some(a) = headers.get(header::AUTHORIZATION) {
        probe = probe.header(header::AUTHORIZATION, a);
    }
    let resp = probe
        .send()
        .await
        .map_err(|e| registry_error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", &format!("publisher registry: {e}")))?;
    if resp.status() == StatusCode::OK {
        return Ok(());
    }
    let mut out = registry_error(resp.status(), "UNAUTHORIZED", "authentication required");
    if let Some(challenge) = resp.headers().get(header::WWW_AUTHENTICATE) {
        out.headers_mut().insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
    Err(out)
}

async fn referrers(
    st: &Shared,
    client: &reqwest::Client,
    backend: &str,
    req: Request,
    name: &str,
    digest: &str,
) -> Response {
    if let Err(denied) = authorised(client, backend, req.headers()).await {
        return denied;
    }
    let Some(storage) = st.config.publisher_registry.as_ref().and_then(|p| p.storage.clone()) else {
        return registry_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "publisherRegistry.storage is not configured",
        );
    };
    let query = crate::http::query_map(req.uri().query());
    let all = match stored_referrers(&storage, name, digest) {
        Ok(d) => d,
        Err(e) => return registry_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e),
    };
    let settings = st.referrers.get();
    let page = select(all, &settings, &query);
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, INDEX)],
        json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": page.descriptors}).to_string(),
    )
        .into_response();
    if page.filtered {
        resp.headers_mut().insert("OCI-Filters-Applied", HeaderValue::from_static("artifactType"));
    }
    let next = page.next.map(|q| format!("</v2/{name}/referrers/{digest}?{q}>; rel=\"next\""));
    if let Some(link) = next.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp.extensions_mut().insert(Note {
        mutating: None,
        detail: Some(json!({
            "descriptors": page.descriptors.len(),
            "filtersApplied": page.filtered,
            "next": next,
        })),
    });
    resp
}

/// Every manifest of `name` in distribution's filesystem layout whose `subject.digest` is
/// `digest`, as descriptors sorted by digest (a stable order for paging).
pub fn stored_referrers(root: &Path, name: &str, digest: &str) -> Result<Vec<Value>, String> {
    let v2 = root.join("docker/registry/v2");
    let revisions = v2.join("repositories").join(name).join("_manifests/revisions/sha256");
    let entries = match std::fs::read_dir(&revisions) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", revisions.display())),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(link) = std::fs::read_to_string(entry.path().join("link")) else { continue };
        let Some(hex) = link.trim().strip_prefix("sha256:") else { continue };
        if hex.len() < 2 {
            continue;
        }
        let data = v2.join("blobs/sha256").join(&hex[..2]).join(hex).join("data");
        let Ok(bytes) = std::fs::read(&data) else { continue };
        if let Some(d) = descriptor(&bytes, &format!("sha256:{hex}"), digest) {
            out.push(d);
        }
    }
    out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    Ok(out)
}

/// The descriptor of manifest `bytes` (digest `own`) when its subject is `subject`.
pub fn descriptor(bytes: &[u8], own: &str, subject: &str) -> Option<Value> {
    let m: Value = serde_json::from_slice(bytes).ok()?;
    if m["subject"]["digest"].as_str() != Some(subject) {
        return None;
    }
    let media_type = m["mediaType"].as_str().unwrap_or(MANIFEST);
    let artifact_type = m["artifactType"].as_str().or_else(|| m["config"]["mediaType"].as_str());
    let mut d = json!({"mediaType": media_type, "digest": own, "size": bytes.len()});
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    if let Some(a) = m.get("annotations").filter(|a| a.is_object()) {
        d["annotations"] = a.clone();
    }
    Some(d)
}

#[derive(Debug, PartialEq)]
pub struct Page {
    pub descriptors: Vec<Value>,
    pub filtered: bool,
    /// The next page's query string.
    pub next: Option<String>,
}

/// Filtering (when the knob allows it and the client asked) and paging (`n` from the client or
/// the knob, whichever is smaller; `last` = the last digest of the previous page).
pub fn select(all: Vec<Value>, settings: &Settings, query: &std::collections::HashMap<String, String>) -> Page {
    let artifact_type = query.get("artifactType").filter(|t| !t.is_empty());
    let filtered = settings.filters && artifact_type.is_some();
    let mut rest: Vec<Value> = all
        .into_iter()
        .filter(|d| !filtered || d["artifactType"].as_str() == artifact_type.map(String::as_str))
        .collect();
    if let Some(last) = query.get("last") {
        rest.retain(|d| d["digest"].as_str().is_some_and(|x| x > last.as_str()));
    }
    let asked = query.get("n").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0);
    let size = match (asked, settings.page_size.filter(|n| *n > 0)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut next = None;
    if let Some(size) = size.filter(|s| rest.len() > *s) {
        rest.truncate(size);
        let last = rest.last().and_then(|d| d["digest"].as_str()).unwrap_or_default();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = artifact_type {
            q.append_pair("artifactType", t);
        }
        q.append_pair("n", &size.to_string()).append_pair("last", last);
        next = Some(q.finish());
    }
    Page { descriptors: rest, filtered, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SUBJECT: &str = "sha256:aaaa";

    fn sig(artifact: Option<&str>, config: &str) -> Vec<u8> {
        let mut m = json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": config, "digest": "sha256:c", "size": 2},
            "layers": [], "subject": {"mediaType": MANIFEST, "digest": SUBJECT, "size": 1},
            "annotations": {"k": "v"},
        });
        if let Some(a) = artifact {
            m["artifactType"] = json!(a);
        }
        serde_json::to_vec(&m).unwrap()
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn descriptors_take_the_artifact_type_else_the_config_media_type() {
        let bytes = sig(Some("application/vnd.cncf.notary.signature"), "application/vnd.oci.empty.v1+json");
        let d = descriptor(&bytes, "sha256:01", SUBJECT).unwrap();
        assert_eq!(d["artifactType"], "application/vnd.cncf.notary.signature");
        assert_eq!(d["size"], bytes.len());
        assert_eq!(d["annotations"]["k"], "v");
        assert_eq!(d["mediaType"], MANIFEST);
        let d = descriptor(&sig(None, "application/x.cfg"), "sha256:02", SUBJECT).unwrap();
        assert_eq!(d["artifactType"], "application/x.cfg");
        assert_eq!(descriptor(&sig(None, "x"), "sha256:03", "sha256:other"), None);
        assert_eq!(descriptor(b"not json", "sha256:04", SUBJECT), None);
    }

    #[test]
    fn stored_manifests_are_read_from_distributions_layout() {
        let root = std::env::temp_dir().join(format!("referrers-test-{}", std::process::id()));
        let v2 = root.join("docker/registry/v2");
        for (hex, bytes) in [("ab12", sig(Some("t"), "c")), ("cd34", b"{}".to_vec())] {
            let rev = v2.join("repositories/org/app/_manifests/revisions/sha256").join(hex);
            std::fs::create_dir_all(&rev).unwrap();
            std::fs::write(rev.join("link"), format!("sha256:{hex}")).unwrap();
            let blob = v2.join("blobs/sha256").join(&hex[..2]).join(hex);
            std::fs::create_dir_all(&blob).unwrap();
            std::fs::write(blob.join("data"), bytes).unwrap();
        }
        let found = stored_referrers(&root, "org/app", SUBJECT).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["digest"], "sha256:ab12");
        assert!(stored_referrers(&root, "org/none", SUBJECT).unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn three() -> Vec<Value> {
        ["sha256:01", "sha256:02", "sha256:03"]
            .iter()
            .zip(["a", "b", "a"])
            .map(|(d, t)| json!({"digest": d, "artifactType": t}))
            .collect()
    }

    #[test]
    fn filters_apply_only_when_the_knob_allows_and_the_client_asks() {
        let on = Settings::default();
        let p = select(three(), &on, &q(&[("artifactType", "a")]));
        assert!(p.filtered);
        assert_eq!(p.descriptors.len(), 2);
        let p = select(three(), &on, &q(&[]));
        assert!(!p.filtered);
        assert_eq!(p.descriptors.len(), 3);
        let off = Settings { filters: false, ..Settings::default() };
        let p = select(three(), &off, &q(&[("artifactType", "a")]));
        assert!(!p.filtered);
        assert_eq!(p.descriptors.len(), 3);
    }

    #[test]
    fn pages_follow_last_and_name_the_next_page() {
        let s = Settings { page_size: Some(2), filters: false };
        let p = select(three(), &s, &q(&[("artifactType", "a")]));
        assert_eq!(p.descriptors.len(), 2);
        assert_eq!(p.next.as_deref(), Some("artifactType=a&n=2&last=sha256%3A02"));
        let p = select(three(), &s, &q(&[("n", "2"), ("last", "sha256:02")]));
        assert_eq!(p.descriptors, vec![json!({"digest": "sha256:03", "artifactType": "a"})]);
        assert_eq!(p.next, None);
        let p = select(three(), &Settings::default(), &q(&[("n", "1")]));
        assert_eq!(p.descriptors.len(), 1);
        assert!(p.next.is_some());
    }
}
