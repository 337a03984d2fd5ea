//! One folder or file per imperative RFC-60 step, and the contract they share.
//!
//! A phase reads its own configuration section ([`Phase::configure`]), plans from the real
//! current state with reads only ([`Phase::plan`]), and applies that plan ([`Phase::apply`]),
//! recording every mutating call it makes ([`Env::changed`]). The runner (`crate::run`) alone
//! decides between printing the plan (`--dry-run`) and applying it under the phase lock, writes
//! the ledger, and attaches the phase to errors; so no phase tests a dry-run flag or names
//! itself in an error.

pub mod ai;
pub mod airbyte;
pub mod artifacts;
pub mod contract;
pub mod database;
pub mod health;
pub mod permissions;
pub mod preflight;
pub mod registry;
pub mod runbooks;

pub use contract::{Change, Changes, Env, NoSteps, Phase, Plan, Report, Run, Selected, Steps};

use crate::cloud::Cloud;
use crate::config::Validator;
use crate::sequence::Step;

/// The implementation of `step`, configured from `v`, if this version has one. This match is
/// the registry of built phases: `built` and `run` both read it, so they cannot disagree.
pub fn select(step: Step, v: &mut Validator<'_>, cloud: &Cloud) -> Option<Box<dyn Selected>> {
    Some(match step {
        Step::Artifacts => contract::configured(artifacts::Artifacts, v, cloud),
        Step::Runbooks => contract::configured(runbooks::Runbooks, v, cloud),
        Step::Database => contract::configured(database::Database, v, cloud),
        Step::Airbyte => contract::configured(airbyte::Airbyte, v, cloud),
        Step::Registry => contract::configured(registry::Registry, v, cloud),
        Step::Health => contract::configured(health::Health, v, cloud),
        Step::Ai => contract::configured(ai::Ai, v, cloud),
    })
}

/// Whether `run <step>` does real work in this version. A step that is not built fails by
/// name and is listed as skipped by `run all`; it never pretends to succeed.
pub fn built(step: Step) -> bool {
    let source = crate::config::Source::default();
    let mut v = Validator::new(&source);
    select(step, &mut v, &Cloud::AzureCloud).is_some()
}
