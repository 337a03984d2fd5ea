//! What every Azure client retries, and for how long.
//!
//! One type decides for all of them, so "is this retryable?" has one answer and one set of tests.
//! The policy never sleeps itself; it returns a [`Decision`] and the caller waits. That keeps it a
//! pure function of the outcome, testable without a clock or a network.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered.
    Status {
        status: u16,
        /// The Azure error code from the body (`error.code`) or `x-ms-error-code`.
        code: Option<String>,
        /// `Retry-After`, when the service sent one.
        retry_after: Option<Duration>,
    },
    /// The request never got an answer.
    Transport(TransportFault),
}

impl Outcome {
    /// An attempt the caller has already judged final (its result is not an HTTP answer to
    /// classify, e.g. no token could be had): the policy says [`Decision::Done`].
    pub fn settled() -> Outcome {
        Outcome::Status { status: 200, code: None, retry_after: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFault {
    /// The connection could not be opened (refused, DNS, TLS handshake to a live peer excluded).
    Connect,
    /// The peer closed or reset the connection before answering.
    Reset,
    /// No answer within the per-request timeout.
    Timeout,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The attempt succeeded, or failed in a way the caller handles (e.g. 404, 409).
    Done,
    /// Wait, then send the same request again.
    Retry(Duration),
    /// The identity probably lacks a role assignment that is still propagating: wait, get a
    /// fresh token (ARM caches authorization per token), and try again.
    WaitForRbac(Duration),
    /// Stop; the error is final.
    GiveUp,
}

/// Error codes that mean "this principal is not (yet) authorized here" — as opposed to a bad or
/// expired token. Right after a role assignment these clear up within minutes.
const RBAC_CODES: &[&str] = &[
    "AuthorizationFailed",
    "AuthorizationPermissionMismatch",
    "LinkedAuthorizationFailed",
    "Forbidden",
    // Key Vault's innererror code under `Forbidden` (the error core reads the inner code first).
    "ForbiddenByRbac",
    "AuthorizationFailure",
    // Foundry's data plane: "The principal ... lacks the required data action ...".
    "PermissionDenied",
];

/// Statuses that mean "try again later" whatever the code says. ARM documents 429 as retryable
/// regardless of its code (e.g. Network's `RetryableErrorDueToAnotherOperation`). Registries
/// and the SDK clients read this same list through [`is_retried_status`].
const RETRY_STATUSES: &[u16] = &[408, 429, 500, 502, 503, 504];

/// Whether `status` is retried whatever its code: the one list every client shares.
pub fn is_retried_status(status: u16) -> bool {
    RETRY_STATUSES.contains(&status)
}

/// The longest `Retry-After` we honour as given; beyond it the service is effectively down for
/// this run and waiting longer only hides that.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of throttling, server errors and transport faults.
    pub max_retries: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// How long 401/403 authorization failures are waited out as RBAC propagation.
    pub rbac_deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            rbac_deadline: Duration::from_secs(900),
        }
    }
}

/// Per-request retry state: how many retries so far, and since when we have been waiting on RBAC.
#[derive(Debug)]
pub struct Attempts {
    pub retries: u32,
    pub rbac_waited: Duration,
    backoff: backon::ExponentialBackoff,
    rbac_backoff: backon::ExponentialBackoff,
}

impl RetryPolicy {
    pub fn start(&self) -> Attempts {
        let builder = |max: Duration| {
            ExponentialBuilder::default()
                .with_min_delay(self.min_delay)
                .with_max_delay(max)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build()
        };
        Attempts {
            retries: 0,
            rbac_waited: Duration::ZERO,
            backoff: builder(self.max_delay),
            // RBAC propagation takes tens of seconds to minutes; polling faster than every 15 s
            // only burns the principal's read quota.
            rbac_backoff: builder(self.max_delay.min(Duration::from_secs(15))),
        }
    }

