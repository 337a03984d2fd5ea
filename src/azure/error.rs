//! Errors from talking to Azure, typed so callers can branch on them and the last stderr line can
//! name the resource and the Azure error code.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// The service answered with an error that retrying will not fix: a 4xx other than
    /// throttling, or a throttle/5xx that outlasted every retry.
    #[error("{resource}: {code} (HTTP {status}): {message}")]
    Service { status: u16, code: String, message: String, resource: String },

    /// Authorization still failed when the RBAC-propagation deadline ran out: the identity lacks a
    /// role assignment on `resource`, or it never propagated.
    #[error("{resource}: {code} (HTTP {status}) for {waited:?} while waiting for a role assignment: {message}")]
    Unauthorized { status: u16, code: String, message: String, resource: String, waited: Duration },

    /// No answer: the endpoint could not be reached, reset the connection, or timed out, after
    /// every retry.
    #[error("{resource}: cannot reach {host}: {detail}")]
    Transport { host: String, detail: String, resource: String },

    /// The managed identity endpoint would not give a token for `scope`.
    #[error("cannot get a token for {scope}: {detail}")]
    Credential { scope: String, detail: String },

    /// A request would have carried a token for `scope` to a host it was not issued for — e.g. a
    /// long-running-operation URL or a registry challenge pointing elsewhere. Refused, not sent.
    #[error("refused to send a {scope} token to {host}: it is only sent to {allowed}")]
    TokenHostMismatch { scope: String, host: String, allowed: String },

    /// A long-running operation finished as Failed or Canceled.
    #[error("{resource}: operation {status}: {code}: {message}")]
    OperationFailed { status: String, code: String, message: String, resource: String },

    /// Something did not finish within its deadline.
    #[error("{resource}: still not done after {after:?}")]
    Timeout { resource: String, after: Duration },

    /// The service answered 2xx with a body that is not what its API promises.
    #[error("{resource}: unexpected response: {detail}")]
    Decode { resource: String, detail: String },
}

impl AzureError {
    /// What went wrong, without the resource and the code (an error line names those once).
    /// An authorization failure that outlasted the RBAC deadline names the action the
    /// identity lacks, when the service said it, and how to fix it.
    pub fn detail(&self) -> String {
        match self {
            AzureError::Service { status, message, .. } => format!("HTTP {status}: {message}"),
            AzureError::Unauthorized { status, message, waited, .. } => {
                let waited = if waited.is_zero() {
                    String::new()
                } else {
                    format!(", still after {}s of waiting for role assignments to propagate", waited.as_secs().max(1))
                };
                match action_in_message(message) {
                    Some(action) => format!(
                        "HTTP {status}{waited}: the identity may not perform {action}; hint: assign it a role that grants {action}{} on this scope or one above it (a new assignment can take up to 10 minutes; VIBEDATA_RBAC_DEADLINE_SECS waits longer)",
                        crate::roles::narrowest_for(action).map(|r| format!(" ({} {})", r.name, r.id)).unwrap_or_default()
                    ),
                    None => format!(
                        "HTTP {status}{waited}: {message}; hint: the identity lacks a role on this resource, or its assignment has not propagated yet (VIBEDATA_RBAC_DEADLINE_SECS waits longer)"
                    ),
                }
            }
            AzureError::Transport { host, detail, .. } => format!("cannot reach {host}: {detail}"),
            AzureError::Credential { detail, .. } => format!("cannot get a token: {detail}"),
            AzureError::TokenHostMismatch { .. } => self.to_string(),
            AzureError::OperationFailed { status, message, .. } => format!("operation {status}: {message}"),
            AzureError::Timeout { after, .. } => format!("still not done after {after:?}"),
            AzureError::Decode { detail, .. } => format!("unexpected response: {detail}"),
        }
    }

