//! Azure Resource Manager: the management endpoint.
//!
//! ARM paths are case-insensitive, so instead of axum's (case-sensitive) router the provider
//! table (`crate::providers`) matches them, once, in the request middleware; [`dispatch`] runs
//! the row it found. Order of checks, as ARM does it: bearer token → subscription → route →
//! api-version (the row's) → the operation.

pub mod aks;
pub mod automation;
pub mod deployments;
pub mod endpoints;
pub mod envelope;
pub mod groups;
pub mod import;
pub mod inventory;
pub mod jsonc;
pub mod lro;
pub mod network;
pub mod operations;
pub mod platform;
pub mod projects;
pub mod resources;
pub mod subscriptions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::auth::{check_aad, utc, AuthFailure};
use crate::config::{Config, LroSettings};
use crate::http::{arm_error, bearer, origin, query_map};
use crate::providers::{self, types, Api, Handler, Matched, Versions};
use crate::state::Shared;
use crate::tokens::now;

/// Microsoft.Resources: 2021-04-01 is what the specs name; 2025-04-01 is what
/// `azure-mgmt-resource` 26 sends; the ones between are real versions clients still pin.
pub const RESOURCES_API_VERSIONS: &[&str] =
    &["2025-04-01", "2025-03-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-09-01", "2021-04-01"];
/// Deployments additionally accept 2026-06-01, the default of `azure-mgmt-resource-deployments` 2.0
/// (deployments moved out of `azure-mgmt-resource` in its 24.x line).
pub const DEPLOYMENTS_API_VERSIONS: &[&str] = &[
    "2026-06-01",
    "2025-04-01",
    "2025-03-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-09-01",
    "2021-04-01",
];

/// Everything ARM remembers between requests.
pub struct ArmState {
    inner: Mutex<ArmData>,
}

pub struct ArmData {
    /// Lowercased name → group.
    pub groups: BTreeMap<String, groups::Group>,
    /// (lowercased group, lowercased name) → deployment.
    pub deployments: HashMap<(String, String), deployments::Deployment>,
    pub operations: lro::Operations<operations::ArmOp>,
    pub inventory: Vec<inventory::Resource>,
    pub registry_network: inventory::RegistryNetwork,
    pub lro: LroSettings,
}

impl ArmState {
    pub fn new(cfg: &Config) -> ArmState {
        let mut groups = BTreeMap::new();
        groups.insert(cfg.resource_group.to_ascii_lowercase(), groups::Group::new(&cfg.resource_group, &cfg.location));
        ArmState {
            inner: Mutex::new(ArmData {
                groups,
                deployments: HashMap::new(),
                operations: lro::Operations::default(),
                inventory: inventory::seed(cfg),
                registry_network: inventory::RegistryNetwork::default(),
                lro: cfg.lro,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, ArmData> {
        self.inner.lock().unwrap()
    }
}

/// One ARM request, parsed once for all handlers.
pub struct ArmRequest {
    pub method: Method,
    /// Path segments as sent (names keep their case for responses).
    pub segs: Vec<String>,
    /// The same, lowercased, for matching.
    pub lower: Vec<String>,
    pub query: HashMap<String, String>,
    /// `https://host:port`: ARM answers with absolute URLs on its own host.
    pub origin: String,
    /// The request's `Content-Type`, if any (the runbook draft content is a raw body).
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The provider table's `{name}` segments: name → index into `segs`.
    pub captures: Vec<(&'static str, usize)>,
    /// The claims of the caller's bearer token (checked by the dispatcher).
    pub caller: Option<crate::tokens::Claims>,
}

impl ArmRequest {
    /// The path segment the matched row calls `{name}`, as sent (empty when it has none).
    pub fn param(&self, name: &str) -> &str {
        self.captures.iter().find(|(n, _)| *n == name).map_or("", |(_, i)| self.segs[*i].as_str())
    }

    /// The resource type a generic path names: the namespace after `providers` and the type
    /// after it, as sent, with its row of the type table (`None` when the table lacks it).
    pub fn named_type(&self) -> Option<(&str, &str, Option<&'static types::ResourceType>)> {
        let i = self.lower.iter().position(|s| s == "providers")?;
        let (ns, rtype) = (self.segs.get(i + 1)?, self.segs.get(i + 2)?);
        Some((ns.as_str(), rtype.as_str(), types::find(&format!("{ns}/{rtype}"))))
    }

    pub fn api_version(&self) -> &str {
        self.query.get("api-version").map(String::as_str).unwrap_or("")
    }

    /// Checks the api-version against the operation's list, with ARM's two error shapes.
    pub fn require_api_version(&self, supported: &[&str]) -> Result<(), Response> {
        match self.query.get("api-version") {
            None => Err(arm_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )),
            Some(v) if !supported.contains(&v.as_str()) => Err(arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                format!("The api-version '{v}' is invalid. The supported versions are '{}'.", supported.join(",")),
            )),
            Some(_) => Ok(()),
        }
    }
}

pub async fn dispatch(State(st): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                "The request content could not be read.",
            )
        }
    };
    let caller = match authenticate(&st, &parts.headers) {
        Ok(claims) => claims,
        Err(resp) => return resp,
    };
    let segs = providers::segments(parts.uri.path());
    // The middleware's lookup; the same lookup again for a router used without it (tests).
    let matched = parts
        .extensions
        .get::<Matched>()
        .cloned()
        .or_else(|| providers::find(&parts.method, &segs.iter().map(String::as_str).collect::<Vec<_>>()));
    let req = ArmRequest {
        method: parts.method.clone(),
        lower: segs.iter().map(|s| s.to_ascii_lowercase()).collect(),
        segs,
        query: query_map(parts.uri.query()),
        origin: origin(&parts.headers, &parts.uri),
        content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        body,
        captures: matched.as_ref().map(|m| m.captures.clone()).unwrap_or_default(),
        caller: Some(caller),
    };
    if req.lower.len() >= 2
        && req.lower[0] == "subscriptions"
        && req.lower[1] != st.config.subscription_id.to_ascii_lowercase()
    {
        return arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", req.segs[1]),
        );
    }
    let mut resp = route(&st, &req, matched.as_ref().map(|m| m.api));
    // ARM reports the remaining request budget on every answer; clients may log it.
    let budget = if req.method == Method::GET || req.method == Method::HEAD {
        "x-ms-ratelimit-remaining-subscription-reads"
    } else {
        "x-ms-ratelimit-remaining-subscription-writes"
    };
    resp.headers_mut().insert(budget, HeaderValue::from_static("11999"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-ms-request-id", id.clone());
        resp.headers_mut().insert("x-ms-correlation-request-id", id);
    }
    resp
}

