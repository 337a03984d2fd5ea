//! One retry loop for every registry request, on the shared [`RetryPolicy`], and the mapping of
//! `oci-client`'s errors onto [`OciError`].
//!
//! Registry calls go around the shared request loop without its RBAC wait: a registry 401 means
//! our registry token is stale or wrong, which a fresh token fixes at once or never, so the
//! caller handles it (one fresh token, then [`OciError::Denied`]).

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use reqwest::header::RETRY_AFTER;

use super::OciError;
use crate::azure::error::parse_error;
use crate::azure::permission::Permission;
use crate::azure::pipeline::{classify, error_chain};
use crate::azure::request_loop::{self, Attempt, Exchange};
use crate::azure::retry::{is_retried_status, parse_retry_after, Outcome, RetryPolicy, TransportFault};

/// Sends the request `build` makes, again after throttling, 5xx and transport faults per
/// `policy`, honouring `Retry-After`. Returns any other response, 4xx included, for the caller to
/// interpret.
pub(crate) async fn send(
    policy: &RetryPolicy,
    registry: &str,
    resource: &str,
    idempotent: bool,
    permission: &'static Permission,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, OciError> {
    let exchange = Exchange { policy, resource, idempotent, refresh: None, permission, concrete: None };
    let done = request_loop::run(exchange, || async {
        match build().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                if !is_retried_status(status) {
                    return Attempt::new(Outcome::Status { status, code: None, retry_after }, Ok(resp));
                }
                let body = resp.bytes().await.unwrap_or_default();
                let (code, message) = parse_error(status, None, &body);
                let err = OciError::Registry {
                    registry: registry.into(),
                    resource: resource.into(),
                    status,
                    code: code.clone(),
                    message: message.clone(),
                };
                Attempt {
                    outcome: Outcome::Status { status, code: Some(code), retry_after },
                    message: Some(message),
                    value: Err(err),
                }
            }
            Err(e) => {
                let err = OciError::Transport {
                    registry: registry.into(),
                    resource: resource.into(),
                    detail: error_chain(&e),
                };
                Attempt::new(Outcome::Transport(classify(&e)), Err(err))
            }
        }
    })
    .await;
    done.value
}

/// Runs `op` again while it fails transiently, per `policy`. For whole operations that cannot be
/// retried request by request: an `oci-client` call (it does not retry and drops `Retry-After`,
/// so the policy's backoff is used), or a streamed blob copy that broke halfway.
pub(crate) async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    permission: &'static Permission,
    mut op: F,
) -> Result<T, OciError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciError>>,
{
    let exchange = Exchange { policy, resource: what, idempotent: true, refresh: None, permission, concrete: None };
    let done = request_loop::run(exchange, || {
        let fut = op();
        async move {
            let result = fut.await;
            let outcome = match &result {
                Err(e @ OciError::Registry { status, code, .. }) if e.is_transient() => {
                    Outcome::Status { status: *status, code: Some(code.clone()), retry_after: None }
                }
                Err(e) if e.is_transient() => Outcome::Transport(TransportFault::Reset),
                _ => Outcome::settled(),
            };
            Attempt::new(outcome, result)
        }
    })
    .await;
    done.value
}

