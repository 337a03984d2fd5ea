//! One file per imperative RFC-60 step. Each computes a plan from the real current state (reads
//! only), then applies it; `--dry-run` stops after the plan.

pub mod artifacts;
pub mod database;
pub mod health;
pub mod preflight;
pub mod registry;
pub mod runbooks;

use async_trait::async_trait;
use serde_json::Value;

use crate::context::Context;
use crate::error::RunError;
use crate::sequence::Step;
use preflight::Check;

/// What a phase did (or, in a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Mutating calls on the platform's state (DESIGN §3). In a dry run: the ones it would make.
    pub changes: u64,
    pub summary: Value,
}

#[async_trait]
pub trait Phase: Send + Sync {
    fn step(&self) -> Step;

    /// Harmless reads proving this phase's permissions and inputs, run before anything mutates.
    async fn checks(&self, _ctx: &Context) -> Vec<Check> {
        Vec::new()
    }

    /// Plans and, unless `ctx.dry_run`, applies.
    async fn run(&self, ctx: &Context) -> Result<Report, RunError>;

    /// Token audiences beyond ARM, Storage and Key Vault that the phase needs.
    fn extra_scopes(&self, _ctx: &Context) -> Vec<String> {
        Vec::new()
    }
}

/// The implementation of a step, if this version has one. `sequence::Step::built` asks here, so
/// "built" cannot disagree with what `run` can do.
pub fn implementation(step: Step) -> Option<Box<dyn Phase>> {
    match step {
        Step::Artifacts => Some(Box::new(artifacts::Artifacts)),
        Step::Runbooks => Some(Box::new(runbooks::Runbooks)),
        Step::Database => Some(Box::new(database::Database)),
        Step::Registry => Some(Box::new(registry::Registry)),
        Step::Health => Some(Box::new(health::Health)),
        Step::Airbyte | Step::Ai => None,
    }
}
