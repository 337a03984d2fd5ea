//! Managed identity, in two protocols:
//! - App Service / Functions (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`):
//!   `GET /msi/token?resource=...&api-version=2019-08-01&client_id=...`;
//! - IMDS, what a deploymentScripts container (ACI) has: `GET
//!   http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`
//!   with `Metadata: true`, on its own plain-HTTP listener ([`imds_router`]).
//!
//! The configured user-assigned identity exists, and the deployer's when configured (by
//! `client_id` or `object_id`/`principal_id`; its tokens pass the grant table, `grants.rs`). Like IMDS, the same identity and audience
//! get the same token until it is within five minutes of expiry, so clients that cache behave
//! as in Azure. Tokens are v1 AAD access tokens that Azurite (`--oauth basic`) accepts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::http::json;
use crate::state::{AppState, Shared};
use crate::tokens::now;

const DEFAULT_LIFETIME_SECS: i64 = 3600;
/// A cached token is handed out again until it is this close to expiry (IMDS behaviour).
const REISSUE_BEFORE_EXPIRY_SECS: i64 = 300;

#[derive(Default)]
pub struct IdentityState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Normalised resource → the token handed out for it.
    cache: HashMap<String, Issued>,
    /// `uti`s of tokens revoked by `POST /_emulator/identity/expire`.
    revoked: HashSet<String>,
    /// Every `uti` issued, so `expire` can revoke them all.
    issued: Vec<String>,
    lifetime_secs: Option<i64>,
}

struct Issued {
    token: String,
    expires_on: i64,
}

impl IdentityState {
    /// Forgets cached tokens and revokes every token issued so far: the emulated services answer
    /// them as expired, and the next `/msi/token` call issues a fresh one.
    pub fn expire_all(&self) -> usize {
        let mut inner = self.inner.lock().unwrap();
        inner.cache.clear();
        let issued = std::mem::take(&mut inner.issued);
        let n = issued.len();
        inner.revoked.extend(issued);
        n
    }

    /// Changes the lifetime of tokens issued from now on (`None` = the default hour).
    pub fn set_lifetime(&self, secs: Option<i64>) {
        self.inner.lock().unwrap().lifetime_secs = secs;
    }

    pub fn is_revoked(&self, uti: &str) -> bool {
        self.inner.lock().unwrap().revoked.contains(uti)
    }

    /// `who`'s token for `resource`, from the cache when it is still far from expiry.
    pub fn token_for(&self, st: &AppState, resource: &str, who: Who) -> (String, i64) {
        let key = format!("{who:?} {}", resource.trim_end_matches('/').to_ascii_lowercase());
        let now = now();
        let mut inner = self.inner.lock().unwrap();
        if let Some(hit) = inner.cache.get(&key) {
            if hit.expires_on - REISSUE_BEFORE_EXPIRY_SECS > now {
                return (hit.token.clone(), hit.expires_on);
            }
        }
        let lifetime = inner.lifetime_secs.unwrap_or(DEFAULT_LIFETIME_SECS);
        let expires_on = now + lifetime;
        let uti = uuid::Uuid::new_v4().simple().to_string();
        let cfg = &st.config;
        let issuer = cfg.issuer();
        let (client, principal) = who.ids(cfg);
        let claims = json!({
            // Azurite requires exactly `https://storage.azure.com`, so no trailing slash.
            "aud": resource.trim_end_matches('/'),
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "aio": "emulator",
            "appid": client,
            "appidacr": "2",
            "idp": issuer,
            "idtyp": "app",
            "oid": principal,
            "rh": "emulator",
            "sub": principal,
            "tid": cfg.tenant_id,
            "uti": uti,
            "ver": "1.0",
            "xms_mirid": if who == Who::Bootstrap { Some(&cfg.identity.resource_id) } else { None },
        });
        let token = st.signer.sign(&st.signer.aad_header(), &claims);
        inner.issued.push(uti);
        inner.cache.insert(key, Issued { token: token.clone(), expires_on });
        (token, expires_on)
    }
}

/// Which identity a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The user-assigned identity of the deploymentScripts (the binary's).
    Bootstrap,
    /// `identity.deployer`: the tests' stand-in for the deployment's own principal.
    Deployer,
}

impl Who {
    fn ids(self, cfg: &crate::config::Config) -> (&str, &str) {
        match (self, &cfg.identity.deployer) {
            (Who::Deployer, Some(d)) => (&d.client_id, &d.principal_id),
            _ => (&cfg.identity.client_id, &cfg.identity.principal_id),
        }
    }