    /// Decides what to do after `outcome`. `idempotent` is false for a request that must not be
    /// repeated blindly after a transport fault (the first attempt may have been applied).
    pub fn decide(&self, outcome: &Outcome, idempotent: bool, state: &mut Attempts) -> Decision {
        match outcome {
            Outcome::Status { status, .. } if (200..400).contains(status) => Decision::Done,
            Outcome::Status { status, code, .. } if is_authorization_failure(*status, code.as_deref()) => {
                if state.rbac_waited >= self.rbac_deadline {
                    return Decision::GiveUp;
                }
                let wait = state.rbac_backoff.next().unwrap_or(self.max_delay);
                let wait = wait.min(self.rbac_deadline - state.rbac_waited).max(Duration::from_millis(1));
                state.rbac_waited += wait;
                Decision::WaitForRbac(wait)
            }
            Outcome::Status { status, retry_after, .. } if RETRY_STATUSES.contains(status) => {
                self.retry(state, *retry_after)
            }
            Outcome::Status { .. } => Decision::Done,
            Outcome::Transport(TransportFault::Connect) => self.retry(state, None),
            Outcome::Transport(TransportFault::Reset | TransportFault::Timeout) if idempotent => {
                self.retry(state, None)
            }
            Outcome::Transport(_) => Decision::GiveUp,
        }
    }

    fn retry(&self, state: &mut Attempts, retry_after: Option<Duration>) -> Decision {
        if state.retries >= self.max_retries {
            return Decision::GiveUp;
        }
        state.retries += 1;
        let backoff = state.backoff.next().unwrap_or(self.max_delay);
        Decision::Retry(retry_after.map(|r| r.min(MAX_RETRY_AFTER)).unwrap_or(backoff))
    }
}

/// Waiting for something that takes a while — a long-running operation, a lease another runner
/// holds, a recovered secret becoming readable: growing intervals, capped, within a deadline.
/// Pure like [`RetryPolicy::decide`]: the caller passes the time already spent and sleeps itself.
#[derive(Debug, Clone)]
pub struct Poll {
    pub deadline: Duration,
    first: Duration,
    max: Duration,
    polls: u32,
}

impl Poll {
    pub fn new(deadline: Duration, first: Duration, max: Duration) -> Poll {
        Poll { deadline, first, max, polls: 0 }
    }

    /// Polls of a long-running operation: most here finish in seconds, so start at half a
    /// second and settle at 5 s.
    pub fn operation(deadline: Duration) -> Poll {
        Poll::new(deadline, Duration::from_millis(500), Duration::from_secs(5))
    }

    /// How long to wait before the next look, given the time `elapsed` since the wait began and
    /// the service's `Retry-After` (which wins, within the deadline). `None` once the deadline
    /// is reached: the caller reports the real time waited.
    pub fn next(&mut self, elapsed: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        if elapsed >= self.deadline {
            return None;
        }
        let grown = self.first.saturating_mul(1u32 << self.polls.min(16)).min(self.max);
        self.polls += 1;
        let wait = retry_after.map(|r| r.min(MAX_RETRY_AFTER)).unwrap_or(grown);
        Some(wait.min(self.deadline - elapsed).max(Duration::from_millis(1)))
    }
}

/// A 403 with an RBAC code, or a bare 401: a refused token (e.g. expired in flight) is fixed by a
/// fresh one, and the RBAC deadline bounds how often we try.
pub fn is_authorization_failure(status: u16, code: Option<&str>) -> bool {
    status == 401 || (status == 403 && code.is_some_and(|c| RBAC_CODES.contains(&c)))
}

