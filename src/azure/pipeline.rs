//! The transport of the hand-written Azure clients: a bearer token bound to one origin, error
//! bodies parsed into [`AzureError`], around the shared [`request_loop`] (retries, `Retry-After`,
//! RBAC-propagation waits). The SDK clients (Blob, Key Vault) go around the same loop through
//! [`super::sdk::RetryAdapter`], the registry clients through `oci::transport`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response};
use url::Url;

use super::identity::Tokens;
use super::permission::Permission;
use super::request_loop::{self, Attempt, Exchange};
use super::retry::{is_authorization_failure, parse_retry_after, Outcome, RetryPolicy, TransportFault};
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
    /// The service answers a missing role with a 403 that carries no code (AI Search does): such
    /// a 403 is waited out as RBAC propagation like a coded one.
    pub bare_403_is_rbac: bool,
    /// What the call needs granted (see `azure::permission`).
    pub permission: &'static Permission,
    /// The exact string, where `permission` is a pattern (discovery's `*/read`).
    pub concrete: Option<String>,
    /// What polling the long-running operation this request may start needs; `None` where the
    /// request starts none.
    pub poll: Option<&'static Permission>,
}

impl Request {
    pub fn new(method: Method, url: Url, resource: impl Into<String>, permission: &'static Permission) -> Request {
        let idempotent = method != Method::POST && method != Method::PATCH;
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent,
            resource: resource.into(),
            timeout: None,
            bare_403_is_rbac: false,
            permission,
            concrete: None,
            poll: None,
        }
    }

    /// The exact permission string, where the declaration is a pattern.
    pub fn concrete(mut self, name: String) -> Request {
        self.concrete = Some(name);
        self
    }

    /// What polling the operation this request starts needs (its `Location` or status resource).
    pub fn polled_with(mut self, permission: &'static Permission) -> Request {
        self.poll = Some(permission);
        self
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

    /// See [`Request::bare_403_is_rbac`].
    pub fn bare_403_is_rbac(mut self) -> Request {
        self.bare_403_is_rbac = true;
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
                    host: host_of(&req.url),
                    allowed: a.origin.ascii_serialization(),
                });
            }
        }
        let tokens = self.inner.tokens.clone();
        let refresh = move || tokens.refresh();
        let exchange = Exchange {
            policy: &self.inner.policy,
            resource: &req.resource,
            idempotent: req.idempotent,
            refresh: Some(&refresh),
            permission: req.permission,
            concrete: req.concrete.as_deref(),
        };
        let done = request_loop::run(exchange, || self.attempt(audience, &req)).await;
        match done.value {
            Sent::Answered(resp) => Ok(resp),
            Sent::Refused(e) => Err(e),
            Sent::Failed { status, code, message } => Err(match status {
                // A 403 that names no action (AI Search answers a bare 403) is still the
                // identity lacking what this call declares: name that, so the hint can.
                _ if is_authorization_failure(status, Some(&code))
                    || (status == 403
                        && super::error::action_in_message(&message).is_none()
                        && self.declared(&req).is_some()) =>
                {
                    AzureError::Unauthorized {
                        status,
                        code,
                        message,
                        resource: req.resource.clone(),
                        waited: done.rbac_waited,
                    }
                    .needing(self.declared(&req))
                }
                _ => AzureError::Service { status, code, message, resource: req.resource.clone() },
            }),
            Sent::Unanswered(fault) => Err(AzureError::Transport {
                host: host_of(&req.url),
                detail: format!("{fault:?} after {} retries", done.retries),
                resource: req.resource.clone(),
            }),
        }
    }

    /// The Azure RBAC permission `req` declares, as its exact string (none for a pattern, or for a
    /// call Azure RBAC does not guard).
    fn declared<'r>(&self, req: &'r Request) -> Option<&'r str> {
        let name = req.concrete.as_deref().unwrap_or(req.permission.name);
        (req.permission.kind != super::permission::Kind::NoRbac && !name.contains('*')).then_some(name)
    }

    async fn attempt(&self, audience: Option<&Audience>, req: &Request) -> Attempt<Sent> {
        let mut builder = self.inner.http.request(req.method.clone(), req.url.clone()).headers(req.headers.clone());
        if let Some(a) = audience {
            match self.inner.tokens.token(&a.scope).await {
                Ok(token) => builder = builder.header(AUTHORIZATION, format!("Bearer {}", token.expose())),
                // No token, no request: the credential error is final for this call.
                Err(e) => return Attempt::new(Outcome::settled(), Sent::Refused(e)),
            }
        }
        if let Some((body, content_type)) = &req.body {
            builder = builder.header(CONTENT_TYPE, *content_type).body(body.clone());
        } else if req.method == Method::POST || req.method == Method::PUT {
            builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        if let Some(t) = req.timeout {
            builder = builder.timeout(t);
        }
        match builder.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                if status < 400 {
                    return Attempt::new(Outcome::Status { status, code: None, retry_after }, Sent::Answered(resp));
                }
                let header_code =
                    resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let body = resp.bytes().await.unwrap_or_default();
                let (code, message) = parse_error(status, header_code.as_deref(), &body);
                let bare = code.is_empty() || code == format!("Http{status}");
                let judged =
                    if status == 403 && bare && req.bare_403_is_rbac { "Forbidden".to_owned() } else { code.clone() };
                Attempt {
                    outcome: Outcome::Status { status, code: Some(judged), retry_after },
                    message: Some(message.clone()),
                    value: Sent::Failed { status, code, message },
                }
            }
            Err(e) => {
                tracing::debug!(resource = %req.resource, error = %error_chain(&e), "request failed without a response");
                let fault = classify(&e);
                Attempt::new(Outcome::Transport(fault), Sent::Unanswered(fault))
            }
        }
    }
}

/// What one attempt of [`Pipeline::send`] came back with.
enum Sent {
    Answered(Response),
    Failed {
        status: u16,
        code: String,
        message: String,
    },
    Unanswered(TransportFault),
    /// Not sent at all (no token).
    Refused(AzureError),
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned() + &url.port().map(|p| format!(":{p}")).unwrap_or_default()
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
