//! `/_emulator/aks...`: the knobs, the command log, and the emulated cluster's release table
//! for tests (read, reset, replace), plus the faults that live in the cluster rather than in
//! ARM: a release whose next install is killed mid-way, a Deployment that never becomes
//! Available. Secret values never appear here: Secrets show their keys only.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::cluster::Revision;
use super::{AksSettings, StuckSpec, UnavailableSpec};
use crate::http::json;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/_emulator/aks", get(settings).put(set_settings))
        .route("/_emulator/aks/commands", get(commands).delete(clear_commands))
        .route("/_emulator/aks/releases", get(releases).put(put_releases).delete(reset_cluster))
        .route("/_emulator/aks/objects", get(objects))
        .route("/_emulator/aks/stuck", get(stuck).post(arm_stuck).delete(clear_stuck))
        .route("/_emulator/aks/unavailable", get(unavailable).post(arm_unavailable).delete(clear_unavailable))
}

#[derive(Deserialize)]
struct Which {
    /// The cluster (default: the inventory's).
    cluster: Option<String>,
}

fn cluster_name(st: &Shared, which: &Which) -> String {
    which.cluster.clone().unwrap_or_else(|| crate::arm::inventory::Names::new(&st.config).aks)
}

async fn settings(State(st): State<Shared>) -> Json<AksSettings> {
    Json(st.aks.lock().settings.clone())
}

