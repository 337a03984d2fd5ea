//! The one request loop: every Azure call (hand-written, through the SDK crates) and every
//! registry call goes around it.
//!
//! The loop owns what must not differ between paths: [`RetryPolicy::decide`] on each outcome,
//! the `retrying` line, the sleep, and the RBAC-propagation wait with its single
//! `waiting for role assignment on <scope>` line and a fresh token after each wait. How a request
//! is sent and how its failure is turned into an error stay with each client: the loop only sees
//! an [`Outcome`] and hands back whatever the last attempt produced.

use std::future::Future;
use std::time::Duration;

use super::permission::{self, Permission};
use super::retry::{Decision, Outcome, RetryPolicy};

/// How one logical request is retried.
pub struct Exchange<'a> {
    pub policy: &'a RetryPolicy,
    /// What the request is about, for log lines (an ARM id, a blob, a registry path).
    pub resource: &'a str,
    /// False when repeating after an ambiguous transport fault could apply the request twice.
    pub idempotent: bool,
    /// Called after each RBAC wait to drop cached tokens (ARM authorizes per token). `None`
    /// where a 401/403 is the caller's to handle: a registry's 401 means a stale registry token,
    /// which the client replaces at once, not a role assignment still propagating.
    pub refresh: Option<&'a (dyn Fn() + Send + Sync)>,
    /// What the request needs granted: no request goes around the loop without one.
    pub permission: &'a Permission,
    /// The exact string, where `permission` is a pattern (`*/read` for any type's read).
    pub concrete: Option<&'a str>,
}

/// What one attempt produced.
pub struct Attempt<T> {
    pub outcome: Outcome,
    /// The service's error message, where an RBAC failure names its scope.
    pub message: Option<String>,
    /// Handed back to the caller when the loop stops.
    pub value: T,
}

impl<T> Attempt<T> {
    pub fn new(outcome: Outcome, value: T) -> Attempt<T> {
        Attempt { outcome, message: None, value }
    }
}

/// The last attempt, and what the loop spent getting there.
pub struct Finished<T> {
    pub value: T,
    pub outcome: Outcome,
    pub retries: u32,
    pub rbac_waited: Duration,
}

/// Runs `attempt` until the policy says stop.
pub async fn run<T, F, Fut>(x: Exchange<'_>, mut attempt: F) -> Finished<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    permission::record(x.permission, x.concrete, x.resource);
    let mut state = x.policy.start();
    let mut announced = false;
    // What was really slept on RBAC: without `refresh` the policy's count is not waited.
    let mut rbac_waited = Duration::ZERO;
    loop {
        let a = attempt().await;
        match x.policy.decide(&a.outcome, x.idempotent, &mut state) {
            Decision::Retry(wait) => {
                tracing::info!(resource = %x.resource, wait_ms = wait.as_millis() as u64, outcome = %describe(&a.outcome), "retrying");
                tokio::time::sleep(wait).await;
            }
            Decision::WaitForRbac(wait) if x.refresh.is_some() => {
                let scope = a.message.as_deref().and_then(scope_in_message).unwrap_or_else(|| x.resource.to_owned());
                if !announced {
                    tracing::warn!(scope = %scope, "waiting for role assignment on {scope}");
                    announced = true;
                } else {
                    tracing::info!(scope = %scope, waited_s = rbac_waited.as_secs(), "still waiting for role assignment on {scope}");
                }
                tokio::time::sleep(wait).await;
                rbac_waited += wait;
                if let Some(refresh) = x.refresh {
                    refresh();
                }
            }
            Decision::Done | Decision::GiveUp | Decision::WaitForRbac(_) => {
                return Finished { value: a.value, outcome: a.outcome, retries: state.retries, rbac_waited }
            }
        }
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Status { status, code, .. } => format!("HTTP {status} {}", code.as_deref().unwrap_or("")),
        Outcome::Transport(f) => format!("{f:?}"),
    }
}

/// ARM's AuthorizationFailed message names the scope: "... over scope '/subscriptions/...' or ...".
pub(crate) fn scope_in_message(message: &str) -> Option<String> {
    let start = message.find("over scope '")? + "over scope '".len();
    let end = message[start..].find('\'')?;
    Some(message[start..start + end].to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::azure::retry::TransportFault;

    const P: Permission = Permission::action("x/read", "x");

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            rbac_deadline: Duration::from_millis(20),
        }
    }

    fn status(status: u16, code: &str) -> Outcome {
        Outcome::Status { status, code: Some(code.into()), retry_after: None }
    }

    #[test]
    fn finds_the_scope_in_an_authorization_failure() {
        let m = "The client 'x' with object id 'y' does not have authorization to perform action 'a' over scope '/subscriptions/s/resourceGroups/rg' or the scope is invalid.";
        assert_eq!(scope_in_message(m).as_deref(), Some("/subscriptions/s/resourceGroups/rg"));
        assert_eq!(scope_in_message("nope"), None);
    }

    #[tokio::test]
    async fn retries_until_success_and_hands_back_the_last_attempt() {
        let n = AtomicU32::new(0);
        let p = policy();
        let x = Exchange { policy: &p, resource: "r", idempotent: true, refresh: None, permission: &P, concrete: None };
        let done = run(x, || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let o = if i < 2 { Outcome::Transport(TransportFault::Reset) } else { status(200, "") };
            Attempt::new(o, i)
        })
        .await;
        assert_eq!((done.value, done.retries), (2, 2));
    }

    #[tokio::test]
    async fn rbac_waits_refresh_tokens_until_the_deadline() {
        let refreshed = AtomicU32::new(0);
        let refresh = || {
            refreshed.fetch_add(1, Ordering::SeqCst);
        };
        let p = policy();
        let x = Exchange {
            policy: &p,
            resource: "r",
            idempotent: true,
            refresh: Some(&refresh),
            permission: &P,
            concrete: None,
        };
        let done = run(x, || async { Attempt::new(status(403, "AuthorizationFailed"), ()) }).await;
        assert!(
            done.rbac_waited >= p.rbac_deadline && done.rbac_waited < p.rbac_deadline * 2,
            "{:?}",
            done.rbac_waited
        );
        assert!(refreshed.load(Ordering::SeqCst) >= 1);
        assert_eq!(done.retries, 0, "RBAC waits do not use the retry budget");
    }

    #[tokio::test]
    async fn without_a_refresh_an_authorization_failure_is_handed_back_at_once() {
        let n = AtomicU32::new(0);
        let p = policy();
        let x = Exchange { policy: &p, resource: "r", idempotent: true, refresh: None, permission: &P, concrete: None };
        let done = run(x, || async {
            n.fetch_add(1, Ordering::SeqCst);
            Attempt::new(status(401, "UNAUTHORIZED"), ())
        })
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(done.rbac_waited, Duration::ZERO);
    }
}