    /// The Azure error code, or a stable name of our own for failures that have none.
    pub fn code(&self) -> &str {
        match self {
            AzureError::Service { code, .. }
            | AzureError::Unauthorized { code, .. }
            | AzureError::OperationFailed { code, .. } => code,
            AzureError::Transport { .. } => "ServiceUnreachable",
            AzureError::Credential { .. } => "CredentialUnavailable",
            AzureError::TokenHostMismatch { .. } => "TokenHostMismatch",
            AzureError::Timeout { .. } => "OperationTimedOut",
            AzureError::Decode { .. } => "UnexpectedResponse",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            AzureError::Service { resource, .. }
            | AzureError::Unauthorized { resource, .. }
            | AzureError::Transport { resource, .. }
            | AzureError::OperationFailed { resource, .. }
            | AzureError::Timeout { resource, .. }
            | AzureError::Decode { resource, .. } => resource,
            AzureError::Credential { scope, .. } => scope,
            AzureError::TokenHostMismatch { host, .. } => host,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Service { status, .. } | AzureError::Unauthorized { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// An authorization failure whose service named no action (Blob's
    /// `AuthorizationPermissionMismatch`, AI Search's bare 403) names the one the call declared,
    /// so that [`AzureError::detail`] can say what is missing and which role grants it.
    pub fn needing(self, declared: Option<&str>) -> AzureError {
        match (self, declared) {
            (AzureError::Unauthorized { status, code, message, resource, waited }, Some(action))
                if action_in_message(&message).is_none() =>
            {
                let message = format!("{message}; this call needs permission to perform action '{action}'");
                AzureError::Unauthorized { status, code, message, resource, waited }
            }
            (e, _) => e,
        }
    }
}

/// The action an authorization failure names: ARM's "perform action '…'", Key Vault's
/// "Action: '…'", Foundry's "lacks the required data action `…`" (quoted or not).
pub(crate) fn action_in_message(message: &str) -> Option<&str> {
    let markers = ["perform action '", "Action: '", "required data action `", "required data action "];
    let (start, marker) = markers.iter().find_map(|m| message.find(m).map(|i| (i, *m)))?;
    let start = start + marker.len();
    let end = message[start..].find(['\'', '`', ' '])?;
    Some(&message[start..start + end]).filter(|a| !a.is_empty())
}

/// The error body shapes Azure services send. ARM and Key Vault wrap it in `error`; Automation's
/// older API versions and some RPs put `code`/`message` at the top level; the ACR data plane uses
/// the Docker registry's `errors` array. We accept all of them.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Option<Vec<ErrorDetail>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub innererror: Option<Box<ErrorDetail>>,
}

/// Extracts `(code, message)` from an error response. Key Vault's `innererror.code` (e.g.
/// `ObjectIsDeletedButRecoverable`) is more specific than its outer `Conflict`, so it wins.
pub fn parse_error(status: u16, header_code: Option<&str>, body: &[u8]) -> (String, String) {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail = parsed
        .error
        .or_else(|| parsed.errors.and_then(|mut e| if e.is_empty() { None } else { Some(e.remove(0)) }))
        .unwrap_or(ErrorDetail { code: parsed.code, message: parsed.message, innererror: None });
    let code = detail
        .innererror
        .as_ref()
        .and_then(|i| i.code.clone())
        .or(detail.code)
        .or_else(|| header_code.map(str::to_owned))
        .unwrap_or_else(|| format!("Http{status}"));
    let message = detail.message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {status} with no body")
        } else {
            text.chars().take(300).collect()
        }
    });
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_failure_names_the_action_and_the_fix_once() {
        let e = AzureError::Unauthorized {
            status: 403,
            code: "AuthorizationFailed".into(),
            message: "The client 'c' with object id 'o' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/read' over scope '/subscriptions/s/resourceGroups/rg' or the scope is invalid.".into(),
            resource: "/subscriptions/s/resourceGroups/rg".into(),
            waited: Duration::from_secs(2),
        };
        let d = e.detail();
        assert!(!d.contains("/subscriptions/s/resourceGroups/rg"), "the line names the resource, not the detail: {d}");
        assert!(!d.contains("AuthorizationFailed"), "{d}");
        assert!(d.contains("may not perform Microsoft.Resources/subscriptions/resourceGroups/read; hint:"), "{d}");
        assert!(d.contains("still after 2s"), "{d}");
    }

    #[test]
    fn arm_error_body() {
        let (c, m) =
            parse_error(403, None, br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' ..."}}"#);
        assert_eq!((c.as_str(), m.as_str()), ("AuthorizationFailed", "The client 'x' ..."));
    }

    #[test]
    fn key_vault_inner_error_wins() {
        let (c, _) = parse_error(
            409,
            Some("Conflict"),
            br#"{"error":{"code":"Conflict","message":"...","innererror":{"code":"ObjectIsDeletedButRecoverable"}}}"#,
        );
        assert_eq!(c, "ObjectIsDeletedButRecoverable");
    }

    #[test]
    fn top_level_and_registry_shapes_and_empty_bodies() {
        assert_eq!(parse_error(400, None, br#"{"code":"BadRequest","message":"m"}"#).0, "BadRequest");
        assert_eq!(
            parse_error(401, None, br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#).0,
            "UNAUTHORIZED"
        );
        assert_eq!(parse_error(503, Some("ServerBusy"), b"").0, "ServerBusy");
        assert_eq!(parse_error(502, None, b""), ("Http502".to_owned(), "HTTP 502 with no body".to_owned()));
    }
}
