//! Azure AI Search data plane, index definitions only (`specs/ai-search-foundry.md` §2, §8):
//! create or update (PUT, with `If-Match` / `If-None-Match` and `allowIndexDowntime`), create
//! (POST), get, list (`$select`), delete and statistics, at both path spellings
//! (`/indexes('docs')`, what the SDKs send, and `/indexes/docs`, what the docs write).
//!
//! One service, the inventory's (`srch-<base>`), behind the `search` listener (P+12). Auth is
//! the configured admin `api-key` or a bearer token for `https://search.azure.com`; every
//! request is checked in the service's order: auth → api-version → route → the operation.

pub mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::check_aad;
use crate::config::Config;
use crate::http::{bearer, origin, query_map};
use crate::state::Shared;
use index::Refusal;

/// 2024-07-01 and 2025-09-01 are the stable versions of the specs; 2026-04-01 is
/// `azure-search-documents` 12.0.0's default.
pub const API_VERSIONS: &[&str] = &["2026-04-01", "2025-09-01", "2024-07-01"];

/// `emulator.json` → `search`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchConfig {
    /// The service's primary admin key (`api-key`); without one only bearer tokens work.
    pub admin_key: Option<String>,
}

/// The service's URL in ARM (`properties.endpoint`): the search listener when bound, else
/// the Azure host name.
pub fn endpoint(cfg: &Config, service: &str) -> String {
    match cfg.listen.port(crate::listeners::SEARCH.name) {
        Some(port) => format!("https://127.0.0.1:{port}"),
        None => format!("https://{service}.search.windows.net"),
    }
}

struct Stored {
    index: Value,
    /// With its quotes, as `ETag` and `@odata.etag` carry it.
    etag: String,
}

#[derive(Default)]
pub struct SearchData {
    indexes: BTreeMap<String, Stored>,
    last_tick: u64,
}

impl SearchData {
    /// A new ETag: `"0x<.NET DateTime ticks>"` (`"0x8DE..."`) like the service's, strictly
    /// increasing.
    fn next_etag(&mut self) -> String {
        let ticks = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64 / 100)
            + 621_355_968_000_000_000;
        self.last_tick = ticks.max(self.last_tick + 1);
        format!("\"0x{:X}\"", self.last_tick)
    }

    /// `[{"name", "etag", "fields"}]` for `GET /_emulator/ai`.
    pub fn view(&self) -> Value {
        json!(self
            .indexes
            .iter()
            .map(|(name, s)| json!({"name": name, "etag": s.etag, "fields": s.index["fields"].as_array().map_or(0, Vec::len)}))
            .collect::<Vec<_>>())
    }

    pub fn clear(&mut self) {
        self.indexes.clear();
    }
}

#[derive(Default)]
pub struct SearchState {
    inner: Mutex<SearchData>,
}

impl SearchState {
    pub fn lock(&self) -> MutexGuard<'_, SearchData> {
        self.inner.lock().unwrap()
    }
}

/// Whether a path belongs to the Search data plane (the router's fallback asks).
pub fn serves(path: &str) -> bool {
    crate::providers::segments(path).first().is_some_and(|s| s == "indexes")
}

/// The service's error body, with the headers every Search answer carries.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>, detail: Option<(&str, String)>) -> Response {
    let mut err = json!({"code": code, "message": message.into()});
    if let Some((code, message)) = detail {
        err["details"] = json!([{"code": code, "message": message}]);
    }
    answer(status, Some(json!({"error": err})))
}

fn refused(r: Refusal) -> Response {
    error(StatusCode::BAD_REQUEST, r.code, r.message, r.detail)
}

