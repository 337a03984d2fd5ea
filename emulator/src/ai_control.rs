//! The control API of the AI data planes (`/_emulator/ai`, never journaled or faulted), and
//! the answers of faults armed on their apis (`search.indexes`, `foundry.agents`,
//! `foundry.indexes`) in each service's own error shape.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::arm::inventory::{resource_id, Names};
use crate::config::Config;
use crate::faults::Action;
use crate::foundry::FailHosted;
use crate::http::json;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/_emulator/ai", get(view).put(settings).delete(reset))
        .route("/_emulator/ai/fail-hosted", post(arm_fail_hosted).get(fail_hosted).delete(clear_fail_hosted))
}

fn summary(st: &Shared) -> Value {
    let n = Names::new(&st.config);
    json!({
        "search": {
            "service": n.search,
            "endpoint": crate::search::endpoint(&st.config, &n.search),
            "indexes": st.search.lock().view(),
        },
        "foundry": {
            "account": n.foundry,
            "projectEndpoint": crate::foundry::project_endpoint(&st.config, &n.foundry, &n.foundry_project),
            "connections": crate::arm::projects::connection_names(&st.config),
            "state": st.foundry.lock().view(),
        },
    })
}

/// Indexes (with ETags), agents (versions and statuses), index assets and the knobs. Reading
/// it does not count as an observation of a hosted version.
async fn view(State(st): State<Shared>) -> Json<Value> {
    Json(summary(&st))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    /// How long a hosted version created from now on provisions, in milliseconds.
    hosted_ms: Option<u64>,
    /// Observations a hosted version created from now on answers `creating` besides.
    hosted_polls: Option<u32>,
}

async fn settings(State(st): State<Shared>, Json(s): Json<Settings>) -> Json<Value> {
    let mut foundry = st.foundry.lock();
    if let Some(ms) = s.hosted_ms {
        foundry.hosted_ms = ms;
    }
    if let Some(polls) = s.hosted_polls {
        foundry.hosted_polls = polls;
    }
    drop(foundry);
    Json(summary(&st))
}

/// Forgets every index, agent and asset, disarms hosted failures and restores the knobs.
async fn reset(State(st): State<Shared>) -> StatusCode {
    st.search.lock().clear();
    st.foundry.lock().reset(&st.config);
    StatusCode::NO_CONTENT
}

async fn fail_hosted(State(st): State<Shared>) -> Json<Value> {
    Json(json!(st.foundry.lock().fail_hosted))
}

/// `{"agent": name | "*", "count": N (default 1), "code" (default image_pull_failed), "message"}`:
/// the next N hosted versions of that agent end `failed` with that `error.code`.
async fn arm_fail_hosted(State(st): State<Shared>, Json(spec): Json<FailHosted>) -> Response {
    if spec.agent.is_empty() {
        return json(StatusCode::BAD_REQUEST, json!({"error": "agent is required (a name or \"*\")"}));
    }
    if spec.count == Some(0) {
        return json(StatusCode::BAD_REQUEST, json!({"error": "count must be at least 1"}));
    }
    let mut data = st.foundry.lock();
    data.fail_hosted.push(FailHosted { count: Some(spec.count.unwrap_or(1)), ..spec });
    json(StatusCode::CREATED, json!(data.fail_hosted))
}

async fn clear_fail_hosted(State(st): State<Shared>) -> StatusCode {
    st.foundry.lock().fail_hosted.clear();
    StatusCode::NO_CONTENT
}

/// A fault on a Search or Foundry api, answered as that service would; `None` for other apis.
pub fn fault_response(action: &Action, api: &str, cfg: &Config, method: &Method, path: &str) -> Option<Response> {
    if api.starts_with("search.") {
        return Some(match action {
            Action::Throttle { .. } => crate::search::fault_body(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests for this search service; retry after the time in the Retry-After header.",
            ),
            Action::Rbac => {
                let verb = match *method {
                    Method::GET | Method::HEAD => "read",
                    Method::DELETE => "delete",
                    _ => "write",
                };
                let service = resource_id(cfg, crate::arm::platform::SEARCH, &Names::new(cfg).search);
                crate::search::fault_body(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "Authorization failed: the principal '{}' does not have the data action \
                         'Microsoft.Search/searchServices/indexes/{verb}' over scope '{service}{path}'. If a role \
                         was assigned recently, allow time for it to propagate.",
                        cfg.identity.principal_id
                    ),
                )
            }
            Action::Status { status, .. } => {
                crate::search::fault_body(*status, "The request was refused (an armed status fault).")
            }
            _ => crate::search::fault_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred while processing the request.",
            ),
        });
    }
    if api == "foundry" || api.starts_with("foundry.") {
        return Some(match action {
            Action::Throttle { retry_after } => crate::foundry::fault_body(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
            ),
            Action::Rbac => crate::foundry::rbac_denied(cfg, api, method.as_str(), path),
            Action::Status { status, code } => {
                crate::foundry::fault_body(*status, code, "The request was refused (an armed status fault).")
            }
            _ => crate::foundry::fault_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server had an error while processing your request.",
            ),
        });
    }
    None
}
