//! Fault injection: tests arm faults through `POST /_emulator/faults`; the request middleware
//! asks [`Faults::decide`] for every emulated-service request.
//!
//! Status codes follow the contract (429, 500, 403, reset); the bodies are each service's own
//! error shape, because the point is to exercise real clients' error handling: ARM's
//! `{"error":{...}}`, Key Vault's (with `innererror`), the ACR token service's `{"errors":[...]}`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::arm::inventory;
use crate::config::Config;
use crate::http::{acr_error, arm_error, kv_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Throttle,
    ServerError,
    Reset,
    Latency,
    Rbac,
    /// A permanent error: `status` (default 400) with the service's own error body and `code`
    /// (default `BadRequest`), which no client should retry.
    Status,
    /// AKS runCommand: the POST answers `KubernetesPerformanceError` (the command pod did not
    /// start within 30 s), with `status` (default 400).
    KubernetesPerformance,
    /// AKS runCommand: the command is accepted but ends `provisioningState: Failed` with
    /// `reason` (default `ImagePullBackoff`, the spec's example) and no exit code.
    CommandFailed,
    /// AKS runCommand: the POST is refused with `status` (default 400) and the ARM error `code`
    /// (default `MissingAADClusterToken`), the answers of the service's own request checks that
    /// a consistent cluster never gives a well-behaved client.
    Refused,
}

/// A runCommand fault the AKS handler takes when a command is submitted (not a response the
/// middleware gives instead of the handler's).
#[derive(Debug, Clone)]
pub enum CommandFault {
    KubernetesPerformance { status: StatusCode },
    Failed { reason: String },
    Refused { status: StatusCode, code: String },
}

/// The body of `POST /_emulator/faults`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    pub api: String,
    pub kind: Kind,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub seconds: Option<u64>,
    /// Not in the contract's list but handy for concurrent tests: the fault only hits requests
    /// whose path contains this (case-insensitively), e.g. a test's own resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// `kubernetes-performance`: the status of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `command-failed`: the result's `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `refused`: the ARM error code of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `rbac`: the window of `seconds` opens at the first request it matches instead of now, as
    /// an assignment made just before the call would be (an extension, for tests that cannot time
    /// a phase's first call).
    #[serde(default)]
    pub from_first_call: bool,
}

struct Armed {
    spec: FaultSpec,
    /// Requests still to be hit; `None` = unlimited (latency without a count, rbac).
    remaining: Option<u32>,
    /// rbac faults end at a time, not after a count.
    until: Option<Instant>,
    /// An rbac window that opens at its first matching request (`fromFirstCall`).
    deferred: Option<Duration>,
}

impl Armed {
    fn live(&self) -> bool {
        self.remaining != Some(0) && self.until.is_none_or(|t| Instant::now() < t)
    }

    fn matches(&self, api: &str, path: &str) -> bool {
        if let Some(part) = &self.spec.path_contains {
            if !path.to_ascii_lowercase().contains(&part.to_ascii_lowercase()) {
                return false;
            }
        }
        let want = self.spec.api.as_str();
        want == "*"
            || want == api
            || want
                .strip_suffix(".*")
                .is_some_and(|prefix| api.starts_with(prefix) && api[prefix.len()..].starts_with('.'))
    }
}

impl Kind {
    fn is_command_fault(self) -> bool {
        matches!(self, Kind::KubernetesPerformance | Kind::CommandFailed | Kind::Refused)
    }
}

/// What to do to one request.
pub enum Action {
    Throttle { retry_after: u64 },
    ServerError,
    Reset,
    Rbac,
    Status { status: StatusCode, code: String },
}

#[derive(Default)]
pub struct Decision {
    pub delay: Option<Duration>,
    pub action: Option<Action>,
}

#[derive(Default)]
pub struct Faults {
    armed: Mutex<Vec<Armed>>,
}

