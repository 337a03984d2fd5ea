//! The latencies the emulator imposes, one record per long-running operation it starts, for
//! `scripts/bench`'s critical path (`GET /_emulator/latency`).
//!
//! An operation's simulated latency is the least time a client that honours `Retry-After` must
//! wait for it: every poll answered "running" costs one `Retry-After`, and the first poll that
//! can see it done comes one `Retry-After` after the last of them, but not before the plan's
//! minimum duration. What the emulator does for real (an import's copy, a command's helm run) is
//! not simulated and not counted.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::arm::lro::Plan;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulated {
    /// The journal's api name of the request that started it.
    pub api: &'static str,
    /// What it is (`publish`, `draft`, `importImage`, `runCommand`, `hostedAgent`).
    pub operation: &'static str,
    pub resource: String,
    /// Unix milliseconds.
    pub started_ms: u128,
    pub simulated_ms: u128,
}

static LOG: Mutex<Vec<Simulated>> = Mutex::new(Vec::new());

/// The least wait `plan` imposes on a client polling every `retry_after` seconds.
pub fn least_wait(plan: Plan, retry_after: u32) -> Duration {
    let polled = Duration::from_secs(u64::from(retry_after)) * (plan.polls + 1);
    polled.max(plan.min_duration)
}

/// Records an operation that started now.
pub fn record(api: &'static str, operation: &'static str, resource: impl Into<String>, plan: Plan, retry_after: u32) {
    record_for(api, operation, resource, least_wait(plan, retry_after));
}

/// Records an operation that started now and takes `simulated` whatever its client does (a
/// hosted agent's provisioning: no `Retry-After`, the version is polled).
pub fn record_for(api: &'static str, operation: &'static str, resource: impl Into<String>, simulated: Duration) {
    let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let simulated_ms = simulated.as_millis();
    LOG.lock().unwrap().push(Simulated { api, operation, resource: resource.into(), started_ms, simulated_ms });
}

/// Every record, oldest first.
pub fn all() -> Vec<Simulated> {
    LOG.lock().unwrap().clone()
}

pub fn clear() {
    LOG.lock().unwrap().clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_wait_is_the_polls_paced_by_retry_after_or_the_minimum_duration() {
        let plan = |polls, ms| Plan { polls, min_duration: Duration::from_millis(ms) };
        // Two "running" answers, then the third poll sees it done: three waits.
        assert_eq!(least_wait(plan(2, 0), 1), Duration::from_secs(3));
        assert_eq!(least_wait(plan(0, 0), 1), Duration::from_secs(1));
        assert_eq!(least_wait(plan(0, 5_000), 1), Duration::from_secs(5));
        assert_eq!(least_wait(plan(2, 1_500), 1), Duration::from_secs(3));
        assert_eq!(least_wait(plan(3, 0), 0), Duration::ZERO);
    }
}
