//! The ACR token service for the customer registry (a CNCF distribution configured with
//! `auth.token` pointing here), per `specs/containerregistry.md` §B:
//!
//! - `POST /oauth2/exchange`: AAD access token → ACR refresh token.
//! - `POST /oauth2/token`: refresh token (or AAD token) + scopes → registry access token.
//! - `GET /oauth2/token` with Basic auth: what docker/skopeo do after the registry's 401.
//!
//! Registry access tokens follow what the CNCF registry checks (local-stack-notes.md): RS256 (or
//! ES256) with an `x5c` chain, `iss` = the configured issuer, `aud` = the service as a single
//! string, integer `exp`, and an `access` array. Only the configured identity exists; it gets the
//! actions it asks for.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::auth::check_aad;
use crate::http::{acr_error, json};
use crate::state::{AppState, Shared};
use crate::tokens::{claim_i64, claim_str, now, Claims};

/// The username docker uses with an ACR refresh token as the password.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
const REFRESH_LIFETIME_SECS: i64 = 3 * 3600;
const ACCESS_LIFETIME_SECS: i64 = 3600;

type Form = Vec<(String, String)>;

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn unauthorized(message: &str) -> Response {
    acr_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

fn bad_request(message: &str) -> Response {
    acr_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// Reads an `application/x-www-form-urlencoded` body (what clients send) or a
/// `multipart/form-data` one (what the TypeSpec declares).
async fn read_form(req: Request) -> Result<Form, Response> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(req, &()).await.map_err(|e| bad_request(&e.body_text()))?;
        let mut form = Vec::new();
        while let Some(part) = multipart.next_field().await.map_err(|e| bad_request(&e.body_text()))? {
            let name = part.name().unwrap_or_default().to_owned();
            let value = part.text().await.map_err(|e| bad_request(&e.body_text()))?;
            form.push((name, value));
        }
        return Ok(form);
    }
    let body = Bytes::from_request(req, &()).await.map_err(|_| bad_request("unreadable body"))?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

/// The service must be the registry's: its token-auth `service` or its login server.
fn check_service(st: &AppState, service: Option<&str>) -> Result<(), Response> {
    let reg = &st.config.customer_registry;
    match service {
        Some(s) if s == reg.service || s.eq_ignore_ascii_case(&reg.login_server) => Ok(()),
        Some(s) => Err(bad_request(&format!("invalid service '{s}'"))),
        None => Err(bad_request("service is required")),
    }
}

/// An AAD token for the registry: ours, for an accepted audience, of the configured identity
/// (or the deployer), and (when given) of the named tenant.
fn check_aad_for_registry(st: &AppState, token: &str, tenant: Option<&str>) -> Result<Claims, Response> {
    let claims = check_aad(st, Some(token), crate::listeners::ACR_AUTH.audiences)
        .map_err(|f| unauthorized(&format!("the access token is not valid: {f:?}")))?;
    if tenant.is_some_and(|t| !t.is_empty() && Some(t) != claim_str(&claims, "tid")) {
        return Err(unauthorized("the access token was issued for another tenant"));
    }
    let oid = claim_str(&claims, "oid");
    let deployer = st.config.identity.deployer.as_ref().map(|d| d.principal_id.as_str());
    if oid != Some(st.config.identity.principal_id.as_str()) && (deployer.is_none() || oid != deployer) {
        return Err(unauthorized("the identity has no access to this registry"));
    }
    Ok(claims)
}

fn issue_refresh_token(st: &AppState, aad: &Claims) -> String {
    let now = now();
    let cfg = &st.config;
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": claim_str(aad, "oid"),
        "nbf": now,
        "exp": now + REFRESH_LIFETIME_SECS,
        "iat": now,
        "iss": cfg.customer_registry.issuer,
        "aud": cfg.customer_registry.service,
        "version": "1.0",
        "grant_type": "refresh_token",
        "appid": claim_str(aad, "appid"),
        "tenant": claim_str(aad, "tid"),
        "permissions": {"actions": ["read", "write", "delete"]},
        "roles": [],
    });
    st.signer.sign(&st.signer.x5c_header(), &claims)
}

