//! The control API under `/_emulator` (docs/local-stack.md). No auth: every listener is bound
//! to 127.0.0.1 only. These requests are neither journaled nor subject to faults.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::arm::automation::FailPublish;
use crate::config::{ImportSettings, LroSettings, PublishSettings};
use crate::faults::FaultSpec;
use crate::http::json;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/_emulator/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/_emulator/journal", get(journal).delete(clear_journal))
        .route("/_emulator/faults", get(faults).post(arm_fault).delete(clear_faults))
        .route("/_emulator/identity", axum::routing::put(identity_settings))
        .route("/_emulator/grants", get(grants).put(set_grants).delete(clear_grants))
        .route("/_emulator/identity/expire", post(expire_tokens))
        .route("/_emulator/lro", get(lro).put(set_lro))
        .route("/_emulator/latency", get(latency).delete(clear_latency))
        .route("/_emulator/registry-network", get(registry_network).put(set_registry_network))
        .route("/_emulator/import", get(import_settings).put(set_import_settings))
        .route("/_emulator/imports", get(imports).delete(clear_imports))
        .route("/_emulator/referrers", get(referrers).put(set_referrers).delete(clear_referrers))
        .route("/_emulator/automation", get(automation_settings).put(set_automation_settings))
        .route("/_emulator/automation/runbooks", get(automation_runbooks).delete(clear_automation_runbooks))
        .route(
            "/_emulator/automation/fail-publish",
            get(fail_publish_list).post(arm_fail_publish).delete(clear_fail_publish),
        )
        .merge(crate::arm::aks::control::routes())
}

/// `{"denied": [{"kind": "action"|"dataAction", "name": "…"}]}`: what the stack identity lacks.
#[derive(serde::Deserialize, serde::Serialize)]
struct GrantSettings {
    denied: Vec<crate::grants::Permission>,
}

async fn grants(State(st): State<Shared>) -> Json<GrantSettings> {
    Json(GrantSettings { denied: st.grants.denied() })
}

async fn set_grants(State(st): State<Shared>, Json(g): Json<GrantSettings>) -> Json<GrantSettings> {
    st.grants.set_denied(g.denied);
    Json(GrantSettings { denied: st.grants.denied() })
}

async fn clear_grants(State(st): State<Shared>) -> StatusCode {
    st.grants.set_denied(Vec::new());
    StatusCode::NO_CONTENT
}

async fn referrers(State(st): State<Shared>) -> Json<crate::referrers::Settings> {
    Json(st.referrers.get())
}

/// `{"pageSize": N|null, "filters": bool}` (`referrers.rs`); an omitted key takes its default.
async fn set_referrers(
    State(st): State<Shared>,
    Json(s): Json<crate::referrers::Settings>,
) -> Json<crate::referrers::Settings> {
    st.referrers.set(s);
    Json(st.referrers.get())
}

async fn clear_referrers(State(st): State<Shared>) -> StatusCode {
    st.referrers.set(Default::default());
    StatusCode::NO_CONTENT
}

async fn journal(State(st): State<Shared>) -> Response {
    Json(st.journal.entries()).into_response()
}

/// `GET /_emulator/latency`: every operation's simulated latency (`crate::latency`).
async fn latency() -> Json<Value> {
    Json(json!(crate::latency::all()))
}

async fn clear_latency() -> StatusCode {
    crate::latency::clear();
    StatusCode::NO_CONTENT
}

async fn clear_journal(State(st): State<Shared>) -> StatusCode {
    st.journal.clear();
    StatusCode::NO_CONTENT
}

async fn faults(State(st): State<Shared>) -> Json<Value> {
    Json(st.faults.list())
}

async fn arm_fault(State(st): State<Shared>, Json(spec): Json<FaultSpec>) -> Response {
    match st.faults.arm(spec) {
        Ok(()) => json(StatusCode::CREATED, st.faults.list()),
        Err(message) => json(StatusCode::BAD_REQUEST, json!({"error": message})),
    }
}

async fn clear_faults(State(st): State<Shared>) -> StatusCode {
    st.faults.clear();
    StatusCode::NO_CONTENT
}