impl Faults {
    pub fn arm(&self, spec: FaultSpec) -> Result<(), String> {
        if spec.kind == Kind::Latency && spec.latency_ms.is_none() {
            return Err("a latency fault needs latencyMs".into());
        }
        let window = Duration::from_secs(spec.seconds.unwrap_or(30));
        let (remaining, until, deferred) = match spec.kind {
            Kind::Latency => (spec.count, None, None),
            Kind::Rbac if spec.from_first_call => (None, None, Some(window)),
            Kind::Rbac => (None, Some(Instant::now() + window), None),
            _ => (Some(spec.count.unwrap_or(1)), None, None),
        };
        self.armed.lock().unwrap().push(Armed { spec, remaining, until, deferred });
        Ok(())
    }

    pub fn clear(&self) {
        self.armed.lock().unwrap().clear();
    }

    /// The faults still armed, as JSON (for `GET /_emulator/faults`, handy when a test fails).
    pub fn list(&self) -> Value {
        let armed = self.armed.lock().unwrap();
        Value::Array(
            armed.iter().filter(|a| a.live()).map(|a| json!({"fault": a.spec, "remaining": a.remaining})).collect(),
        )
    }

    /// The next armed command fault for a submitted command (consumed).
    pub fn take_command_fault(&self, api: &str, path: &str) -> Option<CommandFault> {
        let mut armed = self.armed.lock().unwrap();
        armed.retain(Armed::live);
        let fault = armed.iter_mut().find(|f| f.spec.kind.is_command_fault() && f.matches(api, path))?;
        if let Some(n) = fault.remaining.as_mut() {
            *n -= 1;
        }
        let status = fault.spec.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_REQUEST);
        let taken = match fault.spec.kind {
            Kind::KubernetesPerformance => CommandFault::KubernetesPerformance { status },
            Kind::Refused => CommandFault::Refused {
                status,
                code: fault.spec.code.clone().unwrap_or_else(|| "MissingAADClusterToken".into()),
            },
            _ => {
                CommandFault::Failed { reason: fault.spec.reason.clone().unwrap_or_else(|| "ImagePullBackoff".into()) }
            }
        };
        armed.retain(Armed::live);
        Some(taken)
    }

    /// Consumes one hit of every matching fault. Latencies add up with the first blocking fault
    /// (faults apply in the order they were armed).
    pub fn decide(&self, api: &str, path: &str) -> Decision {
        let mut armed = self.armed.lock().unwrap();
        armed.retain(Armed::live);
        let mut decision = Decision::default();
        for fault in armed.iter_mut().filter(|f| !f.spec.kind.is_command_fault() && f.matches(api, path)) {
            let action = match fault.spec.kind {
                Kind::Latency => {
                    let ms = fault.spec.latency_ms.unwrap_or(0);
                    decision.delay = Some(decision.delay.unwrap_or_default() + Duration::from_millis(ms));
                    None
                }
                _ if decision.action.is_some() => continue,
                Kind::Throttle => Some(Action::Throttle { retry_after: fault.spec.retry_after.unwrap_or(1) }),
                Kind::ServerError => Some(Action::ServerError),
                Kind::Reset => Some(Action::Reset),
                Kind::Rbac => {
                    if let Some(window) = fault.deferred.take() {
                        fault.until = Some(Instant::now() + window);
                    }
                    Some(Action::Rbac)
                }
                Kind::Status => Some(Action::Status {
                    status: StatusCode::from_u16(fault.spec.status.unwrap_or(400)).unwrap_or(StatusCode::BAD_REQUEST),
                    code: fault.spec.code.clone().unwrap_or_else(|| "BadRequest".into()),
                }),
                Kind::KubernetesPerformance | Kind::CommandFailed | Kind::Refused => None,
            };
            if action.is_some() {
                decision.action = action;
            }
            if let Some(n) = fault.remaining.as_mut() {
                *n -= 1;
            }
        }
        armed.retain(Armed::live);
        decision
    }
}

/// The response for a blocking fault (not `Reset`, which never answers).
pub fn respond(action: &Action, api: &str, cfg: &Config, method: &Method, path: &str) -> Response {
    let mut resp = match crate::ai_control::fault_response(action, api, cfg, method, path) {
        Some(r) => r,
        None => service_response(action, api, cfg, method, path),
    };
    if let Action::Throttle { retry_after } = action {
        resp.headers_mut().insert("retry-after", HeaderValue::from(*retry_after));
    }
    resp
}