/// Parses `Retry-After` in its delta-seconds form (the only form ARM, Storage and Key Vault send).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, retry_after: Option<u64>) -> Outcome {
        Outcome::Status { status, code: code.map(str::to_owned), retry_after: retry_after.map(Duration::from_secs) }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            rbac_deadline: Duration::from_secs(60),
        }
    }

    /// The list of what is retried, in one place.
    #[test]
    fn retries_throttling_server_errors_and_connection_faults() {
        let p = policy();
        for o in [
            status(408, None, None),
            status(429, Some("TooManyRequests"), None),
            status(429, Some("RetryableErrorDueToAnotherOperation"), None),
            status(500, Some("InternalServerError"), None),
            status(502, None, None),
            status(503, Some("ServiceUnavailable"), None),
            status(504, Some("GatewayTimeout"), None),
            Outcome::Transport(TransportFault::Connect),
            Outcome::Transport(TransportFault::Reset),
            Outcome::Transport(TransportFault::Timeout),
        ] {
            assert!(matches!(p.decide(&o, true, &mut p.start()), Decision::Retry(_)), "{o:?} should be retried");
        }
    }

    #[test]
    fn does_not_retry_success_or_permanent_client_errors() {
        let p = policy();
        for o in [
            status(200, None, None),
            status(201, None, None),
            status(202, None, None),
            status(204, None, None),
            status(400, Some("InvalidApiVersionParameter"), None),
            status(404, Some("ResourceNotFound"), None),
            status(409, Some("Conflict"), None),
            status(403, Some("RequestDisallowedByPolicy"), None),
            status(412, Some("ConditionNotMet"), None),
        ] {
            assert_eq!(p.decide(&o, true, &mut p.start()), Decision::Done, "{o:?} must not be retried");
        }
    }

    #[test]
    fn rbac_failures_wait_until_the_deadline_then_give_up() {
        let p = policy();
        let mut s = p.start();
        let o = status(403, Some("AuthorizationFailed"), None);
        let mut waited = Duration::ZERO;
        loop {
            match p.decide(&o, true, &mut s) {
                Decision::WaitForRbac(d) => waited += d,
                Decision::GiveUp => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(waited, p.rbac_deadline, "waits exactly up to the deadline");
        // RBAC waits do not use up the retry budget for throttling.
        assert_eq!(s.retries, 0);
        for code in [
            "AuthorizationPermissionMismatch",
            "Forbidden",
            "ForbiddenByRbac",
            "LinkedAuthorizationFailed",
            "PermissionDenied",
        ] {
            assert!(
                matches!(p.decide(&status(403, Some(code), None), true, &mut p.start()), Decision::WaitForRbac(_)),
                "{code}"
            );
        }
        assert!(matches!(
            p.decide(&status(401, Some("InvalidAuthenticationToken"), None), true, &mut p.start()),
            Decision::WaitForRbac(_)
        ));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = policy();
        assert_eq!(
            p.decide(&status(429, None, Some(7)), true, &mut p.start()),
            Decision::Retry(Duration::from_secs(7))
        );
        assert_eq!(p.decide(&status(503, None, Some(100_000)), true, &mut p.start()), Decision::Retry(MAX_RETRY_AFTER));
    }

    #[test]
    fn gives_up_after_max_retries_with_growing_bounded_delays() {
        let p = policy();
        let mut s = p.start();
        let o = status(500, None, None);
        let mut delays = Vec::new();
        while let Decision::Retry(d) = p.decide(&o, true, &mut s) {
            delays.push(d);
        }
        assert_eq!(delays.len(), 3);
        assert!(delays.iter().all(|d| *d <= p.max_delay * 2), "{delays:?}");
        assert_eq!(p.decide(&o, true, &mut s), Decision::GiveUp);
    }

    #[test]
    fn non_idempotent_requests_are_not_repeated_after_an_ambiguous_fault() {
        let p = policy();
        assert_eq!(p.decide(&Outcome::Transport(TransportFault::Reset), false, &mut p.start()), Decision::GiveUp);
        assert_eq!(p.decide(&Outcome::Transport(TransportFault::Timeout), false, &mut p.start()), Decision::GiveUp);
        // A connection that never opened cannot have been applied.
        assert!(matches!(
            p.decide(&Outcome::Transport(TransportFault::Connect), false, &mut p.start()),
            Decision::Retry(_)
        ));
    }

    #[test]
    fn polls_grow_to_their_cap_honour_retry_after_and_stop_at_the_deadline() {
        let mut p = Poll::new(Duration::from_secs(10), Duration::from_millis(500), Duration::from_secs(2));
        let waits: Vec<_> = (0..5).map(|_| p.next(Duration::ZERO, None).unwrap()).collect();
        assert_eq!(waits, [500, 1000, 2000, 2000, 2000].map(Duration::from_millis));
        assert_eq!(p.next(Duration::from_secs(1), Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
        // The last wait ends at the deadline, never past it.
        assert_eq!(
            p.next(Duration::from_millis(9_500), Some(Duration::from_secs(3))),
            Some(Duration::from_millis(500))
        );
        assert_eq!(p.next(Duration::from_secs(10), None), None);
        assert_eq!(
            Poll::operation(Duration::from_secs(60)).next(Duration::ZERO, None),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn one_list_of_retried_statuses() {
        let retried: Vec<u16> = (100..600).filter(|s| is_retried_status(*s)).collect();
        assert_eq!(retried, RETRY_STATUSES);
    }

    #[test]
    fn parses_retry_after_seconds() {
        assert_eq!(parse_retry_after(" 17 "), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