fn answer(status: StatusCode, body: Option<Value>) -> Response {
    let has_body = body.is_some();
    let mut resp = match body {
        Some(b) => (status, b.to_string()).into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    if has_body {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; odata.metadata=minimal; odata.streaming=true"),
        );
    }
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert("elapsed-time", HeaderValue::from_static("3"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("request-id", id);
    }
    resp
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn service_name(cfg: &Config) -> String {
    crate::arm::inventory::Names::new(cfg).search
}

/// `api-key` (the admin key) or a bearer token for the Search audience. A wrong key is 403,
/// as the service answers it; no credential or a bad token is 401 with a bearer challenge.
fn authenticate(st: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    if let Some(key) = headers.get("api-key") {
        let good = st.config.search.admin_key.as_deref().is_some_and(|k| key.as_bytes() == k.as_bytes());
        return if good {
            Ok(())
        } else {
            Err(error(
                StatusCode::FORBIDDEN,
                "",
                "Authorization failed: the api-key is not valid for this service.",
                None,
            ))
        };
    }
    let Err(failure) = check_aad(st, bearer(headers), crate::listeners::SEARCH.audiences) else {
        return Ok(());
    };
    let message = format!("Authentication failed: {}.", failure.describe("https://search.azure.com"));
    let mut resp = error(StatusCode::UNAUTHORIZED, "", message, None);
    let challenge = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/{}/oauth2/authorize\", resource=\"https://search.azure.com\"",
        st.config.tenant_id
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Err(resp)
}

struct Req {
    method: Method,
    segs: Vec<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    origin: String,
    body: Bytes,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

/// Every Search request (the router's fallback hands them over).
pub async fn handle(State(st): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return error(StatusCode::BAD_REQUEST, "", "The request body could not be read.", None);
    };
    if let Err(r) = authenticate(&st, &parts.headers) {
        return r;
    }
    let query = query_map(parts.uri.query());
    if !query.get("api-version").is_some_and(|v| API_VERSIONS.contains(&v.as_str())) {
        return error(StatusCode::BAD_REQUEST, "", "Invalid or missing api-version query string parameter.", None);
    }
    let req = Req {
        method: parts.method.clone(),
        segs: crate::providers::segments(parts.uri.path()),
        query,
        origin: origin(&parts.headers, &parts.uri),
        headers: parts.headers,
        body,
    };
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["indexes"]) => list(&st, &req),
        (&Method::POST, ["indexes"]) => create(&st, &req),
        (&Method::GET, ["indexes", name]) => get(&st, &req, name),
        (&Method::PUT, ["indexes", name]) => put(&st, &req, name),
        (&Method::DELETE, ["indexes", name]) => delete(&st, &req, name),
        (&Method::GET, ["indexes", name, "search.stats"]) => stats(&st, &req, name),
        (_, ["indexes"] | ["indexes", _] | ["indexes", _, "search.stats"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "",
            format!("The HTTP verb '{}' is not allowed here.", req.method),
            None,
        ),
        _ => error(StatusCode::NOT_FOUND, "", format!("Resource '{}' was not found.", req.segs.join("/")), None),
    }
}

fn not_found(cfg: &Config, name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "",
        format!("The index '{name}' for service '{}' was not found.", service_name(cfg)),
        None,
    )
}

/// The service's 412 text (Azure/azure-sdk-for-net#28054).
fn precondition_failed() -> Response {
    error(
        StatusCode::PRECONDITION_FAILED,
        "",
        "The precondition given in one of the request headers evaluated to false. No change was made to the resource \
         from this request.",
        None,
    )
}