fn service_response(action: &Action, api: &str, cfg: &Config, method: &Method, path: &str) -> Response {
    let is_acr_token = api == "acr.exchange" || api == "acr.token";
    match action {
        Action::Throttle { .. } if api == "keyvault" => kv_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
            None,
        ),
        Action::Throttle { .. } if is_acr_token => {
            acr_error(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", "too many requests")
        }
        Action::Throttle { retry_after } => arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "SubscriptionRequestsThrottled",
            format!(
                "Number of '{}' requests for subscription '{}' actor '{}' exceeded. Please try again after '{}' seconds \
                 after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
                if *method == Method::GET || *method == Method::HEAD { "read" } else { "write" },
                cfg.subscription_id,
                cfg.identity.principal_id,
                retry_after
            ),
        ),
        Action::ServerError if api == "keyvault" => kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An unexpected error occurred while processing the request.",
            None,
        ),
        Action::ServerError if is_acr_token => {
            acr_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal server error")
        }
        Action::ServerError => arm_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!(
                "Encountered internal server error. Diagnostic information: timestamp '{}', subscription id '{}', \
                 tracking id '{}', request correlation id '{}'.",
                crate::http::now_rfc3339(),
                cfg.subscription_id,
                uuid::Uuid::new_v4(),
                uuid::Uuid::new_v4()
            ),
        ),
        Action::Rbac => rbac_denied(api, cfg, method, path),
        Action::Status { status, code } if api == "keyvault" => {
            kv_error(*status, code, "The request was refused (an armed status fault).", None)
        }
        Action::Status { status, code } if is_acr_token => acr_error(*status, code, "refused (an armed status fault)"),
        Action::Status { status, code } => arm_error(*status, code, "The request was refused (an armed status fault)."),
        Action::Reset => unreachable!("reset faults never produce a response"),
    }
}

/// Blob's error answer: the code in `x-ms-error-code` and in the XML body, with the request id
/// and time Blob appends to every message.
pub fn blob_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{}\nTime:{}</Message></Error>",
        uuid::Uuid::new_v4(),
        crate::http::now_rfc3339()
    );
    let mut resp = (status, [(axum::http::header::CONTENT_TYPE, "application/xml")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-ms-error-code", v);
    }
    resp
}

/// 403 as a fresh role assignment that has not propagated yet looks, for the permission the
/// request needs (`crate::grants::required`).
fn rbac_denied(api: &str, cfg: &Config, method: &Method, path: &str) -> Response {
    let segs = crate::providers::segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let need = crate::grants::required(method, &segs, None, api).unwrap_or(crate::grants::Permission {
        kind: crate::grants::Kind::Action,
        name: "Microsoft.Resources/subscriptions/resourceGroups/read".into(),
    });
    denied(api, cfg, method, &need.name, path)
}