/// Merges the given knobs (any subset of [`AksSettings`]) into the current ones.
async fn set_settings(State(st): State<Shared>, Json(patch): Json<Value>) -> Response {
    let mut aks = st.aks.lock();
    let mut current = serde_json::to_value(&aks.settings).unwrap_or_default();
    let Some(fields) = patch.as_object() else {
        return json(StatusCode::BAD_REQUEST, json!({"error": "a JSON object of settings is required"}));
    };
    for (k, v) in fields {
        if current.get(k).is_none() {
            return json(StatusCode::BAD_REQUEST, json!({"error": format!("unknown setting '{k}'")}));
        }
        current[k] = v.clone();
    }
    match serde_json::from_value::<AksSettings>(current) {
        Ok(s) => {
            aks.settings = s;
            Json(aks.settings.clone()).into_response()
        }
        Err(e) => json(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

async fn commands(State(st): State<Shared>) -> Response {
    Json(st.aks.lock().commands.clone()).into_response()
}

async fn clear_commands(State(st): State<Shared>) -> StatusCode {
    st.aks.lock().commands.clear();
    StatusCode::NO_CONTENT
}

/// `{"cluster", "releases": [{"namespace","name","revisions":[...]}]}`; each revision:
/// `revision`, `status`, `chart` (`name-version`), `chartName`, `chartVersion`, `appVersion`,
/// `chartDigest`, `values` (user-supplied), `description`, `updated`.
async fn releases(State(st): State<Shared>, Query(which): Query<Which>) -> Response {
    let name = cluster_name(&st, &which);
    let mut aks = st.aks.lock();
    let cluster = aks.cluster(&name);
    let list: Vec<Value> = cluster
        .releases
        .iter()
        .filter(|(_, revs)| !revs.is_empty())
        .map(|((ns, rel), revs)| {
            json!({"namespace": ns, "name": rel, "revisions": revs.iter().map(revision_view).collect::<Vec<_>>()})
        })
        .collect();
    Json(json!({"cluster": name, "releases": list})).into_response()
}

fn revision_view(r: &Revision) -> Value {
    json!({
        "revision": r.version,
        "status": r.status,
        "chart": r.chart_name(),
        "chartName": r.chart["name"],
        "chartVersion": r.chart["version"],
        "appVersion": r.chart["appVersion"],
        "chartDigest": r.chart_digest,
        "values": r.config,
        "description": r.description,
        "updated": r.last_deployed,
        // What the real `helm template` rendered from the command's chart and values.
        "manifest": r.manifest,
        "hooks": r.hooks,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedRelease {
    namespace: String,
    name: String,
    revisions: Vec<SeedRevision>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedRevision {
    revision: u32,
    status: String,
    #[serde(default)]
    chart_name: Option<String>,
    #[serde(default)]
    chart_version: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    chart_digest: Option<String>,
    #[serde(default)]
    values: Value,
    #[serde(default)]
    description: Option<String>,
}

/// Replaces one release's history (e.g. a release left `pending-upgrade` by a killed run).
/// Its objects are not created: apply them with a command if a test needs them.
async fn put_releases(State(st): State<Shared>, Query(which): Query<Which>, Json(seed): Json<SeedRelease>) -> Response {
    const STATUSES: &[&str] = &[
        "deployed",
        "superseded",
        "failed",
        "uninstalled",
        "uninstalling",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
    ];
    if let Some(bad) = seed.revisions.iter().find(|r| !STATUSES.contains(&r.status.as_str())) {
        return json(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("status '{}' is not one of {}", bad.status, STATUSES.join(", "))}),
        );
    }
    let name = cluster_name(&st, &which);
    let now = crate::http::now_rfc3339();
    let revisions: Vec<Revision> = seed
        .revisions
        .into_iter()
        .map(|r| Revision {
            version: r.revision,
            status: r.status,
            chart: json!({"apiVersion": "v2", "name": r.chart_name.unwrap_or_else(|| seed.name.clone()),
                          "version": r.chart_version.unwrap_or_else(|| "0.0.0".into()), "appVersion": r.app_version}),
            chart_digest: r.chart_digest,
            chart_values: Value::Null,
            config: if r.values.is_null() { json!({}) } else { r.values },
            manifest: String::new(),
            hooks: Vec::new(),
            first_deployed: now.clone(),
            last_deployed: now.clone(),
            deleted: String::new(),
            description: r.description.unwrap_or_else(|| "Seeded by the emulator's control API".into()),
        })
        .collect();
    let mut aks = st.aks.lock();
    let cluster = aks.cluster(&name);
    cluster.namespaces.entry(seed.namespace.clone()).or_insert_with(crate::http::now_rfc3339);
    *cluster.history_mut(&seed.namespace, &seed.name) = revisions;
    json(StatusCode::OK, json!({"namespace": seed.namespace, "name": seed.name}))
}

/// Back to an empty cluster: no releases, no objects, only the system namespaces.
async fn reset_cluster(State(st): State<Shared>, Query(which): Query<Which>) -> StatusCode {
    let name = cluster_name(&st, &which);
    *st.aks.lock().cluster(&name) = super::cluster::Cluster::fresh();
    StatusCode::NO_CONTENT
}

/// `[{"namespace","kind","name","available"?,"blocked"?,"keys"?}]`: what the cluster holds.
async fn objects(State(st): State<Shared>, Query(which): Query<Which>) -> Response {
    let name = cluster_name(&st, &which);
    let mut aks = st.aks.lock();
    let forced: Vec<(String, String)> =
        aks.unavailable.iter().map(|u| (u.namespace.clone(), u.deployment.clone())).collect();
    let cluster = aks.cluster(&name);
    let list: Vec<Value> = cluster
        .objects
        .iter()
        .map(|(k, o)| {
            let mut v = json!({"namespace": k.namespace, "kind": k.kind, "name": k.name, "labels": o.body["metadata"]["labels"]});
            if k.kind == "Deployment" {
                let is_forced = forced.iter().any(|(n, d)| *n == k.namespace && *d == k.name);
                v["available"] = json!(!is_forced && super::cluster::availability(o, None).is_ok());
            }
            if let Some(b) = &o.blocked {
                v["blocked"] = json!(b);
            }
            if k.kind == "Secret" {
                // Keys only: the values are secrets.
                v["keys"] = json!(o.body["data"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default());
            }
            v
        })
        .collect();
    Json(json!({"cluster": name, "namespaces": cluster.namespaces.keys().collect::<Vec<_>>(), "objects": list}))
        .into_response()
}

async fn stuck(State(st): State<Shared>) -> Json<Vec<StuckSpec>> {
    Json(st.aks.lock().stuck.clone())
}

/// `{"release", "namespace"?, "count"?}`: the next `count` (1) installs/upgrades of that
/// release die after Helm wrote their `pending-install`/`pending-upgrade` revision: the
/// command's processes are killed (exit 137), as when the command pod is lost mid-install.
async fn arm_stuck(State(st): State<Shared>, Json(spec): Json<StuckSpec>) -> Response {
    if spec.release.is_empty() || spec.count == Some(0) {
        return json(StatusCode::BAD_REQUEST, json!({"error": "release is required and count must be at least 1"}));
    }
    let mut aks = st.aks.lock();
    aks.stuck.push(StuckSpec { count: Some(spec.count.unwrap_or(1)), ..spec });
    json(StatusCode::CREATED, json!(aks.stuck))
}

async fn clear_stuck(State(st): State<Shared>) -> StatusCode {
    st.aks.lock().stuck.clear();
    StatusCode::NO_CONTENT
}

async fn unavailable(State(st): State<Shared>) -> Json<Vec<UnavailableSpec>> {
    Json(st.aks.lock().unavailable.clone())
}

/// `{"namespace", "deployment", "reason"?, "message"?}`: that Deployment stays unavailable
/// (its pods waiting with `reason`, default `CrashLoopBackOff`) until disarmed.
async fn arm_unavailable(State(st): State<Shared>, Json(spec): Json<UnavailableSpec>) -> Response {
    if spec.namespace.is_empty() || spec.deployment.is_empty() {
        return json(StatusCode::BAD_REQUEST, json!({"error": "namespace and deployment are required"}));
    }
    let mut aks = st.aks.lock();
    aks.unavailable.retain(|u| !(u.namespace == spec.namespace && u.deployment == spec.deployment));
    aks.unavailable.push(spec);
    json(StatusCode::CREATED, json!(aks.unavailable))
}

async fn clear_unavailable(State(st): State<Shared>) -> StatusCode {
    st.aks.lock().unavailable.clear();
    StatusCode::NO_CONTENT
}