/// Revokes every managed-identity token issued so far (the services answer them as expired)
/// and empties the token cache, so the next `/msi/token` call issues a new token.
async fn expire_tokens(State(st): State<Shared>) -> Json<Value> {
    Json(crate::identity::expire(&st))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentitySettings {
    /// Lifetime of tokens issued from now on; `null` restores the default hour.
    lifetime_seconds: Option<i64>,
}

async fn identity_settings(State(st): State<Shared>, Json(s): Json<IdentitySettings>) -> StatusCode {
    st.identity.set_lifetime(s.lifetime_seconds);
    StatusCode::NO_CONTENT
}

async fn lro(State(st): State<Shared>) -> Json<LroSettings> {
    Json(st.arm.lock().lro)
}

/// `{"polls": N, "retryAfter": S}`: applies to operations started from now on (`retryAfter`
/// to every answer from now on).
async fn set_lro(State(st): State<Shared>, Json(settings): Json<LroSettings>) -> Json<LroSettings> {
    let mut arm = st.arm.lock();
    arm.lro = settings;
    Json(arm.lro)
}

async fn registry_network(State(st): State<Shared>) -> Response {
    Json(st.arm.lock().registry_network.clone()).into_response()
}

/// Merges `{"publicNetworkAccess", "networkRuleBypassOptions", "networkRuleSet"}` (any subset)
/// into the customer registry's settings.
async fn set_registry_network(State(st): State<Shared>, Json(patch): Json<Value>) -> Response {
    let mut arm = st.arm.lock();
    let net = &mut arm.registry_network;
    if let Some(v) = patch.get("publicNetworkAccess").and_then(Value::as_str) {
        net.public_network_access = v.to_owned();
    }
    if let Some(v) = patch.get("networkRuleBypassOptions").and_then(Value::as_str) {
        net.network_rule_bypass_options = v.to_owned();
    }
    if let Some(v) = patch.get("networkRuleSet").filter(|v| v.is_object()) {
        net.network_rule_set = v.clone();
    }
    Json(net.clone()).into_response()
}

async fn import_settings(State(st): State<Shared>) -> Json<ImportSettings> {
    Json(st.imports.lock().settings)
}

/// `{"durationMs": N}`: every import started from now on stays running for at least N ms.
async fn set_import_settings(State(st): State<Shared>, Json(settings): Json<ImportSettings>) -> Json<ImportSettings> {
    let mut imports = st.imports.lock();
    imports.settings = settings;
    Json(imports.settings)
}

/// Every importImage accepted so far (parameters and outcome, never the password).
async fn imports(State(st): State<Shared>) -> Response {
    Json(st.imports.lock().log().to_vec()).into_response()
}

async fn clear_imports(State(st): State<Shared>) -> StatusCode {
    st.imports.lock().clear_log();
    StatusCode::NO_CONTENT
}

fn automation_summary(st: &Shared) -> Value {
    let data = st.automation.lock();
    json!({
        "account": st.config.automation_account,
        "publishPolls": data.settings.publish_polls,
        "publishDurationMs": data.settings.publish_duration_ms,
        "failPublish": data.fail_publish,
    })
}

/// `{"account", "publishPolls", "publishDurationMs", "failPublish"}`.
async fn automation_settings(State(st): State<Shared>) -> Json<Value> {
    Json(automation_summary(&st))
}

/// `{"publishPolls": N | null, "publishDurationMs": M}`: for publishes started from now on
/// (`null` polls = the `lro.polls` knob).
async fn set_automation_settings(State(st): State<Shared>, Json(settings): Json<PublishSettings>) -> Json<Value> {
    st.automation.lock().settings = settings;
    Json(automation_summary(&st))
}

/// Every runbook: state, content hashes, publish counts (not an observation of publishes).
async fn automation_runbooks(State(st): State<Shared>) -> Json<Value> {
    Json(st.automation.lock().view())
}

/// Forgets every runbook and runbook operation (runtime environments stay).
async fn clear_automation_runbooks(State(st): State<Shared>) -> StatusCode {
    st.automation.lock().clear_runbooks();
    StatusCode::NO_CONTENT
}

async fn fail_publish_list(State(st): State<Shared>) -> Json<Value> {
    Json(json!(st.automation.lock().fail_publish))
}

/// `{"runbook": name | "*", "count": N (default 1), "status", "code", "message"}`: the next N
/// publishes of that runbook end Failed with that ARM error (default 400 `BadRequest`).
async fn arm_fail_publish(State(st): State<Shared>, Json(spec): Json<FailPublish>) -> Response {
    if spec.runbook.is_empty() {
        return json(StatusCode::BAD_REQUEST, json!({"error": "runbook is required (a name or \"*\")"}));
    }
    if spec.status.is_some_and(|s| !(400..=599).contains(&s)) {
        return json(StatusCode::BAD_REQUEST, json!({"error": "status must be 400..599"}));
    }
    if spec.count == Some(0) {
        return json(StatusCode::BAD_REQUEST, json!({"error": "count must be at least 1"}));
    }
    let mut data = st.automation.lock();
    data.fail_publish.push(FailPublish { count: Some(spec.count.unwrap_or(1)), ..spec });
    json(StatusCode::CREATED, json!(data.fail_publish))
}

async fn clear_fail_publish(State(st): State<Shared>) -> StatusCode {
    st.automation.lock().fail_publish.clear();
    StatusCode::NO_CONTENT
}
