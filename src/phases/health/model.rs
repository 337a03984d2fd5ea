//! The health status model, as in ASP.NET Core health checks and Kubernetes probes
//! (field-notes §7): four statuses, required and optional checks, worst-wins aggregation per
//! component and overall. Pure, so the rules are unit-tested.

use serde::Serialize;

/// A status, ordered by severity for worst-wins aggregation: Healthy < Unknown < Degraded <
/// Unhealthy. Unknown ranks above Healthy (a required check that could not decide is not a
/// pass) and below Degraded (it is no evidence of a fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum State {
    Healthy,
    Unknown,
    Degraded,
    Unhealthy,
}

impl State {
    /// The `registry.health_state` enum label.
    pub fn as_db(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Unknown => "unknown",
            State::Degraded => "degraded",
            State::Unhealthy => "unhealthy",
        }
    }

    pub fn from_db(s: &str) -> Option<State> {
        Some(match s {
            "healthy" => State::Healthy,
            "unknown" => State::Unknown,
            "degraded" => State::Degraded,
            "unhealthy" => State::Unhealthy,
            _ => return None,
        })
    }

    /// A status word from an HTTP health body: ASP.NET Core (`Healthy`), the IETF draft
    /// (`pass`/`warn`/`fail`), Spring (`UP`/`DOWN`).
    pub fn from_word(s: &str) -> Option<State> {
        Some(match s.to_ascii_lowercase().as_str() {
            "healthy" | "pass" | "ok" | "up" => State::Healthy,
            "degraded" | "warn" => State::Degraded,
            "unhealthy" | "fail" | "down" | "out_of_service" => State::Unhealthy,
            "unknown" => State::Unknown,
            _ => return None,
        })
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The component (the resource's name) the check belongs to.
    pub component: String,
    /// `dns:<fqdn>`, `tcp:<fqdn>:<port>`, `tls:<fqdn>:<port>` or `service:<what>`.
    pub name: String,
    pub required: bool,
    pub state: State,
    /// What was seen: an address, a status code, a count. Never a secret value.
    pub observed: Option<String>,
    /// Why the check has its state, in one sentence.
    pub reason: String,
    /// The Azure, Postgres or network error code of a failed check.
    pub code: Option<String>,
    pub duration_ms: u64,
}

impl CheckResult {
    /// How much this result weighs on its component: a required check counts as it is; an
    /// optional one can make its component Degraded at most, and an optional Unknown (a check
    /// that does not exist for the service) does not count.
    pub fn contribution(&self) -> State {
        match (self.required, self.state) {
            (true, s) => s,
            (false, State::Unhealthy | State::Degraded) => State::Degraded,
            (false, _) => State::Healthy,
        }
    }

    /// The name `registry.health_status` keeps it under.
    pub fn key(&self) -> String {
        format!("{}/{}", self.component, self.name)
    }
}

/// A component's aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub state: State,
    pub checks: usize,
    /// Checks whose contribution is not Healthy.
    pub failing: usize,
}

/// Worst-wins over the results of one component; a component without checks is Unknown.
pub fn aggregate(results: &[&CheckResult]) -> State {
    results.iter().map(|r| r.contribution()).max().unwrap_or(State::Unknown)
}

/// Groups results by component (in first-seen order) and aggregates each, then overall.
pub fn components(results: &[CheckResult], types: &dyn Fn(&str) -> String) -> (Vec<Component>, State) {
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !names.contains(&r.component.as_str()) {
            names.push(&r.component);
        }
    }
    let comps: Vec<Component> = names
        .iter()
        .map(|n| {
            let mine: Vec<&CheckResult> = results.iter().filter(|r| r.component == *n).collect();
            Component {
                name: (*n).to_owned(),
                resource_type: types(n),
                state: aggregate(&mine),
                checks: mine.len(),
                failing: mine.iter().filter(|r| r.contribution() != State::Healthy).count(),
            }
        })
        .collect();
    let overall = comps.iter().map(|c| c.state).max().unwrap_or(State::Unknown);
    (comps, overall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(component: &str, required: bool, state: State) -> CheckResult {
        CheckResult {
            component: component.into(),
            name: format!("{state:?}"),
            required,
            state,
            observed: None,
            reason: String::new(),
            code: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn the_worst_required_check_wins() {
        assert_eq!(aggregate(&[&r("a", true, State::Healthy), &r("a", true, State::Degraded)]), State::Degraded);
        assert_eq!(aggregate(&[&r("a", true, State::Unknown), &r("a", true, State::Unhealthy)]), State::Unhealthy);
        assert_eq!(aggregate(&[&r("a", true, State::Healthy), &r("a", true, State::Unknown)]), State::Unknown);
        assert_eq!(aggregate(&[]), State::Unknown);
    }

    #[test]
    fn optional_checks_degrade_at_most_and_unknown_ones_do_not_count() {
        assert_eq!(aggregate(&[&r("a", true, State::Healthy), &r("a", false, State::Unhealthy)]), State::Degraded);
        assert_eq!(aggregate(&[&r("a", true, State::Healthy), &r("a", false, State::Unknown)]), State::Healthy);
    }

    #[test]
    fn overall_is_the_worst_component() {
        let results =
            [r("kv", true, State::Healthy), r("st", true, State::Unhealthy), r("srch", false, State::Unknown)];
        let (comps, overall) = components(&results, &|_| "t".into());
        assert_eq!(
            comps.iter().map(|c| (c.name.as_str(), c.state)).collect::<Vec<_>>(),
            [("kv", State::Healthy), ("st", State::Unhealthy), ("srch", State::Healthy)]
        );
        assert_eq!(overall, State::Unhealthy);
    }

    #[test]
    fn http_status_words() {
        assert_eq!(State::from_word("Healthy"), Some(State::Healthy));
        assert_eq!(State::from_word("warn"), Some(State::Degraded));
        assert_eq!(State::from_word("DOWN"), Some(State::Unhealthy));
        assert_eq!(State::from_word("purple"), None);
    }
}
