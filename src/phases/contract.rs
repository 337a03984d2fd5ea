//! The phase contract: a plan as a value, then an apply.

use std::any::Any;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};

use super::preflight::Check;
use crate::cloud::Cloud;
use crate::config::{Config, Validator};
use crate::context::Context;
use crate::error::PhaseError;
use crate::sequence::Step;

/// One mutating call on the platform's state (DESIGN §3): planned, or made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What is changed: `image`, `blob`, `runbook`, `migration`, `registry row`, `health status`...
    pub kind: &'static str,
    /// Which one: a tag, a blob name, an ARM id, a file.
    pub resource: String,
    /// What is done to it: `import`, `write`, `publish`, `apply`, `insert`...
    pub action: String,
}

impl Change {
    pub fn new(kind: &'static str, resource: impl Into<String>, action: impl Into<String>) -> Change {
        Change { kind, resource: resource.into(), action: action.into() }
    }
}

/// What a phase would change, computed from the real current state with reads only. Its
/// `changes` are what a dry run reports and what `apply` is to do; `work` carries what `apply`
/// needs beyond that (verified content, resolved digests), typed per phase.
#[derive(Debug, Serialize)]
pub struct Plan<W> {
    pub changes: Vec<Change>,
    /// The phase's own account of the plan (the dry run's outputs `summary`).
    pub summary: Value,
    #[serde(skip)]
    pub work: W,
}

impl<W> Plan<W> {
    pub fn new(changes: Vec<Change>, summary: Value, work: W) -> Plan<W> {
        Plan { changes, summary, work }
    }

    /// The mutating calls a real run would make.
    pub fn count(&self) -> u64 {
        self.changes.len() as u64
    }

    /// The plan for people: one line per change.
    pub fn render(&self) -> Vec<String> {
        self.changes.iter().map(|c| format!("would {} {} {}", c.action, c.kind, c.resource)).collect()
    }

    /// The plan as `run <phase> --dry-run --json` prints it.
    pub fn to_json(&self, phase: &str) -> Value {
        json!({"phase": phase, "changes": self.count(), "planned": self.changes, "summary": self.summary})
    }

    fn erase(self) -> Plan<Box<dyn Any + Send + Sync>>
    where
        W: Send + Sync + 'static,
    {
        Plan { changes: self.changes, summary: self.summary, work: Box::new(self.work) }
    }
}

/// What an apply reports. Its changes are what it recorded through [`Env::changed`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub summary: Value,
}

/// How many recorded changes the outputs list by name; `changes` counts them all.
pub const LISTED_CHANGES: usize = 20;

/// The mutating calls a run has made, so a failed run's outputs can tell "nothing happened"
/// from "half happened". Bounded: the count is exact, the list keeps the first
/// [`LISTED_CHANGES`].
#[derive(Debug, Default)]
pub struct Changes {
    inner: Mutex<(u64, Vec<Change>)>,
}

impl Changes {
    pub fn record(&self, change: Change) {
        let mut inner = self.inner.lock().expect("changes lock");
        inner.0 += 1;
        if inner.1.len() < LISTED_CHANGES {
            inner.1.push(change);
        }
    }

    pub fn count(&self) -> u64 {
        self.inner.lock().expect("changes lock").0
    }

    pub fn listed(&self) -> Vec<Change> {
        self.inner.lock().expect("changes lock").1.clone()
    }
}

/// Step progress a phase keeps in its ledger record, so that a rerun can resume work an
/// earlier, killed run started (a long-running command's id). The runner writes it; a dry run
/// only reads it.
#[async_trait]
pub trait Steps: Send + Sync {
    /// What the previous attempt of this phase recorded under `key`.
    fn previous(&self, key: &str) -> Option<Value>;
    /// Records `value` under `key` now, before the work it names goes on.
    async fn record(&self, key: &str, value: Value) -> Result<(), crate::azure::AzureError>;
}

/// The runs that keep no steps (tests, `run preflight`).
pub struct NoSteps;

#[async_trait]
impl Steps for NoSteps {
    fn previous(&self, _key: &str) -> Option<Value> {
        None
    }

    async fn record(&self, _key: &str, _value: Value) -> Result<(), crate::azure::AzureError> {
        Ok(())
    }
}

/// What a run lends a phase beyond its clients: where changes are recorded, and its steps.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub changes: &'a Changes,
    pub steps: &'a dyn Steps,
}

/// What a phase works with: the run's clients and shared configuration, its own section, and
/// where it records what it changed.
pub struct Env<'a, C> {
    pub ctx: &'a Context,
    pub cfg: &'a C,
    changes: &'a Changes,
    steps: &'a dyn Steps,
}

impl<'a, C> Env<'a, C> {
    pub fn new(ctx: &'a Context, cfg: &'a C, run: Run<'a>) -> Env<'a, C> {
        Env { ctx, cfg, changes: run.changes, steps: run.steps }
    }

    /// The ledger steps of this phase (see [`Steps`]).
    pub fn steps(&self) -> &'a dyn Steps {
        self.steps
    }

