//! The two ways the Functions host talks to a custom handler (runtime-contracts §2.2–2.4), turned
//! into one [`HttpRequest`] and back. Pure: no I/O, unit-tested against the reference's payloads.
//!
//! * The invocation envelope: `POST /<FunctionName>` with `{"Data": {"<binding>": value},
//!   "Metadata": {...}}`; the handler answers `{"Outputs": {"res": {"statusCode": "202", "body",
//!   "headers"}}, "Logs": [...], "ReturnValue": ...}` with `statusCode` as a string.
//! * Proxied HTTP (`enableProxyingHttpRequest`): the caller's request as sent, on `/api/...`.
//!
//! A trigger value may arrive as a JSON object or as a JSON-encoded string (queue items do, in
//! the reference's example); both are accepted everywhere a value is read.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Largest HTTP body a caller may send (the handler needs none: configuration is app settings).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest invocation envelope the host may send (the body plus headers and metadata).
pub const MAX_ENVELOPE: usize = 1024 * 1024;

/// An HTTP call to one function, whichever way it arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// The route's parameters after the function's name: `phase/{name}/{action?}` gives
    /// `[name]` or `[name, action]`.
    pub params: Vec<String>,
    pub query: BTreeMap<String, String>,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(status: u16, v: &Value) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_string(v).expect("json"),
        }
    }

    /// A 4xx/5xx with `{"error": {"code", "message"}}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
        HttpResponse::json(status, &json!({"error": {"code": code, "message": message.into()}}))
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// What an envelope carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Http(HttpRequest),
    /// A timer firing; the value (`Schedule`, `ScheduleStatus`, `IsPastDue`) is informational.
    Timer(Value),
}

/// Why an envelope cannot be read. Each is the host's (or a forger's) fault, answered 400.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    /// The body is not a JSON object.
    #[error("the invocation is not a JSON object: {0}")]
    NotJson(String),
    /// `Data` is missing or holds no trigger binding.
    #[error("the invocation has no Data.{0} trigger value")]
    NoTrigger(&'static str),
    /// The trigger value is neither a JSON object nor a JSON-encoded object.
    #[error("Data.{binding} is neither a JSON object nor a JSON-encoded object: {reason}")]
    BadTrigger { binding: &'static str, reason: String },
}

/// A value that is a JSON object, or a string holding one.
fn object(v: &Value) -> Result<serde_json::Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(format!("the string holds {}", kind(&other))),
            Err(e) => Err(e.to_string()),
        },
        other => Err(format!("it is {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads the envelope of `function` (`phase`, `status` or `health`).
pub fn parse(function: &str, body: &[u8]) -> Result<Invocation, EnvelopeError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let Value::Object(top) = v else { return Err(EnvelopeError::NotJson(format!("it is {}", kind(&v)))) };
    let data = top.get("Data").and_then(|d| object(d).ok()).unwrap_or_default();
    if function == "health" {
        let raw = data.get("timer").ok_or(EnvelopeError::NoTrigger("timer"))?;
        let timer = object(raw).map_err(|reason| EnvelopeError::BadTrigger { binding: "timer", reason })?;
        return Ok(Invocation::Timer(Value::Object(timer)));
    }
    let raw = data.get("req").ok_or(EnvelopeError::NoTrigger("req"))?;
    let req = object(raw).map_err(|reason| EnvelopeError::BadTrigger { binding: "req", reason })?;
    let bad = |reason: String| EnvelopeError::BadTrigger { binding: "req", reason };
    let method = text(req.get("Method")).unwrap_or_default().to_ascii_uppercase();
    let url = text(req.get("Url")).unwrap_or_default();
    let params = match req.get("Params") {
        Some(p) if !p.is_null() => object(p).map_err(|r| bad(format!("Params: {r}")))?,
        _ => Default::default(),
    };
    let route = route_params(function, &params, &url);
    let query = match req.get("Query") {
        Some(q) if !q.is_null() => object(q)
            .map_err(|r| bad(format!("Query: {r}")))?
            .into_iter()
            .filter_map(|(k, v)| text(Some(&v)).map(|v| (k, v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut headers = BTreeMap::new();
    if let Some(h) = req.get("Headers").filter(|h| !h.is_null()) {
        for (k, v) in object(h).map_err(|r| bad(format!("Headers: {r}")))? {
            // {name: [values]}; a plain string is accepted too.
            let value = match v {
                Value::Array(vs) => vs.iter().filter_map(|x| text(Some(x))).collect::<Vec<_>>().join(", "),
                other => text(Some(&other)).unwrap_or_default(),
            };
            headers.insert(k.to_ascii_lowercase(), value);
        }
    }
    let body = text(req.get("Body")).unwrap_or_default().into_bytes();
    Ok(Invocation::Http(HttpRequest { method, params: route, query, headers, body }))
}

/// The route parameters in order: from `Params` when the host filled it, else from the URL
/// (`.../api/phase/artifacts/plan`), so both spellings the hosts use work.
fn route_params(function: &str, params: &serde_json::Map<String, Value>, url: &str) -> Vec<String> {
    let named: Vec<String> =
        ["name", "action"].iter().filter_map(|k| text(params.get(*k))).filter(|s| !s.is_empty()).collect();
    if !named.is_empty() {
        return named;
    }
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after = path.split_once("/api/").map(|(_, rest)| rest).unwrap_or("");
    let mut segs = after.split('/').filter(|s| !s.is_empty());
    match segs.next() {
        Some(f) if f.eq_ignore_ascii_case(function) => segs.map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The invocation response for an HTTP function: the `res` output binding.
pub fn http_result(res: &HttpResponse, logs: &[String]) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert("Content-Type".into(), Value::String(res.content_type.into()));
    for (k, v) in &res.headers {
        headers.insert(k.clone(), Value::String(v.clone()));
    }
    json!({
        "Outputs": {"res": {"statusCode": res.status.to_string(), "body": res.body, "headers": headers}},
        "Logs": logs,
        "ReturnValue": Value::Null,
    })
}

/// The invocation response for the timer: no output bindings; the outcome in the logs and the
/// return value.
pub fn timer_result(outcome: &Value, logs: &[String]) -> Value {
    json!({"Outputs": {}, "Logs": logs, "ReturnValue": outcome})
}

/// A proxied request's path, `/api/<function>/<params...>`: the function and its parameters.
pub fn proxied_route(path: &str) -> Option<(String, Vec<String>)> {
    let rest = path.strip_prefix("/api/")?;
    let mut segs = rest.split('/').filter(|s| !s.is_empty()).map(str::to_owned);
    let function = segs.next()?.to_ascii_lowercase();
    Some((function, segs.collect()))
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