/// A refresh token this service issued and that has not expired.
fn check_refresh_token(st: &AppState, token: &str) -> Result<Claims, Response> {
    let claims = st.signer.verify(token).map_err(|_| unauthorized("the refresh token is not valid"))?;
    let ok = claim_str(&claims, "grant_type") == Some("refresh_token")
        && claim_str(&claims, "iss") == Some(st.config.customer_registry.issuer.as_str())
        && claim_i64(&claims, "exp").is_some_and(|e| e > now());
    if ok {
        Ok(claims)
    } else {
        Err(unauthorized("the refresh token is not valid or has expired"))
    }
}

/// Parses `repository:<name>:<actions>` / `registry:catalog:*` scopes (each parameter may also
/// hold several, space-separated) into the JWT `access` array, granting what was asked.
/// The registry-token actions the grant table withholds: ACR issues a token without a scope
/// the identity's roles do not cover, and the registry then answers 401 (insufficient scope).
fn withheld(st: &AppState, subject: &str) -> Vec<&'static str> {
    use crate::grants::{Kind, Permission};
    let denies =
        |name: &str| st.grants.denies(&Permission { kind: Kind::Action, name: name.into() }, Some(subject), &st.config);
    let mut out = Vec::new();
    if denies("Microsoft.ContainerRegistry/registries/pull/read") {
        out.push("pull");
    }
    if denies("Microsoft.ContainerRegistry/registries/push/write") {
        out.push("push");
    }
    out
}

fn access_for(scopes: &[&str], withheld: &[&str]) -> Value {
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty() && !withheld.contains(a)).collect();
        access.push(json!({"type": kind, "name": name, "actions": actions}));
    }
    Value::Array(access)
}

/// A registry token for a caller that exchanged its identity's credentials: what its roles do not
/// grant is withheld.
pub(crate) fn issue_access_token(st: &AppState, subject: &str, scopes: &[&str]) -> String {
    sign_access_token(st, subject, scopes, &withheld(st, subject))
}

/// A registry token for one of Azure's own services acting on the registry (the import's copy,
/// the kubelet's pull, a Foundry hosted agent's pull): those are authorised by the operation that
/// started them (`importImage/action`) or their own identity, never by the caller's grants.
pub(crate) fn service_access_token(st: &AppState, subject: &str, scopes: &[&str]) -> String {
    sign_access_token(st, subject, scopes, &[])
}

fn sign_access_token(st: &AppState, subject: &str, scopes: &[&str], withheld: &[&str]) -> String {
    let now = now();
    let reg = &st.config.customer_registry;
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": subject,
        "nbf": now,
        "exp": now + ACCESS_LIFETIME_SECS,
        "iat": now,
        "iss": reg.issuer,
        // A single string: the CNCF registry calls an array "malformed token".
        "aud": reg.service,
        "version": "1.0",
        "access": access_for(scopes, withheld),
    });
    st.signer.sign(&st.signer.x5c_header(), &claims)
}

