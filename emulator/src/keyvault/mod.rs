//! Key Vault secrets data plane, per `azure-reference/specs/keyvault.md`.
//!
//! Every request first passes the bearer challenge: without a valid token for
//! `https://vault.azure.net` it gets 401 AKV10000 and the real `WWW-Authenticate` challenge
//! (the SDKs send their first request without a token on purpose, to read it). Then the
//! api-version is checked, then the operation runs against the [`store`].

mod store;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

pub use store::Vault;
use store::{Deleted, RestoreError, Secret, SetError, SetParams, Version, RECOVERABLE_DAYS};

use crate::auth::{check_aad, utc, AuthFailure};
use crate::http::{bearer, json, kv_error, origin};
use crate::state::Shared;

/// 7.4/7.5 are what the specs name, 7.6 and 2025-07-01 the later GA versions, 2026-04-01 what
/// `azure-keyvault-secrets` 4.12 sends by default. Secrets look the same in all of them.
pub const API_VERSIONS: &[&str] = &["7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"];
const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
const MAX_RESULTS: usize = 25;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/secrets", get(list_secrets))
        .route("/secrets/", get(list_secrets))
        .route("/secrets/restore", axum::routing::post(restore_secret))
        .route("/secrets/{name}", get(get_latest).put(set_secret).delete(delete_secret))
        .route("/secrets/{name}/backup", axum::routing::post(backup_secret))
        .route("/secrets/{name}/", get(get_latest).patch(update_latest))
        .route("/secrets/{name}/{version}", get(get_version).patch(update_version))
        .route("/deletedsecrets", get(list_deleted))
        .route("/deletedsecrets/{name}", get(get_deleted).delete(purge_deleted))
        .route("/deletedsecrets/{name}/recover", axum::routing::post(recover_deleted))
}

type Q = Query<HashMap<String, String>>;

/// A request that passed [`admit`]: handlers take it as an argument, so no handler can forget
/// the challenge or the api-version check. Holds the origin that ids are built from.
struct Admitted(String);

impl FromRequestParts<Shared> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, Response> {
        let q: HashMap<String, String> = Query::try_from_uri(&parts.uri).map(|Query(q)| q).unwrap_or_default();
        let uri = parts.extensions.get::<OriginalUri>().map(|o| o.0.clone()).unwrap_or_else(|| parts.uri.clone());
        admit(st, &parts.headers, &uri, &q).map(Admitted)
    }
}

/// The part every handler shares: the token, then the api-version. Returns the URL origin
/// (`https://host:port`) that ids are built from.
fn admit(
    st: &Shared,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    q: &HashMap<String, String>,
) -> Result<String, Response> {
    if let Err(failure) = check_aad(st, bearer(headers), crate::listeners::VAULT.audiences) {
        let message = match failure {
            AuthFailure::Missing => "AKV10000: Request is missing a Bearer or PoP token.".to_owned(),
            AuthFailure::WrongAudience(aud) => {
                format!("AKV10022: Invalid audience. Expected https://vault.azure.net, found: {aud}.")
            }
            AuthFailure::Expired { exp } | AuthFailure::Revoked { exp } => {
                format!("AKV10013: Token expired at {}.", utc(exp))
            }
            AuthFailure::NotYetValid => "AKV10012: Token is not yet valid.".to_owned(),
            AuthFailure::Invalid => "AKV10016: Token validation failed: invalid signature or issuer.".to_owned(),
        };
        let mut resp = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message, None);
        let challenge = format!(
            "Bearer authorization=\"https://login.windows.net/{}\", resource=\"https://vault.azure.net\"",
            st.config.tenant_id
        );
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).unwrap());
        return Err(resp);
    }
    match q.get("api-version") {
        None => Err(kv_error(StatusCode::BAD_REQUEST, "BadParameter", "The api-version parameter is missing.", None)),
        Some(v) if !API_VERSIONS.contains(&v.as_str()) => Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version ({}).",
                API_VERSIONS.last().unwrap()
            ),
            None,
        )),
        Some(_) => Ok(origin(headers, uri)),
    }
}