/// Maps an `oci-client` error. `repository` names the content for digest errors.
pub(crate) fn from_oci(e: OciDistributionError, registry: &str, repository: &str, resource: &str) -> OciError {
    let reg = || registry.to_owned();
    let res = || resource.to_owned();
    match e {
        OciDistributionError::ServerError { code, message, .. } => from_status(code, &message, registry, resource),
        OciDistributionError::UnauthorizedError { .. } => {
            OciError::Denied { registry: reg(), resource: res(), status: 401, code: "UNAUTHORIZED".into() }
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.into_iter().next();
            let message = first.as_ref().map(|e| e.message.clone()).unwrap_or_default();
            let (status, code) = match first.map(|e| e.code) {
                Some(OciErrorCode::Unauthorized) => (401, "UNAUTHORIZED".to_owned()),
                Some(OciErrorCode::Denied) => (403, "DENIED".to_owned()),
                Some(OciErrorCode::Toomanyrequests) => (429, "TOOMANYREQUESTS".to_owned()),
                Some(
                    c @ (OciErrorCode::BlobUnknown
                    | OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound),
                ) => (404, format!("{c:?}")),
                Some(OciErrorCode::Other(c)) => (400, c),
                Some(c) => (400, format!("{c:?}")),
                None => (400, "Http400".to_owned()),
            };
            match status {
                401 | 403 => OciError::Denied { registry: reg(), resource: res(), status, code },
                404 => OciError::NotFound { registry: reg(), resource: res() },
                _ => OciError::Registry { registry: reg(), resource: res(), status, code, message },
            }
        }
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            OciError::DigestMismatch { repository: repository.to_owned(), expected, actual }
        }
        OciDistributionError::IoError(io) => from_io(io, registry, repository, resource),
        OciDistributionError::RequestError(e) => {
            OciError::Transport { registry: reg(), resource: res(), detail: error_chain(&e) }
        }
        other => OciError::Registry {
            registry: reg(),
            resource: res(),
            status: 0,
            code: "ProtocolError".into(),
            message: other.to_string(),
        },
    }
}

/// A stream error: our own digest check, `oci-client`'s, or a broken connection.
pub(crate) fn from_io(io: std::io::Error, registry: &str, repository: &str, resource: &str) -> OciError {
    let mismatch = |expected: &str, actual: &str| OciError::DigestMismatch {
        repository: repository.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    };
    if let Some(inner) = io.get_ref() {
        if let Some(m) = inner.downcast_ref::<super::stream::Mismatch>() {
            return mismatch(&m.expected, &m.actual);
        }
        if let Some(DigestError::VerificationError { expected, actual }) = inner.downcast_ref::<DigestError>() {
            return mismatch(expected, actual);
        }
    }
    OciError::Transport { registry: registry.to_owned(), resource: resource.to_owned(), detail: error_chain(&io) }
}

/// An error status with its body, from a direct call or `oci-client`'s `ServerError`.
pub(crate) fn from_status(status: u16, body: &str, registry: &str, resource: &str) -> OciError {
    let (code, message) = parse_error(status, None, body.as_bytes());
    match status {
        401 | 403 => OciError::Denied { registry: registry.into(), resource: resource.into(), status, code },
        404 => OciError::NotFound { registry: registry.into(), resource: resource.into() },
        _ => OciError::Registry { registry: registry.into(), resource: resource.into(), status, code, message },
    }
}

/// How long a registry token is good for: its JWT `exp` (unverified: only the issuer can judge
/// the token; we only avoid using it past its end), else `expires_in`, else a minute.
pub(crate) fn token_lifetime(token: &str, expires_in: Option<u64>) -> Duration {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    if let Some(exp) = jwt_exp(token) {
        return Duration::from_secs(exp.saturating_sub(now));
    }
    Duration::from_secs(expires_in.unwrap_or(60))
}

fn jwt_exp(token: &str) -> Option<u64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetime_reads_the_jwt_exp() {
        use base64::Engine;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 600));
        let jwt = format!("e30.{payload}.sig");
        let d = token_lifetime(&jwt, Some(5));
        assert!(d > Duration::from_secs(590) && d <= Duration::from_secs(600), "{d:?}");
        assert_eq!(token_lifetime("opaque", Some(300)), Duration::from_secs(300));
        assert_eq!(token_lifetime("opaque", None), Duration::from_secs(60));
    }

    #[test]
    fn registry_error_envelopes_map_to_our_errors() {
        let e = from_status(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#, "r", "x");
        assert!(matches!(e, OciError::NotFound { .. }));
        let e =
            from_status(401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#, "r", "x");
        assert!(matches!(e, OciError::Denied { status: 401, .. }));
        let e = from_status(
            400,
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#,
            "r",
            "x",
        );
        assert_eq!(e.code(), "DIGEST_INVALID");
        assert!(!e.is_transient());
        assert!(from_status(503, "", "r", "x").is_transient());
    }
}
