//! The Microsoft Foundry project data plane (`specs/ai-search-foundry.md` §3, §8): named,
//! versioned agents (`agents.rs`, hosted images checked in `hosted.rs`) and project index
//! assets (`assets.rs`), under `/api/projects/{project}` on the `foundry` listener (P+13).
//!
//! Every request is checked in this order: bearer token for `https://ai.azure.com` (the only
//! credential the project API takes) → `api-version=v1` → the project → the operation. Errors
//! use the API's OpenAI-style shape (`error()`).

mod agents;
mod assets;
mod hosted;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arm::inventory::Names;
use crate::auth::check_aad;
use crate::config::Config;
use crate::http::{bearer, query_map};
use crate::state::Shared;

pub use agents::Agent;
pub use assets::Asset;

/// The project API names no date: `api-version=v1`, literally (what `azure-ai-projects` 2.x sends).
pub const API_VERSION: &str = "v1";

/// `emulator.json` → `foundry`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FoundryConfig {
    /// How long a new hosted version provisions (answers `creating`) before it can turn
    /// `active`, in milliseconds: Azure provisions in time ("typically < 1 min"), however
    /// often it is polled. A simulated latency (`GET /_emulator/latency`, `hostedAgent`).
    pub hosted_ms: u64,
    /// Observations (GETs of the version or its agent, lists) a new hosted version answers
    /// `creating` besides: a test knob that shows the intermediate state deterministically.
    /// `PUT /_emulator/ai` changes both at run time.
    pub hosted_polls: u32,
}

impl Default for FoundryConfig {
    fn default() -> Self {
        FoundryConfig { hosted_ms: 1000, hosted_polls: 0 }
    }
}

/// The account's `endpoints["AI Foundry API"]`: the foundry listener when bound.
pub fn account_endpoint(cfg: &Config, account: &str) -> String {
    match cfg.listen.port(crate::listeners::FOUNDRY.name) {
        Some(port) => format!("https://127.0.0.1:{port}/"),
        None => format!("https://{account}.services.ai.azure.com/"),
    }
}

/// A project's endpoint (its `endpoints["AI Foundry API"]`), what `AIProjectClient` takes.
pub fn project_endpoint(cfg: &Config, account: &str, project: &str) -> String {
    format!("{}api/projects/{project}", account_endpoint(cfg, account))
}

/// One armed hosted-version failure (`POST /_emulator/ai/fail-hosted`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailHosted {
    /// An agent name, or `*`.
    pub agent: String,
    /// How many new hosted versions of matching agents fail (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// `error.code` of the failed version (default `image_pull_failed`).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

pub struct Project {
    pub name: String,
    /// In creation order.
    pub agents: Vec<Agent>,
    pub assets: Vec<Asset>,
}

pub struct FoundryData {
    /// Lowercased name → project.
    pub projects: BTreeMap<String, Project>,
    pub hosted_ms: u64,
    pub hosted_polls: u32,
    pub fail_hosted: Vec<FailHosted>,
    /// Orders objects created within the same second.
    seq: u64,
}

impl FoundryData {
    fn new(cfg: &Config) -> FoundryData {
        let name = Names::new(cfg).foundry_project;
        let mut projects = BTreeMap::new();
        projects.insert(name.to_ascii_lowercase(), Project { name, agents: Vec::new(), assets: Vec::new() });
        FoundryData {
            projects,
            hosted_ms: cfg.foundry.hosted_ms,
            hosted_polls: cfg.foundry.hosted_polls,
            fail_hosted: Vec::new(),
            seq: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Takes one armed failure for a new hosted version of `agent`, if any matches.
    fn take_failure(&mut self, agent: &str) -> Option<(String, String)> {
        let i = self.fail_hosted.iter().position(|f| f.agent == "*" || f.agent == agent)?;
        let f = &mut self.fail_hosted[i];
        let taken =
            (f.code.clone().unwrap_or_else(|| "image_pull_failed".to_owned()), f.message.clone().unwrap_or_default());
        let left = f.count.unwrap_or(1).saturating_sub(1);
        if left == 0 {
            self.fail_hosted.remove(i);
        } else {
            f.count = Some(left);
        }
        Some(taken)
    }

    /// `GET /_emulator/ai`'s Foundry part: every project's agents (versions and statuses) and
    /// index assets, without observing (so reading it does not advance hosted versions).
    pub fn view(&self) -> Value {
        json!({
            "hostedMs": self.hosted_ms,
            "hostedPolls": self.hosted_polls,
            "failHosted": self.fail_hosted,
            "projects": self.projects.values().map(|p| json!({
                "name": p.name,
                "agents": p.agents.iter().map(Agent::summary).collect::<Vec<_>>(),
                "indexes": p.assets.iter().map(|a| json!({"name": a.name, "version": a.version})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// Forgets every agent and asset, disarms failures, and restores the knobs.
    pub fn reset(&mut self, cfg: &Config) {
        *self = FoundryData::new(cfg);
    }
}

pub struct FoundryState {
    inner: Mutex<FoundryData>,
}

impl FoundryState {
    pub fn new(cfg: &Config) -> FoundryState {
        FoundryState { inner: Mutex::new(FoundryData::new(cfg)) }
    }

    pub fn lock(&self) -> MutexGuard<'_, FoundryData> {
        self.inner.lock().unwrap()
    }
}

pub fn routes() -> Router<Shared> {
    let p = "/api/projects/{project}";
    Router::new()
        .route(&format!("{p}/agents"), get(agents::list).post(agents::create))
        .route(&format!("{p}/agents/{{agent}}"), get(agents::get).delete(agents::delete))
        .route(&format!("{p}/agents/{{agent}}/versions"), get(agents::list_versions).post(agents::create_version))
        .route(
            &format!("{p}/agents/{{agent}}/versions/{{version}}"),
            get(agents::get_version).delete(agents::delete_version),
        )
        .route(&format!("{p}/indexes"), get(assets::list))
        .route(&format!("{p}/indexes/{{name}}/versions"), get(assets::list_versions))
        .route(
            &format!("{p}/indexes/{{name}}/versions/{{version}}"),
            get(assets::get).patch(assets::create_or_update).delete(assets::delete),
        )
}

/// The API's error body: `{"error": {"code", "message", "param", "type", "details", "additionalInfo"}}`.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>, param: Option<&str>) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message.into(),
        "param": param,
        "type": "invalid_request_error",
        "details": [],
        "additionalInfo": {"request_id": uuid::Uuid::new_v4().simple().to_string()},
    }});
    crate::http::json(status, body)
}

/// A request that passed the token, api-version and project checks: handlers take it as an
/// argument, so none can skip them. Holds the project's key in [`FoundryData::projects`].
pub struct Admitted {
    pub project: String,
    pub headers: HeaderMap,
    pub query: std::collections::HashMap<String, String>,
}

impl FromRequestParts<Shared> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, Response> {
        authenticate(st, &parts.headers)?;
        let query = query_map(parts.uri.query());
        match query.get("api-version").map(String::as_str) {
            Some(API_VERSION) => {}
            Some(v) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_api_version",
                    format!("The api-version '{v}' is not supported. Use api-version={API_VERSION}."),
                    Some("api-version"),
                ))
            }
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "missing_api_version",
                    format!("The api-version query parameter is required (api-version={API_VERSION})."),
                    Some("api-version"),
                ))
            }
        }
        let segs = crate::providers::segments(parts.uri.path());
        let project = segs.get(2).cloned().unwrap_or_default();
        if !st.foundry.lock().projects.contains_key(&project.to_ascii_lowercase()) {
            return Err(error(
                StatusCode::NOT_FOUND,
                "project_not_found",
                format!("Project '{project}' was not found in account '{}'.", Names::new(&st.config).foundry),
                None,
            ));
        }
        Ok(Admitted { project: project.to_ascii_lowercase(), headers: parts.headers.clone(), query })
    }
}