fn check_name(name: &str) -> Result<(), Response> {
    let ok = !name.is_empty() && name.len() <= 127 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!("The request URI contains an invalid name: {name}"),
            None,
        ))
    }
}

fn not_found(name: &str, version: Option<&str>) -> Response {
    let message = match version {
        Some(v) => format!("A secret with (name/id) {name}/{v} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"),
        None => format!("A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"),
    };
    kv_error(StatusCode::NOT_FOUND, "SecretNotFound", message, None)
}

fn deleted_not_found(name: &str) -> Response {
    kv_error(StatusCode::NOT_FOUND, "SecretNotFound", format!("Deleted Secret not found: {name}"), None)
}

fn attributes(v: &Version) -> Value {
    let mut a = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": RECOVERY_LEVEL,
        "recoverableDays": RECOVERABLE_DAYS,
    });
    if let Some(nbf) = v.nbf {
        a["nbf"] = json!(nbf);
    }
    if let Some(exp) = v.exp {
        a["exp"] = json!(exp);
    }
    a
}

/// SecretBundle (with `value`) or SecretItem (without), `id` as given.
fn bundle(id: String, v: &Version, with_value: bool) -> Value {
    let mut b = json!({"id": id, "attributes": attributes(v)});
    if with_value {
        b["value"] = json!(v.value);
    }
    if let Some(ct) = &v.content_type {
        b["contentType"] = json!(ct);
    }
    if let Some(tags) = &v.tags {
        b["tags"] = tags.clone();
    }
    b
}

fn version_id(origin: &str, s: &Secret, v: &Version) -> String {
    format!("{origin}/secrets/{}/{}", s.name, v.id)
}

fn deleted_bundle(origin: &str, d: &Deleted) -> Value {
    let v = d.secret.latest();
    let mut b = bundle(version_id(origin, &d.secret, v), v, false);
    b["recoveryId"] = json!(format!("{origin}/deletedsecrets/{}", d.secret.name));
    b["deletedDate"] = json!(d.deleted_date);
    b["scheduledPurgeDate"] = json!(d.scheduled_purge_date);
    b
}

fn show(origin: &str, s: &Secret, v: &Version) -> Response {
    if !v.enabled {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    json(StatusCode::OK, bundle(version_id(origin, s, v), v, true))
}

async fn get_latest(State(st): State<Shared>, Admitted(origin): Admitted, Path(name): Path<String>) -> Response {
    let store = st.vault.lock();
    match store.get(&name) {
        Some(s) => show(&origin, s, s.latest()),
        None => not_found(&name, None),
    }
}

async fn get_version(
    State(st): State<Shared>,
    Admitted(origin): Admitted,
    Path((name, version)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    if version == "versions" {
        return list_versions(&st, &origin, &name, &q);
    }
    let store = st.vault.lock();
    match store.get(&name).and_then(|s| s.version(&version).map(|v| (s, v))) {
        Some((s, v)) => show(&origin, s, v),
        None => not_found(&name, Some(&version)),
    }
}

async fn set_secret(
    State(st): State<Shared>,
    Admitted(origin): Admitted,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_name(&name) {
        return r;
    }
    let body: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                format!("The request body is not valid JSON: {e}"),
                None,
            )
        }
    };
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "Property 'value' is required.", None);
    };
    let attrs = body.get("attributes");
    let attr = |k: &str| attrs.and_then(|a| a.get(k));
    let params = SetParams {
        value: value.to_owned(),
        content_type: body.get("contentType").and_then(Value::as_str).map(str::to_owned),
        tags: body.get("tags").filter(|t| t.is_object()).cloned(),
        enabled: attr("enabled").and_then(Value::as_bool),
        nbf: attr("nbf").and_then(Value::as_i64),
        exp: attr("exp").and_then(Value::as_i64),
    };
    let result = st.vault.lock().set(&name, params);
    match result {
        Ok((s, v)) => json(StatusCode::OK, bundle(version_id(&origin, &s, &v), &v, true)),
        Err(SetError::DeletedButRecoverable) => kv_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."),
            Some("ObjectIsDeletedButRecoverable"),
        ),
    }
}