/// The service's own answer to a caller without `action`: ARM's `AuthorizationFailed` naming
/// client, action and scope; Key Vault's `Forbidden` + `ForbiddenByRbac` text for the vault; the
/// ACR token service's `DENIED`; AI Search's bare 403; Blob's `AuthorizationPermissionMismatch`
/// (which names no action); Foundry's `401 PermissionDenied` naming the data action.
pub fn denied(api: &str, cfg: &Config, method: &Method, action: &str, path: &str) -> Response {
    if api == "storage.blob" {
        return blob_error(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        );
    }
    if api.starts_with("foundry") {
        return crate::foundry::rbac_denied(cfg, api, method.as_str(), path);
    }
    if api == "keyvault" {
        let vault = inventory::key_vault_name(cfg);
        let resource = format!(
            "/subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}{}",
            cfg.subscription_id,
            cfg.resource_group.to_lowercase(),
            vault,
            path.to_lowercase()
        );
        let message = format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role \
             definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={};\
             xms_mirid={}\r\nAction: '{}'\r\nResource: '{}'\r\nAssignment: \
             (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {};location={}\r\n",
            cfg.identity.client_id,
            cfg.identity.principal_id,
            cfg.issuer(),
            cfg.identity.resource_id,
            action,
            resource,
            vault,
            cfg.location
        );
        return kv_error(StatusCode::FORBIDDEN, "Forbidden", message, Some("ForbiddenByRbac"));
    }
    if api == "acr.exchange" || api == "acr.token" {
        return acr_error(StatusCode::FORBIDDEN, "DENIED", "requested access to the resource is denied");
    }
    if api == "search.indexes" {
        // AI Search answers a missing role with a 403 and no error code.
        return (StatusCode::FORBIDDEN, "").into_response();
    }
    let scope = path.strip_suffix("/resources").unwrap_or(path);
    arm_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{}' over scope '{}' \
             or the scope is invalid. If access was recently granted, please refresh your credentials.",
            cfg.identity.client_id, cfg.identity.principal_id, action, scope
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(api: &str, kind: Kind) -> FaultSpec {
        FaultSpec {
            api: api.into(),
            kind,
            count: None,
            retry_after: None,
            latency_ms: None,
            seconds: None,
            path_contains: None,
            status: None,
            reason: None,
            code: None,
            from_first_call: false,
        }
    }

    #[test]
    fn a_deferred_rbac_window_opens_at_its_first_call_and_a_status_fault_is_permanent() {
        let faults = Faults::default();
        faults.arm(FaultSpec { seconds: Some(0), from_first_call: true, ..spec("keyvault", Kind::Rbac) }).unwrap();
        // Armed long before the call, the window is still there when the call comes...
        std::thread::sleep(Duration::from_millis(20));
        assert!(matches!(faults.decide("keyvault", "/secrets/x").action, Some(Action::Rbac)));
        // ...and, zero seconds long, it has closed by the next.
        assert!(faults.decide("keyvault", "/secrets/x").action.is_none());

        faults
            .arm(FaultSpec { status: Some(404), code: Some("SecretNotFound".into()), ..spec("keyvault", Kind::Status) })
            .unwrap();
        match faults.decide("keyvault", "/secrets/x").action {
            Some(Action::Status { status, code }) => {
                assert_eq!((status.as_u16(), code.as_str()), (404, "SecretNotFound"))
            }
            _ => panic!("a status fault answers its status"),
        }
        assert!(faults.decide("keyvault", "/secrets/x").action.is_none(), "count 1 by default");
    }

    #[test]
    fn counts_scopes_and_wildcards() {
        let faults = Faults::default();
        faults.arm(FaultSpec { count: Some(2), ..spec("arm.resourceGroups", Kind::ServerError) }).unwrap();
        faults.arm(FaultSpec { path_contains: Some("RG-Mine".into()), ..spec("*", Kind::Reset) }).unwrap();
        assert!(faults.decide("keyvault", "/secrets/x").action.is_none());
        assert!(matches!(faults.decide("arm.resourceGroups", "/a").action, Some(Action::ServerError)));
        assert!(matches!(faults.decide("arm.resourceGroups", "/a").action, Some(Action::ServerError)));
        assert!(faults.decide("arm.resourceGroups", "/a").action.is_none());
        assert!(matches!(faults.decide("keyvault", "/x/rg-mine/y").action, Some(Action::Reset)));
        assert!(faults.decide("keyvault", "/x/rg-mine/y").action.is_none());
    }

    #[test]
    fn latency_without_count_stays_and_adds_to_a_blocking_fault() {
        let faults = Faults::default();
        faults.arm(FaultSpec { latency_ms: Some(5), ..spec("arm.*", Kind::Latency) }).unwrap();
        faults.arm(spec("arm.deployments", Kind::Throttle)).unwrap();
        let d = faults.decide("arm.deployments", "/");
        assert_eq!(d.delay, Some(Duration::from_millis(5)));
        assert!(matches!(d.action, Some(Action::Throttle { retry_after: 1 })));
        let d = faults.decide("arm.resources", "/");
        assert_eq!(d.delay, Some(Duration::from_millis(5)));
        assert!(d.action.is_none());
        assert!(faults.decide("keyvault", "/").delay.is_none());
    }
}