/// Runs the provider table's row: its api-version check, then its handler.
fn route(st: &Shared, req: &ArmRequest, row: Option<&'static Api>) -> Response {
    let Some(Api { handler: Handler::Arm(handler), versions, .. }) = row else {
        return no_route(req);
    };
    let supported = match *versions {
        Versions::Unchecked => None,
        Versions::Of(name) => Some(types::versions_of(name)),
        Versions::Named => match req.named_type() {
            Some((_, _, Some(t))) => Some(t.versions),
            Some((ns, rtype, None)) => return invalid_resource_type(ns, rtype, req.api_version()),
            None => return no_route(req),
        },
    };
    if let Some(supported) = supported {
        if let Err(r) = req.require_api_version(supported) {
            return r;
        }
    }
    handler(st, req)
}

/// ARM's answer for a type its namespace does not have (or a namespace it does not know).
pub fn invalid_resource_type(ns: &str, rtype: &str, api_version: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidResourceType",
        format!(
            "The resource type '{rtype}' could not be found in the namespace '{ns}' for api version '{api_version}'."
        ),
    )
}

/// What ARM answers for a path no resource provider serves.
pub fn no_route(req: &ArmRequest) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "No HTTP resource was found that matches the request URI '{}{}'.",
            req.origin,
            req.segs.iter().fold(String::new(), |acc, s| acc + "/" + s)
        ),
    )
}

/// ARM's 401s, with the `WWW-Authenticate` ARM sends (no `claims`, so SDKs do not treat it as
/// a CAE challenge).
fn authenticate(st: &Shared, headers: &HeaderMap) -> Result<crate::tokens::Claims, Response> {
    let failure = match check_aad(st, bearer(headers), crate::listeners::ARM.audiences) {
        Ok(claims) => return Ok(claims),
        Err(f) => f,
    };
    let (code, message) = match failure {
        AuthFailure::Missing => ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.".to_owned()),
        AuthFailure::Invalid | AuthFailure::NotYetValid => ("InvalidAuthenticationToken", "The access token is invalid.".to_owned()),
        AuthFailure::Expired { exp } | AuthFailure::Revoked { exp } => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                utc(exp.min(now() - 1)),
                utc(now())
            ),
        ),
        AuthFailure::WrongAudience(aud) => (
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        ),
    };
    let mut resp = arm_error(StatusCode::UNAUTHORIZED, code, message);
    let challenge = format!(
        "Bearer authorization_uri=\"https://login.windows.net/{}\", error=\"invalid_token\", error_description=\"{}\"",
        st.config.tenant_id,
        if code == "AuthenticationFailed" {
            "The authentication failed because of missing 'Authorization' header."
        } else {
            "The access token is invalid."
        }
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Err(resp)
}