async fn update_latest(st: State<Shared>, admitted: Admitted, Path(name): Path<String>, body: Bytes) -> Response {
    update(st, admitted, name, None, body).await
}

async fn update_version(
    st: State<Shared>,
    admitted: Admitted,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    update(st, admitted, name, Some(version), body).await
}

/// UpdateSecret: changes attributes, tags or content type of one version (not its value).
async fn update(
    State(st): State<Shared>,
    Admitted(origin): Admitted,
    name: String,
    version: Option<String>,
    body: Bytes,
) -> Response {
    let body: Map<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
    let mut store = st.vault.lock();
    let Some(secret) = store.get_mut(&name) else {
        return not_found(&name, version.as_deref());
    };
    let index = match &version {
        Some(id) => secret.versions.iter().position(|v| v.id.eq_ignore_ascii_case(id)),
        None => secret.versions.len().checked_sub(1),
    };
    let Some(index) = index else {
        return not_found(&name, version.as_deref());
    };
    let v = &mut secret.versions[index];
    if let Some(ct) = body.get("contentType").and_then(Value::as_str) {
        v.content_type = Some(ct.to_owned());
    }
    if let Some(tags) = body.get("tags").filter(|t| t.is_object()) {
        v.tags = Some(tags.clone());
    }
    if let Some(a) = body.get("attributes") {
        if let Some(e) = a.get("enabled").and_then(Value::as_bool) {
            v.enabled = e;
        }
        if let Some(n) = a.get("nbf").and_then(Value::as_i64) {
            v.nbf = Some(n);
        }
        if let Some(x) = a.get("exp").and_then(Value::as_i64) {
            v.exp = Some(x);
        }
    }
    v.updated = crate::tokens::now();
    let v = v.clone();
    json(StatusCode::OK, bundle(format!("{origin}/secrets/{}/{}", secret.name, v.id), &v, false))
}

async fn delete_secret(State(st): State<Shared>, Admitted(origin): Admitted, Path(name): Path<String>) -> Response {
    let deleted = st.vault.lock().delete(&name);
    match deleted {
        Some(d) => json(StatusCode::OK, deleted_bundle(&origin, &d)),
        None => not_found(&name, None),
    }
}

async fn get_deleted(State(st): State<Shared>, Admitted(origin): Admitted, Path(name): Path<String>) -> Response {
    let store = st.vault.lock();
    match store.deleted(&name) {
        Some(d) => json(StatusCode::OK, deleted_bundle(&origin, d)),
        None => deleted_not_found(&name),
    }
}

async fn recover_deleted(State(st): State<Shared>, Admitted(origin): Admitted, Path(name): Path<String>) -> Response {
    let recovered = st.vault.lock().recover(&name);
    match recovered {
        Some(s) => json(StatusCode::OK, bundle(version_id(&origin, &s, s.latest()), s.latest(), false)),
        None => deleted_not_found(&name),
    }
}

/// What a backup blob holds, before base64url: a marker and the secret with every version.
/// Key Vault's blobs are opaque and encrypted for the vault's geography; this one is opaque to
/// clients and restorable only into this emulator.
const BACKUP_MARKER: &str = "vibedata-emulator-secret-backup-1:";

fn backup_blob(s: &Secret) -> String {
    let body = format!("{BACKUP_MARKER}{}", serde_json::to_string(s).unwrap_or_default());
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, body)
}

fn read_backup(blob: &str) -> Option<Secret> {
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, blob.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    serde_json::from_str(text.strip_prefix(BACKUP_MARKER)?).ok().filter(|s: &Secret| !s.versions.is_empty())
}