    /// Records one mutating call, right after it succeeded.
    pub fn changed(&self, change: Change) {
        self.changes.record(change);
    }

    /// The shared configuration.
    pub fn config(&self) -> &'a Config {
        &self.ctx.config
    }
}

/// One imperative step.
#[async_trait]
pub trait Phase: Send + Sync + 'static {
    /// The phase's validated configuration section.
    type Config: Send + Sync + 'static;
    /// What `plan` hands `apply` beyond the list of changes.
    type Work: Send + Sync + 'static;

    fn step(&self) -> Step;

    /// Reads this phase's section, recording every problem in `v`.
    fn configure(&self, v: &mut Validator<'_>, cloud: &Cloud) -> Self::Config;

    /// Token audiences beyond ARM, Storage and Key Vault that the phase needs.
    fn scopes(&self, _cfg: &Self::Config, _shared: &Config) -> Vec<String> {
        Vec::new()
    }

    /// Harmless reads proving this phase's permissions and inputs, before anything mutates.
    async fn checks(&self, _env: &Env<'_, Self::Config>) -> Vec<Check> {
        Vec::new()
    }

    /// What would change, from the real current state. Reads only.
    async fn plan(&self, env: &Env<'_, Self::Config>) -> Result<Plan<Self::Work>, PhaseError>;

    /// Makes the planned changes, recording each through [`Env::changed`].
    async fn apply(&self, env: &Env<'_, Self::Config>, plan: Plan<Self::Work>) -> Result<Report, PhaseError>;
}

/// A phase with its configuration, as the runner holds it: the same contract with the types
/// erased, so the runner can hold every selected phase in one list.
#[async_trait]
pub trait Selected: Send + Sync {
    fn step(&self) -> Step;
    fn scopes(&self, shared: &Config) -> Vec<String>;
    async fn checks(&self, ctx: &Context, run: Run<'_>) -> Vec<Check>;
    async fn plan(&self, ctx: &Context, run: Run<'_>) -> Result<Plan<Box<dyn Any + Send + Sync>>, PhaseError>;
    async fn apply(
        &self,
        ctx: &Context,
        run: Run<'_>,
        plan: Plan<Box<dyn Any + Send + Sync>>,
    ) -> Result<Report, PhaseError>;
}

struct Configured<P: Phase> {
    phase: P,
    cfg: P::Config,
}

pub(super) fn configured<P: Phase>(phase: P, v: &mut Validator<'_>, cloud: &Cloud) -> Box<dyn Selected> {
    let cfg = phase.configure(v, cloud);
    Box::new(Configured { phase, cfg })
}

#[async_trait]
impl<P: Phase> Selected for Configured<P> {
    fn step(&self) -> Step {
        self.phase.step()
    }

    fn scopes(&self, shared: &Config) -> Vec<String> {
        self.phase.scopes(&self.cfg, shared)
    }

    async fn checks(&self, ctx: &Context, run: Run<'_>) -> Vec<Check> {
        self.phase.checks(&Env::new(ctx, &self.cfg, run)).await
    }

    async fn plan(&self, ctx: &Context, run: Run<'_>) -> Result<Plan<Box<dyn Any + Send + Sync>>, PhaseError> {
        self.phase.plan(&Env::new(ctx, &self.cfg, run)).await.map(Plan::erase)
    }

    async fn apply(
        &self,
        ctx: &Context,
        run: Run<'_>,
        plan: Plan<Box<dyn Any + Send + Sync>>,
    ) -> Result<Report, PhaseError> {
        let work = *plan.work.downcast::<P::Work>().expect("a plan goes back to the phase that made it");
        let plan = Plan { changes: plan.changes, summary: plan.summary, work };
        self.phase.apply(&Env::new(ctx, &self.cfg, run), plan).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_counts_renders_and_serialises_its_changes() {
        let plan = Plan::new(
            vec![
                Change::new("image", "vibedata/api:1", "import"),
                Change::new("blob", "releases/latest.json", "write"),
            ],
            json!({"release": "1"}),
            42u8,
        );
        assert_eq!(plan.count(), 2);
        assert_eq!(plan.render(), ["would import image vibedata/api:1", "would write blob releases/latest.json"]);
        let doc = plan.to_json("artifacts");
        assert_eq!(doc["changes"], 2);
        assert_eq!(doc["planned"][0], json!({"kind": "image", "resource": "vibedata/api:1", "action": "import"}));
        assert!(doc.get("work").is_none());
    }

    #[test]
    fn recorded_changes_are_counted_exactly_and_listed_within_a_bound() {
        let c = Changes::default();
        for i in 0..(LISTED_CHANGES + 5) {
            c.record(Change::new("blob", format!("b{i}"), "write"));
        }
        assert_eq!(c.count(), (LISTED_CHANGES + 5) as u64);
        assert_eq!(c.listed().len(), LISTED_CHANGES);
        assert_eq!(c.listed()[0].resource, "b0");
    }
}