/// The index as a GET shows it: the annotations first, then the definition.
fn representation(req: &Req, s: &Stored) -> Value {
    let mut v = json!({
        "@odata.context": format!("{}/$metadata#indexes/$entity", req.origin),
        "@odata.etag": s.etag,
    });
    if let (Some(out), Some(def)) = (v.as_object_mut(), s.index.as_object()) {
        out.extend(def.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    v
}

fn get(st: &Shared, req: &Req, name: &str) -> Response {
    let data = st.search.lock();
    match data.indexes.get(name) {
        Some(s) => with_etag(answer(StatusCode::OK, Some(representation(req, s))), &s.etag),
        None => not_found(&st.config, name),
    }
}

fn list(st: &Shared, req: &Req) -> Response {
    let data = st.search.lock();
    let select: Option<Vec<String>> = req
        .query
        .get("$select")
        .filter(|s| s.trim() != "*")
        .map(|s| s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect());
    let items: Vec<Value> = data
        .indexes
        .values()
        .map(|s| {
            let mut full = representation(req, s);
            if let Some(obj) = full.as_object_mut() {
                obj.remove("@odata.context");
            }
            match &select {
                Some(props) => {
                    json!(props
                        .iter()
                        .filter_map(|p| full.get(p).map(|v| (p.clone(), v.clone())))
                        .collect::<serde_json::Map<_, _>>())
                }
                None => full,
            }
        })
        .collect();
    let context = match &select {
        Some(props) => format!("{}/$metadata#indexes({})", req.origin, props.join(",")),
        None => format!("{}/$metadata#indexes", req.origin),
    };
    answer(StatusCode::OK, Some(json!({"@odata.context": context, "value": items})))
}

fn parse_body(req: &Req) -> Result<Value, Response> {
    serde_json::from_slice(&req.body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "", format!("The request is invalid. Details: index : {e}"), None))
}

/// `Prefer: return=minimal` asks for no body; the SDKs always send `return=representation`.
fn minimal(req: &Req) -> bool {
    req.header("prefer").is_some_and(|p| p.split(',').any(|x| x.trim().eq_ignore_ascii_case("return=minimal")))
}

fn create(st: &Shared, req: &Req) -> Response {
    let raw = match parse_body(req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = raw.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let index = match index::normalize(&raw, &name) {
        Ok(i) => i,
        Err(r) => return refused(r),
    };
    let mut data = st.search.lock();
    if data.indexes.contains_key(&name) {
        return error(
            StatusCode::CONFLICT,
            "ResourceNameAlreadyInUse",
            format!("Cannot create index '{name}' because it already exists."),
            None,
        );
    }
    let etag = data.next_etag();
    let stored = Stored { index, etag: etag.clone() };
    let body = representation(req, &stored);
    data.indexes.insert(name, stored);
    with_etag(answer(StatusCode::CREATED, Some(body)), &etag)
}

fn put(st: &Shared, req: &Req, name: &str) -> Response {
    let raw = match parse_body(req) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let index = match index::normalize(&raw, name) {
        Ok(i) => i,
        Err(r) => return refused(r),
    };
    let allow_downtime = req.query.get("allowIndexDowntime").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut data = st.search.lock();
    let current = data.indexes.get(name);
    if let Some(want) = req.header("if-match") {
        if !current.is_some_and(|c| want == "*" || want == c.etag) {
            return precondition_failed();
        }
    }
    if let Some(unwanted) = req.header("if-none-match") {
        if current.is_some_and(|c| unwanted == "*" || unwanted == c.etag) {
            return precondition_failed();
        }
    }
    if let Some(c) = current {
        if let Some(r) = index::refuse_update(&c.index, &index, allow_downtime) {
            return refused(r);
        }
    }
    let created = current.is_none();
    let etag = data.next_etag();
    let stored = Stored { index, etag: etag.clone() };
    let body = representation(req, &stored);
    data.indexes.insert(name.to_owned(), stored);
    let resp = match (created, minimal(req) || (!created && req.header("prefer").is_none())) {
        (_, true) => answer(StatusCode::NO_CONTENT, None),
        (true, false) => answer(StatusCode::CREATED, Some(body)),
        (false, false) => answer(StatusCode::OK, Some(body)),
    };
    with_etag(resp, &etag)
}

fn delete(st: &Shared, req: &Req, name: &str) -> Response {
    let mut data = st.search.lock();
    let Some(current) = data.indexes.get(name) else {
        return not_found(&st.config, name);
    };
    if req.header("if-match").is_some_and(|want| want != "*" && want != current.etag) {
        return precondition_failed();
    }
    data.indexes.remove(name);
    answer(StatusCode::NO_CONTENT, None)
}

fn stats(st: &Shared, req: &Req, name: &str) -> Response {
    if !st.search.lock().indexes.contains_key(name) {
        return not_found(&st.config, name);
    }
    answer(
        StatusCode::OK,
        Some(json!({
            "@odata.context": format!("{}/$metadata#Microsoft.Azure.Search.V2019_05_06.IndexStatistics", req.origin),
            "documentCount": 0,
            "storageSize": 0,
            "vectorIndexSize": 0,
        })),
    )
}

/// A fault's answer in the service's error shape (`faults.rs` asks for `search.*` apis).
pub fn fault_body(status: StatusCode, message: &str) -> Response {
    error(status, "", message, None)
}
