//! Glue that puts the Azure SDK crates (Blob, Key Vault) on the same transport and retry policy as
//! our hand-written clients: one CA configuration, one list of what is retried.

use std::sync::Arc;

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, ClientOptions, Context, Method, Request, RetryOptions, Transport};

use super::error::parse_error;
use super::identity::Tokens;
use super::request_loop::{self, Attempt, Exchange};
use super::retry::{parse_retry_after, Outcome, RetryPolicy, TransportFault};

/// Client options for an SDK client: our `reqwest` client as transport, the SDK's own retry off,
/// and [`RetryAdapter`] in its place.
pub fn client_options(http: &reqwest::Client, policy: &RetryPolicy, tokens: &Arc<Tokens>) -> ClientOptions {
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::none(),
        per_call_policies: vec![Arc::new(RetryAdapter { policy: policy.clone(), tokens: tokens.clone() })],
        ..Default::default()
    }
}

/// Runs the shared request loop inside an SDK pipeline. It sits before the SDK's authorization
/// policy, so every retry asks for a token again.
#[derive(Debug)]
pub struct RetryAdapter {
    policy: RetryPolicy,
    tokens: Arc<Tokens>,
}

#[async_trait::async_trait]
impl Policy for RetryAdapter {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let idempotent = !matches!(request.method(), Method::Post | Method::Patch);
        let resource = request.url().path().to_owned();
        let tokens = self.tokens.clone();
        let refresh = move || tokens.refresh();
        let permission = super::permission::declared();
        let exchange = Exchange {
            policy: &self.policy,
            resource: &resource,
            idempotent,
            refresh: Some(&refresh),
            permission,
            concrete: None,
        };
        // The loop needs the request for every attempt; the SDK hands it to us mutably once.
        let request = tokio::sync::Mutex::new(request);
        let done = request_loop::run(exchange, || async {
            let mut request = request.lock().await;
            attempt(next[0].send(ctx, &mut request, &next[1..]).await).await
        })
        .await;
        done.value
    }
}

/// Classifies one SDK attempt. An error response's body is read for its code (Key Vault and
/// Storage put the RBAC code there as well as in `x-ms-error-code`), then handed on unchanged.
async fn attempt(result: PolicyResult) -> Attempt<PolicyResult> {
    let resp = match result {
        Ok(resp) => resp,
        Err(e) if e.http_status().is_none() => return Attempt::new(Outcome::Transport(TransportFault::Reset), Err(e)),
        Err(e) => return Attempt::new(Outcome::settled(), Err(e)),
    };
    let status = u16::from(resp.status());
    // Read before the body: a borrow of the response must not live across an await.
    let (retry_after, header_code) = {
        let header = |name: &str| {
            resp.headers()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str().to_owned())
        };
        (header("retry-after").as_deref().and_then(parse_retry_after), header("x-ms-error-code"))
    };
    if status < 400 {
        return Attempt::new(Outcome::Status { status, code: None, retry_after }, Ok(resp));
    }
    let (status_code, headers, body) = resp.deconstruct();
    let bytes = match body.collect().await {
        Ok(b) => b,
        Err(e) => return Attempt::new(Outcome::Transport(TransportFault::Reset), Err(e)),
    };
    let (code, message) = parse_error(status, header_code.as_deref(), &bytes);
    Attempt {
        outcome: Outcome::Status { status, code: Some(code), retry_after },
        message: Some(message),
        value: Ok(AsyncRawResponse::from_bytes(status_code, headers, bytes)),
    }
}