    /// The identity `key = value` names, if any.
    fn named(cfg: &crate::config::Config, key: &str, value: &str) -> Option<Who> {
        let i = &cfg.identity;
        let is = |a: &str| value.eq_ignore_ascii_case(a);
        let deployer = |f: fn(&crate::config::Principal) -> &str| i.deployer.as_ref().is_some_and(|d| is(f(d)));
        match key {
            "client_id" if is(&i.client_id) => Some(Who::Bootstrap),
            "client_id" if deployer(|d| &d.client_id) => Some(Who::Deployer),
            "principal_id" | "object_id" if is(&i.principal_id) => Some(Who::Bootstrap),
            "principal_id" | "object_id" if deployer(|d| &d.principal_id) => Some(Who::Deployer),
            "mi_res_id" | "msi_res_id" if is(&i.resource_id) => Some(Who::Bootstrap),
            _ => None,
        }
    }
}

/// App Service's error body: `{"statusCode", "message", "correlationId"}`.
fn msi_error(status: StatusCode, message: &str) -> Response {
    json(
        status,
        json!({"statusCode": status.as_u16(), "message": message, "correlationId": uuid::Uuid::new_v4().to_string()}),
    )
}

pub async fn token(State(st): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let cfg = &st.config;
    match headers.get("x-identity-header").and_then(|h| h.to_str().ok()) {
        None => return msi_error(StatusCode::BAD_REQUEST, "The X-IDENTITY-HEADER header is missing."),
        Some(h) if h != cfg.identity.header => return msi_error(StatusCode::UNAUTHORIZED, "Unauthorized."),
        Some(_) => {}
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return msi_error(StatusCode::BAD_REQUEST, "The api-version must be 2019-08-01.");
    }
    let Some(resource) = q.get("resource").filter(|r| !r.is_empty()) else {
        return msi_error(StatusCode::BAD_REQUEST, "The resource parameter is required.");
    };
    // The optional ids are mutually exclusive; with none, App Service would use the
    // system-assigned identity, which this deployment does not have.
    let wanted: Vec<(&str, &String)> = ["client_id", "principal_id", "object_id", "mi_res_id"]
        .into_iter()
        .filter_map(|k| q.get(k).map(|v| (k, v)))
        .collect();
    let known = match wanted.as_slice() {
        [(k, v)] => Who::named(cfg, k, v),
        [] => None,
        _ => {
            return msi_error(
                StatusCode::BAD_REQUEST,
                "Only one of client_id, principal_id, object_id or mi_res_id may be given.",
            )
        }
    };
    let Some(who) = known else {
        return msi_error(StatusCode::BAD_REQUEST, "Unable to load the proper Managed Identity.");
    };
    let (access_token, expires_on) = st.identity.token_for(&st, resource, who);
    json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": who.ids(cfg).0,
        }),
    )
}

/// IMDS's error body (`how-to-use-vm-token.md`, "Error handling").
fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, json!({"error": error, "error_description": description}))
}

/// The IMDS listener's router: the token path only, journaled like every other listener.
pub fn imds_router(state: Shared) -> axum::Router {
    axum::Router::new()
        .route("/metadata/identity/oauth2/token", axum::routing::get(imds_token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::middleware::observe))
        .with_state(state)
}

/// `GET /metadata/identity/oauth2/token` (IMDS). Numbers are strings, as IMDS sends them.
async fn imds_token(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let cfg = &st.config;
    let metadata = headers.get("metadata").and_then(|h| h.to_str().ok());
    if !metadata.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return imds_error(StatusCode::BAD_REQUEST, "invalid_request", "Required metadata header not specified");
    }
    // 2018-02-01 is the documented version; Azure's Rust SDK sends 2019-08-01.
    if !matches!(q.get("api-version").map(String::as_str), Some("2018-02-01" | "2019-08-01")) {
        return imds_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid or missing api-version");
    }
    let Some(resource) = q.get("resource").filter(|r| !r.is_empty()) else {
        return imds_error(StatusCode::BAD_REQUEST, "invalid_request", "Required query variable 'resource' is missing");
    };
    // IMDS names the resource id `msi_res_id` (App Service's is `mi_res_id`). With no id it would
    // pick the only identity assigned, which is ours.
    let wanted: Vec<(&str, &String)> =
        ["client_id", "object_id", "msi_res_id"].into_iter().filter_map(|k| q.get(k).map(|v| (k, v))).collect();
    let known = match wanted.as_slice() {
        [(k, v)] => Who::named(cfg, k, v),
        [] => Some(Who::Bootstrap),
        _ => return imds_error(StatusCode::BAD_REQUEST, "invalid_request", "Multiple identities specified"),
    };
    let Some(who) = known else {
        return imds_error(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found");
    };
    let (access_token, expires_on) = st.identity.token_for(&st, resource, who);
    let expires_in = (expires_on - now()).max(0);
    json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "refresh_token": "",
            "expires_in": expires_in.to_string(),
            "expires_on": expires_on.to_string(),
            "ext_expires_in": expires_in.to_string(),
            "not_before": now().to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": who.ids(cfg).0,
        }),
    )
}

/// `POST /_emulator/identity/expire`.
pub fn expire(st: &AppState) -> Value {
    json!({"revoked": st.identity.expire_all()})
}
