//! The one request loop every hand-written Azure client goes through: bearer token bound to one
//! origin, retries by [`RetryPolicy`], `Retry-After`, RBAC-propagation waits with a progress line,
//! and error bodies parsed into [`AzureError`]. The SDK clients (Blob, Key Vault) get the same
//! policy through [`super::sdk::RetryAdapter`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response};
use url::Url;

use super::identity::Tokens;
use super::retry::{parse_retry_after, Decision, Outcome, RetryPolicy, TransportFault};
use super::{error::parse_error, AzureError};

/// A token audience and the only origin its tokens may be sent to.
#[derive(Debug, Clone)]
pub struct Audience {
    pub scope: String,
    pub origin: url::Origin,
}

impl Audience {
    pub fn new(scope: impl Into<String>, endpoint: &Url) -> Audience {
        Audience { scope: scope.into(), origin: endpoint.origin() }
    }
}

/// One request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<(Bytes, &'static str)>,
    /// False when repeating the request after an ambiguous failure could apply it twice.
    pub idempotent: bool,
    /// What the request is about, for errors and progress lines (an ARM id, a blob name...).
    pub resource: String,
    pub timeout: Option<Duration>,
}

impl Request {
    pub fn new(method: Method, url: Url, resource: impl Into<String>) -> Request {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent,
            resource: resource.into(),
            timeout: None,
        }
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Request {
        self.body = Some((Bytes::from(serde_json::to_vec(body).expect("serializable body")), "application/json"));
        self
    }

    pub fn body(mut self, bytes: Bytes, content_type: &'static str) -> Request {
        self.body = Some((bytes, content_type));
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Request {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// Marks a POST that is safe to repeat (the target state is checked, e.g. `importImage` by
    /// digest in `NoForce` mode).
    pub fn idempotent(mut self) -> Request {
        self.idempotent = true;
        self
    }
}

#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
    policy: RetryPolicy,
}

impl Pipeline {
    pub fn new(http: reqwest::Client, tokens: Arc<Tokens>, policy: RetryPolicy) -> Pipeline {
        Pipeline { inner: Arc::new(Inner { http, tokens, policy }) }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.inner.tokens
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Sends `req` with a token for `audience` (or none), retrying per the policy. Returns the
    /// first 2xx/3xx response; anything else becomes an [`AzureError`].
    pub async fn send(&self, audience: Option<&Audience>, req: Request) -> Result<Response, AzureError> {
        if let Some(a) = audience {
            if req.url.origin() != a.origin {
                return Err(AzureError::TokenHostMismatch {
                    scope: a.scope.clone(),
                    host: req.url.host_str().unwrap_or_default().to_owned()
                        + &req.url.port().map(|p| format!(":{p}")).unwrap_or_default(),
                    allowed: a.origin.ascii_serialization(),
                });
            }
        }
        let policy = &self.inner.policy;
        let mut attempts = policy.start();
        let mut announced_rbac = false;
        loop {
            let mut builder = self.inner.http.request(req.method.clone(), req.url.clone()).headers(req.headers.clone());
            if let Some(a) = audience {
                let token = self.inner.tokens.token(&a.scope).await?;
                builder = builder.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
            }
            if let Some((body, content_type)) = &req.body {
                builder = builder.header(CONTENT_TYPE, *content_type).body(body.clone());
            } else if req.method == Method::POST || req.method == Method::PUT {
                builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            if let Some(t) = req.timeout {
                builder = builder.timeout(t);
            }

            let (outcome, response, error_body) = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after =
                        resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                    if status < 400 {
                        (Outcome::Status { status, code: None, retry_after }, Some(resp), None)
                    } else {
                        let header_code =
                            resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let body = resp.bytes().await.unwrap_or_default();
                        let (code, message) = parse_error(status, header_code.as_deref(), &body);
                        (
                            Outcome::Status { status, code: Some(code.clone()), retry_after },
                            None,
                            Some((status, code, message)),
                        )
                    }
                }
                Err(e) => {
                    tracing::debug!(resource = %req.resource, error = %error_chain(&e), "request failed without a response");
                    (Outcome::Transport(classify(&e)), None, None)
                }
            };

            match policy.decide(&outcome, req.idempotent, &mut attempts) {
                Decision::Done => {
                    if let Some(resp) = response {
                        return Ok(resp);
                    }
                    let (status, code, message) = error_body.expect("an error outcome has a body");
                    return Err(AzureError::Service { status, code, message, resource: req.resource.clone() });
                }
                Decision::Retry(wait) => {
                    tracing::info!(resource = %req.resource, wait_ms = wait.as_millis() as u64, outcome = %describe(&outcome), "retrying");
                    tokio::time::sleep(wait).await;
                }
                Decision::WaitForRbac(wait) => {
                    let scope = error_body
                        .as_ref()
                        .and_then(|(_, _, m)| scope_in_message(m))
                        .unwrap_or_else(|| req.resource.clone());
                    if !announced_rbac {
                        tracing::warn!(scope = %scope, "waiting for role assignment on {scope}");
                        announced_rbac = true;
                    } else {
                        tracing::info!(scope = %scope, waited_s = attempts.rbac_waited.as_secs(), "still waiting for role assignment on {scope}");
                    }
                    tokio::time::sleep(wait).await;
                    self.inner.tokens.refresh();
                }
                Decision::GiveUp => {
                    return Err(match (outcome, error_body) {
                        (Outcome::Status { status: status @ (401 | 403), .. }, Some((_, code, message))) => {
                            AzureError::Unauthorized {
                                status,
                                code,
                                message,
                                resource: req.resource.clone(),
                                waited: attempts.rbac_waited,
                            }
                        }
                        (_, Some((status, code, message))) => {
                            AzureError::Service { status, code, message, resource: req.resource.clone() }
                        }
                        (Outcome::Transport(fault), None) => AzureError::Transport {
                            host: req.url.host_str().unwrap_or_default().to_owned()
                                + &req.url.port().map(|p| format!(":{p}")).unwrap_or_default(),
                            detail: format!("{fault:?} after {} retries", attempts.retries),
                            resource: req.resource.clone(),
                        },
                        (Outcome::Status { status, .. }, None) => AzureError::Service {
                            status,
                            code: format!("Http{status}"),
                            message: "gave up".into(),
                            resource: req.resource.clone(),
                        },
                    });
                }
            }
        }
    }
}

/// How a request that got no answer failed; shared with the registry transport.
pub(crate) fn classify(e: &reqwest::Error) -> TransportFault {
    if e.is_timeout() {
        TransportFault::Timeout
    } else if e.is_connect() {
        TransportFault::Connect
    } else {
        TransportFault::Reset
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Status { status, code, .. } => format!("HTTP {status} {}", code.as_deref().unwrap_or("")),
        Outcome::Transport(f) => format!("{f:?}"),
    }
}

/// The full cause chain of an error on one line; reqwest's top-level message alone says little.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// ARM's AuthorizationFailed message names the scope: "... over scope '/subscriptions/...' or ...".
fn scope_in_message(message: &str) -> Option<String> {
    let start = message.find("over scope '")? + "over scope '".len();
    let end = message[start..].find('\'')?;
    Some(message[start..start + end].to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_scope_in_an_authorization_failure() {
        let m = "The client 'x' with object id 'y' does not have authorization to perform action 'a' over scope '/subscriptions/s/resourceGroups/rg' or the scope is invalid.";
        assert_eq!(super::scope_in_message(m).as_deref(), Some("/subscriptions/s/resourceGroups/rg"));
        assert_eq!(super::scope_in_message("nope"), None);
    }
}