fn authenticate(st: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let Err(failure) = check_aad(st, bearer(headers), crate::listeners::FOUNDRY.audiences) else {
        return Ok(());
    };
    let message = format!("Access denied: {}.", failure.describe("https://ai.azure.com"));
    let mut resp = error(StatusCode::UNAUTHORIZED, "unauthorized", message, None);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(resp)
}

/// Foundry's answer to a principal without the data action (an rbac fault, or the grant
/// table): 401 `PermissionDenied` naming the principal, the data action and the operation's
/// route. The status and text are the service's as quoted in the field (azure-sdk-for-python
/// #44842, microsoft/ai-agent-evals#43: "Status: 401 (PermissionDenied)").
pub fn rbac_denied(cfg: &Config, api: &str, method: &str, path: &str) -> Response {
    let object = if api == "foundry.indexes" { "indexes" } else { "agents" };
    let verb = match method {
        "GET" | "HEAD" => "read",
        "DELETE" => "delete",
        _ => "write",
    };
    let template = templated(path);
    error(
        StatusCode::UNAUTHORIZED,
        "PermissionDenied",
        format!(
            "The principal `{}` lacks the required data action `Microsoft.CognitiveServices/accounts/AIServices/{object}/{verb}` to perform `{method} {template}` operation. For instructions on granting the necessary permissions, see https://aka.ms/FoundryPermissions.",
            cfg.identity.principal_id
        ),
        None,
    )
}

/// `/api/projects/p/agents/a/versions/1` → `/api/projects/{projectName}/agents/{agentName}/versions/{version}`.
fn templated(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = String::new();
    for (i, s) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let part = match prev {
            "projects" => "{projectName}",
            "agents" => "{agentName}",
            "indexes" => "{name}",
            "versions" => "{version}",
            _ => s,
        };
        out.push('/');
        out.push_str(part);
    }
    out
}

/// A 429 or 5xx fault's answer in the API's shape.
pub fn fault_body(status: StatusCode, code: &str, message: &str) -> Response {
    error(status, code, message, None).into_response()
}

/// `Foundry-Features: A=V1Preview,B=V1Preview` holds `feature` (case-insensitively)?
fn has_feature(headers: &HeaderMap, feature: &str) -> bool {
    headers
        .get_all("foundry-features")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|f| f.trim().eq_ignore_ascii_case(feature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_text_names_the_data_action_and_the_route() {
        assert_eq!(
            templated("/api/projects/proj-x/agents/triage/versions/2"),
            "/api/projects/{projectName}/agents/{agentName}/versions/{version}"
        );
        assert_eq!(
            templated("/api/projects/p/indexes/docs/versions/1"),
            "/api/projects/{projectName}/indexes/{name}/versions/{version}"
        );
    }

    #[test]
    fn feature_headers_are_comma_lists() {
        let mut h = HeaderMap::new();
        h.insert("foundry-features", HeaderValue::from_static("WorkflowAgents=V1Preview, externalagents=v1preview"));
        assert!(has_feature(&h, "ExternalAgents=V1Preview"));
        assert!(!has_feature(&h, "VoiceAgents=V1Preview"));
    }
}