pub async fn exchange(State(st): State<Shared>, req: Request) -> Response {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_service(&st, field(&form, "service")) {
        return r;
    }
    let claims = match field(&form, "grant_type") {
        Some("access_token") | Some("access_token_refresh_token") => {
            let Some(token) = field(&form, "access_token") else {
                return bad_request("access_token is required");
            };
            match check_aad_for_registry(&st, token, field(&form, "tenant")) {
                Ok(c) => c,
                Err(r) => return r,
            }
        }
        Some("refresh_token") => {
            let Some(token) = field(&form, "refresh_token") else {
                return bad_request("refresh_token is required");
            };
            match check_refresh_token(&st, token) {
                // Re-issue for the same subject: carry the fields the new token needs.
                Ok(c) => {
                    let mut aad = Claims::new();
                    aad.insert("oid".into(), c.get("sub").cloned().unwrap_or(Value::Null));
                    aad.insert("appid".into(), c.get("appid").cloned().unwrap_or(Value::Null));
                    aad.insert("tid".into(), c.get("tenant").cloned().unwrap_or(Value::Null));
                    aad
                }
                Err(r) => return r,
            }
        }
        _ => return bad_request("grant_type must be access_token, access_token_refresh_token or refresh_token"),
    };
    json(StatusCode::OK, json!({"refresh_token": issue_refresh_token(&st, &claims)}))
}

pub async fn token_post(State(st): State<Shared>, req: Request) -> Response {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_service(&st, field(&form, "service")) {
        return r;
    }
    let subject = match field(&form, "grant_type") {
        Some("refresh_token") => match field(&form, "refresh_token").map(|t| check_refresh_token(&st, t)) {
            Some(Ok(c)) => claim_str(&c, "sub").unwrap_or_default().to_owned(),
            Some(Err(r)) => return r,
            None => return bad_request("refresh_token is required"),
        },
        Some("access_token") => {
            match field(&form, "access_token").map(|t| check_aad_for_registry(&st, t, field(&form, "tenant"))) {
                Some(Ok(c)) => claim_str(&c, "oid").unwrap_or_default().to_owned(),
                Some(Err(r)) => return r,
                None => return bad_request("access_token is required"),
            }
        }
        Some("password") => {
            match login(&st, field(&form, "username").unwrap_or(""), field(&form, "password").unwrap_or("")) {
                Ok(s) => s,
                Err(r) => return r,
            }
        }
        _ => return bad_request("grant_type must be refresh_token, access_token or password"),
    };
    let scopes: Vec<&str> = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    let mut resp = json(StatusCode::OK, json!({"access_token": issue_access_token(&st, &subject, &scopes)}));
    // A scope withheld by the grant table is journaled as the refusal it is.
    let asked =
        |a: &str| scopes.iter().any(|s| s.rsplit(':').next().is_some_and(|acts| acts.split(',').any(|x| x == a)));
    if let Some(a) = withheld(&st, &subject).into_iter().find(|a| asked(a)) {
        let name = if a == "pull" { "pull/read" } else { "push/write" };
        resp.extensions_mut().insert(crate::journal::Note {
            mutating: None,
            detail: Some(json!({"denied": format!("Microsoft.ContainerRegistry/registries/{name}")})),
        });
    }
    resp
}

/// Username/password as ACR takes them: the null GUID with a refresh token, or an AAD token
/// (any username) as the password. Returns the subject.
fn login(st: &AppState, username: &str, password: &str) -> Result<String, Response> {
    if username == REFRESH_TOKEN_USER {
        if let Ok(c) = check_refresh_token(st, password) {
            return Ok(claim_str(&c, "sub").unwrap_or_default().to_owned());
        }
    }
    let claims = check_aad_for_registry(st, password, None)?;
    Ok(claim_str(&claims, "oid").unwrap_or_default().to_owned())
}

/// `GET /oauth2/token?service=..&scope=..[&account=..]` with Basic auth (docker, skopeo).
pub async fn token_get(State(st): State<Shared>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let query: Form = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    if let Err(r) = check_service(&st, field(&query, "service")) {
        return r;
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((username, password)) = basic.as_deref().and_then(|b| b.split_once(':')) else {
        return unauthorized("authentication required, visit https://aka.ms/acr/authorization for more information.");
    };
    let subject = match login(&st, username, password) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scopes: Vec<&str> = query.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    let token = issue_access_token(&st, &subject, &scopes);
    json(StatusCode::OK, json!({"token": token, "access_token": token, "expires_in": ACCESS_LIFETIME_SECS}))
}
