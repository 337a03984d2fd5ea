//! Small response and request helpers shared by every emulated service.

use std::collections::HashMap;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A JSON response with the given status.
pub fn json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// ARM's error body (common-types v5 `ErrorResponse`).
pub fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(status, json!({"error": {"code": code, "message": message.into()}}))
}

/// Key Vault's error body: `{"error":{"code","message","innererror"}}` plus `x-ms-error-code`.
pub fn kv_error(status: StatusCode, code: &str, message: impl Into<String>, inner: Option<&str>) -> Response {
    let mut error = json!({"code": code, "message": message.into()});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    let mut resp = json(status, json!({"error": error}));
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-ms-error-code", v);
    }
    resp
}

/// The docker-registry style error body the ACR token endpoints use.
pub fn acr_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"errors": [{"code": code, "message": message}]}))
}

/// `https://<host:port>` as the client addressed us, so ids and `nextLink`s point back at the
/// listener the client used (as the real services do with their own host names).
pub fn origin(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    format!("https://{host}")
}

/// Query parameters, the last value winning. (Azure SDKs may re-append `api-version` to a
/// `nextLink` that already carries one; last-wins matches what the services do.)
pub fn query_map(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect()
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