/// BackupSecret: `{"value": <blob>}` with every version of the secret.
async fn backup_secret(State(st): State<Shared>, _: Admitted, Path(name): Path<String>) -> Response {
    let store = st.vault.lock();
    match store.get(&name) {
        Some(s) => json(StatusCode::OK, json!({"value": backup_blob(s)})),
        None => not_found(&name, None),
    }
}

/// RestoreSecret: `{"value": <blob>}` → the restored secret's SecretBundle (no value), or 409
/// when the name is taken, live or soft-deleted.
async fn restore_secret(State(st): State<Shared>, Admitted(origin): Admitted, body: Bytes) -> Response {
    let blob = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b.get("value")?.as_str().map(str::to_owned));
    let Some(blob) = blob else {
        return kv_error(StatusCode::BAD_REQUEST, "BadParameter", "Property 'value' is required.", None);
    };
    let Some(secret) = read_backup(&blob) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Backup blob contains invalid or corrupt version.",
            None,
        );
    };
    let name = secret.name.clone();
    let restored = st.vault.lock().restore(secret);
    match restored {
        Ok(s) => json(StatusCode::OK, bundle(version_id(&origin, &s, s.latest()), s.latest(), false)),
        Err(RestoreError::Exists) => kv_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Secret {name} already exists. A backup can only be restored into a vault that does not hold the secret."),
            None,
        ),
        Err(RestoreError::DeletedButRecoverable) => kv_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."),
            Some("ObjectIsDeletedButRecoverable"),
        ),
    }
}

async fn purge_deleted(State(st): State<Shared>, _: Admitted, Path(name): Path<String>) -> Response {
    if st.vault.lock().purge(&name) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        deleted_not_found(&name)
    }
}

async fn list_secrets(State(st): State<Shared>, Admitted(origin): Admitted, Query(q): Q) -> Response {
    let items: Vec<Value> = st
        .vault
        .lock()
        .live
        .values()
        .map(|s| bundle(format!("{origin}/secrets/{}", s.name), s.latest(), false))
        .collect();
    page(items, &origin, "/secrets", &q)
}

async fn list_deleted(State(st): State<Shared>, Admitted(origin): Admitted, Query(q): Q) -> Response {
    let items: Vec<Value> = st
        .vault
        .lock()
        .deleted
        .values()
        .map(|d| {
            let mut item = deleted_bundle(&origin, d);
            item["id"] = json!(format!("{origin}/secrets/{}", d.secret.name));
            item
        })
        .collect();
    page(items, &origin, "/deletedsecrets", &q)
}

fn list_versions(st: &Shared, origin: &str, name: &str, q: &HashMap<String, String>) -> Response {
    let store = st.vault.lock();
    let Some(s) = store.get(name) else {
        return not_found(name, None);
    };
    let items = s.versions.iter().map(|v| bundle(version_id(origin, s, v), v, false)).collect();
    page(items, origin, &format!("/secrets/{}/versions", s.name), q)
}

/// One page of a list: `maxresults` (1..=25) items from `$skiptoken` on, with an absolute
/// `nextLink` while more remain. The skip token is a plain offset (opaque to clients).
fn page(items: Vec<Value>, origin: &str, path: &str, q: &HashMap<String, String>) -> Response {
    let max = match q.get("maxresults").map(|m| m.parse::<usize>()) {
        None => MAX_RESULTS,
        Some(Ok(m)) if (1..=MAX_RESULTS).contains(&m) => m,
        Some(_) => {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The value of maxresults must be between 1 and 25.",
                None,
            )
        }
    };
    let skip: usize = q.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let end = (skip + max).min(items.len());
    let value: Vec<Value> = items.get(skip..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| {
        format!(
            "{origin}{path}?api-version={}&$skiptoken={end}&maxresults={max}",
            q.get("api-version").map(String::as_str).unwrap_or("7.5")
        )
    });
    json(StatusCode::OK, json!({"value": value, "nextLink": next}))
}
