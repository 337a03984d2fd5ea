//! Glue that puts the Azure SDK crates (Blob, Key Vault) on the same transport and retry policy as
//! our hand-written clients: one CA configuration, one list of what is retried.

use std::sync::Arc;

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, Method, Request, RetryOptions, Transport};

use super::identity::Tokens;
use super::retry::{parse_retry_after, Decision, Outcome, RetryPolicy, TransportFault};

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

/// Runs [`RetryPolicy`] inside an SDK pipeline. It sits before the SDK's authorization policy, so
/// every retry asks for a token again.
#[derive(Debug)]
pub struct RetryAdapter {
    policy: RetryPolicy,
    tokens: Arc<Tokens>,
}

#[async_trait::async_trait]
impl Policy for RetryAdapter {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let idempotent = !matches!(request.method(), Method::Post | Method::Patch);
        let mut attempts = self.policy.start();
        let mut announced = false;
        loop {
            let result = next[0].send(ctx, request, &next[1..]).await;
            let outcome = match &result {
                Ok(resp) => {
                    let header = |name: &str| {
                        resp.headers()
                            .iter()
                            .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.as_str().to_owned())
                    };
                    Outcome::Status {
                        status: u16::from(resp.status()),
                        code: header("x-ms-error-code"),
                        retry_after: header("retry-after").as_deref().and_then(parse_retry_after),
                    }
                }
                Err(e) if e.http_status().is_none() => Outcome::Transport(TransportFault::Reset),
                Err(_) => return result,
            };
            match self.policy.decide(&outcome, idempotent, &mut attempts) {
                Decision::Done | Decision::GiveUp => return result,
                Decision::Retry(wait) => {
                    tracing::info!(url = %request.url().path(), wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Decision::WaitForRbac(wait) => {
                    let scope = request.url().path().to_owned();
                    if !announced {
                        tracing::warn!(scope = %scope, "waiting for role assignment on {scope}");
                        announced = true;
                    }
                    tokio::time::sleep(wait).await;
                    self.tokens.refresh();
                }
            }
        }
    }
}
