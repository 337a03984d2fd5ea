//! Runbook Bootstrap (RFC-60 phase 8): the release's runbooks, from artifact storage into the
//! Automation Account, published.
//!
//! Order matters: every runbook is read, verified and validated before any is published, and
//! every runtime environment a runbook names is checked before anything is created, so bad input
//! mutates nothing. Then a plan from the account's current state (reads only) decides each
//! runbook's action; `--dry-run` stops there. A runbook already published with our content, type
//! and runtime environment is left alone, so a rerun makes no call that mutates.

mod extract;
#[cfg(test)]
mod fixtures;
mod plan;
mod source;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::preflight::Check;
use super::{Change, Env, Phase, Plan, Report};
use crate::azure::automation::{Automation, Runbook, RunbookSpec, Runtime};
use crate::azure::AzureError;
use crate::cloud::Cloud;
use crate::config::{RunbooksConfig, Validator};
use crate::error::{Code, PhaseError};
use crate::sequence::Step;
pub use extract::{expected_file_name, extract, ExtractError, Script};
pub use plan::{decide, plan_environments, Action, Current, Desired, EnvError, EnvPlan};
use source::Loaded;

/// How long one draft-content or publish operation may take. Publishing compiles the script
/// on the service side; minutes are normal, ten is not.
const OPERATION_DEADLINE: Duration = Duration::from_secs(600);

const DESCRIPTION: &str = "Vibedata platform runbook, published by vibedata-bootstrap";

pub struct Runbooks;

fn automation(env: &Env<'_, RunbooksConfig>) -> Automation {
    let c = env.config();
    Automation::new(env.ctx.arm.clone(), &c.subscription_id, &c.resource_group, &env.cfg.automation_account)
}

/// What the plan hands the apply.
pub struct Work {
    release: source::Release,
    location: Option<String>,
    envs: Vec<EnvPlan>,
    actions: Vec<Action>,
    unmanaged: Vec<Value>,
}

#[async_trait]
impl Phase for Runbooks {
    type Config = RunbooksConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Runbooks
    }

    fn configure(&self, v: &mut Validator<'_>, _cloud: &Cloud) -> RunbooksConfig {
        v.runbooks()
    }

    async fn checks(&self, env: &Env<'_, RunbooksConfig>) -> Vec<Check> {
        let aa = automation(env);
        vec![Check::run("automation account", aa.account(), |_| format!("{} readable", aa.id())).await]
    }

    async fn plan(&self, env: &Env<'_, RunbooksConfig>) -> Result<Plan<Work>, PhaseError> {
        let cfg = env.cfg;
        let aa = automation(env);

        // 1. Everything we will publish, validated whole before anything mutates.
        let release = source::load(env.ctx, cfg.max_script_bytes).await?;

        // 2. The account as it is now.
        let location = aa.account().await?.location.or_else(|| env.config().location.clone());
        let listed = aa.runbooks().await?;
        let wants: Vec<Desired<'_>> = release.runbooks.iter().map(desired).collect();
        let envs = plan_envs(&aa, cfg, &wants).await?;
        let mut actions = Vec::with_capacity(wants.len());
        for want in &wants {
            let current = current(&aa, &listed, want).await?;
            actions.push(decide(want, current.as_ref()));
        }
        let unmanaged: Vec<&Runbook> =
            listed.iter().filter(|r| !wants.iter().any(|w| w.name.eq_ignore_ascii_case(&r.name))).collect();
        if !unmanaged.is_empty() {
            let names: Vec<&str> = unmanaged.iter().map(|r| r.name.as_str()).collect();
            tracing::warn!(runbooks = ?names, "{} runbook(s) in the account are not in release {}; left as they are", names.len(), release.release);
        }
        let unmanaged: Vec<Value> = unmanaged.iter().map(|r| json!({"name": r.name, "state": r.state()})).collect();

        let mut changes: Vec<Change> = envs.iter().filter(|e| e.create).map(|e| env_change(&aa, e)).collect();
        for (want, action) in wants.iter().zip(&actions) {
            changes.extend(action.calls().iter().map(|call| Change::new("runbook", aa.runbook_id(want.name), *call)));
        }
        let runbooks: Vec<Value> = wants
            .iter()
            .zip(&actions)
            .map(|(w, a)| json!({"name": w.name, "action": a.planned(), "contentHash": w.digest}))
            .collect();
        let summary = json!({"release": release.release, "runbooks": runbooks, "runtimeEnvironments": env_summary(&envs), "unmanaged": unmanaged});
        Ok(Plan::new(changes, summary, Work { release, location, envs, actions, unmanaged }))
    }

    async fn apply(&self, env: &Env<'_, RunbooksConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let Work { release, location, envs, actions, unmanaged } = plan.work;
        let aa = automation(env);

        // Environments first, since a runbook's PUT names one.
        for e in envs.iter().filter(|e| e.create) {
            aa.create_runtime_environment(&e.name, &e.runtime, location.as_deref()).await?;
            env.changed(env_change(&aa, e));
            tracing::info!(environment = %e.name, "created runtime environment {} ({} {})", e.name, e.runtime.language, e.runtime.version);
        }
        let total = release.runbooks.len();
        // Runbooks are independent, and a publish is a long-running operation (seconds), so they
        // go in parallel, within a bound: Automation throttles per account. Each call is
        // recorded as it succeeds; the first failure stops the rest from starting.
        let done = AtomicUsize::new(actions.iter().filter(|a| **a == Action::Skip).count());
        let mut jobs = Vec::new();
        for (loaded, action) in release.runbooks.iter().zip(&actions) {
            if *action != Action::Skip {
                jobs.push(publish(env, &aa, loaded, *action, location.as_deref(), (&done, total)));
            }
        }
        futures::stream::iter(jobs).buffer_unordered(env.cfg.concurrency).try_collect::<()>().await?;

        // Validate: every runbook of the release is Published with our content.
        let mut runbooks = Vec::with_capacity(total);
        for (loaded, action) in release.runbooks.iter().zip(&actions) {
            let state = verify(&aa, loaded, *action == Action::Skip).await?;
            runbooks.push(json!({
                "name": loaded.entry.name,
                "runbookType": loaded.entry.runbook_type,
                "runtimeEnvironment": loaded.entry.runtime_environment,
                "state": state,
                "contentHash": loaded.script.digest,
                "action": action.done(),
            }));
        }
        tracing::info!(count = total, "every runbook of release {} is Published", release.release);
        let published = actions.iter().filter(|a| **a != Action::Skip).count();
        Ok(Report {
            summary: json!({
                "release": release.release,
                "manifestDigest": release.manifest_digest,
                "automationAccount": aa.id(),
                "runbooks": runbooks,
                "published": published,
                "unchanged": total - published,
                "runtimeEnvironments": env_summary(&envs),
                "unmanaged": unmanaged,
            }),
        })
    }
}

fn env_change(aa: &Automation, e: &EnvPlan) -> Change {
    Change::new("runtime environment", format!("{}/runtimeEnvironments/{}", aa.id(), e.name), "create")
}

fn desired(l: &Loaded) -> Desired<'_> {
    Desired {
        name: &l.entry.name,
        runbook_type: &l.entry.runbook_type,
        runtime_environment: &l.entry.runtime_environment,
        digest: &l.script.digest,
    }
}

fn env_summary(envs: &[EnvPlan]) -> Vec<Value> {
    envs.iter().map(|e| json!({"name": e.name, "language": e.runtime.language, "version": e.runtime.version, "action": if e.create { "created" } else { "exists" }})).collect()
}

/// Reads every environment that is configured or named by a runbook, then plans. Bad input when
/// a runbook's environment will not exist: nothing has been created yet.
async fn plan_envs(aa: &Automation, cfg: &RunbooksConfig, wants: &[Desired<'_>]) -> Result<Vec<EnvPlan>, PhaseError> {
    let mut names: Vec<&str> = cfg
        .runtime_environments
        .iter()
        .map(|e| e.name.as_str())
        .chain(wants.iter().map(|w| w.runtime_environment))
        .collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    names.dedup_by_key(|n| n.to_ascii_lowercase());
    let mut existing: BTreeMap<String, Runtime> = BTreeMap::new();
    for name in names {
        if let Some(env) = aa.runtime_environment(name).await? {
            existing.insert(name.to_ascii_lowercase(), env.runtime());
        }
    }
    plan_environments(&cfg.runtime_environments, &existing, wants).map_err(|e| match e {
        EnvError::Conflict { ref name, .. } => PhaseError::failed(
            Code::RuntimeEnvironmentConflict,
            format!("{}/runtimeEnvironments/{name}", aa.id()),
            e.to_string(),
        ),
        EnvError::Missing { ref runbook, .. } | EnvError::WrongLanguage { ref runbook, .. } => {
            PhaseError::bad_input(aa.runbook_id(runbook), e.to_string())
        }
    })
}

/// The account's view of one runbook. The published content is only read when it can decide
/// between `Skip` and `Update`.
async fn current(aa: &Automation, listed: &[Runbook], want: &Desired<'_>) -> Result<Option<Current>, PhaseError> {
    let Some(rb) = listed.iter().find(|r| r.name.eq_ignore_ascii_case(want.name)) else { return Ok(None) };
    let mut current = Current {
        runbook_type: rb.properties.runbook_type.clone(),
        runtime_environment: rb.properties.runtime_environment.clone(),
        state: rb.state().to_owned(),
        published_digest: None,
    };
    if rb.is_published() {
        current.published_digest = published_digest(aa, rb).await?;
    }
    Ok(Some(current))
}

/// `sha256:<hex>` of what is published: hashed from the published content itself, which is exact;
/// `publishContentLink.contentHash` only when the content cannot be read.
async fn published_digest(aa: &Automation, rb: &Runbook) -> Result<Option<String>, PhaseError> {
    match aa.published_content(&rb.name).await? {
        Some(bytes) => Ok(Some(crate::oci::sha256_digest(&bytes))),
        None => Ok(rb.published_hash()),
    }
}

/// Draft (when the runbook itself must be written), content, publish, then one progress line
/// (`published 2/4 runbooks`, counted in `done` of `total`).
/// Each call is recorded as it succeeds, so a failure part-way is reported as what it is.
async fn publish(
    env: &Env<'_, RunbooksConfig>,
    aa: &Automation,
    loaded: &Loaded,
    action: Action,
    location: Option<&str>,
    (done, total): (&AtomicUsize, usize),
) -> Result<(), PhaseError> {
    let name = loaded.entry.name.as_str();
    let changed = |call: &str| env.changed(Change::new("runbook", aa.runbook_id(name), call));
    if action.puts_runbook() {
        let spec = RunbookSpec {
            runbook_type: &loaded.entry.runbook_type,
            runtime_environment: &loaded.entry.runtime_environment,
            location,
            description: DESCRIPTION,
        };
        aa.put_draft_runbook(name, &spec).await?;
        changed(plan::PUT_RUNBOOK);
    }
    aa.put_draft_content(name, Bytes::from(loaded.script.text.clone()), OPERATION_DEADLINE).await?;
    changed(plan::PUT_CONTENT);
    let started = Instant::now();
    match aa.publish(name, OPERATION_DEADLINE).await {
        Ok(()) => {
            tracing::debug!(runbook = name, ms = started.elapsed().as_millis() as u64, "publish operation succeeded");
        }
        // The answer may have been lost after the service published (a reset, a timeout): the
        // account's state decides, as it would on a rerun.
        Err(e) if !matches!(e, AzureError::OperationFailed { .. }) && published_as(aa, loaded).await => {
            tracing::warn!(runbook = name, error = %e, "publish reported an error but the runbook is published with our content");
        }
        Err(AzureError::OperationFailed { status, code, message, .. }) => {
            return Err(PhaseError::failed(
                Code::Other(code),
                aa.runbook_id(name),
                format!("publishing runbook {name} ended {status}: {message}"),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    changed(plan::PUBLISH);
    let done = done.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(runbook = name, action = action.done(), "published {done}/{total} runbooks");
    Ok(())
}

/// Whether the account has `loaded` published with our content. Errors count as "no".
async fn published_as(aa: &Automation, loaded: &Loaded) -> bool {
    match aa.runbook(&loaded.entry.name).await {
        Ok(Some(rb)) if rb.is_published() => {
            published_digest(aa, &rb).await.ok().flatten().as_deref() == Some(loaded.script.digest.as_str())
        }
        _ => false,
    }
}

/// Requires `state == Published` and, for what this run published, our content. Returns the state.
async fn verify(aa: &Automation, loaded: &Loaded, content_checked: bool) -> Result<String, PhaseError> {
    let name = &loaded.entry.name;
    let fail = |code: Code, message: String| PhaseError::failed(code, aa.runbook_id(name), message);
    let rb = aa
        .runbook(name)
        .await?
        .ok_or_else(|| fail(Code::RunbookMissing, "the runbook is gone after publishing".into()))?;
    if !rb.is_published() {
        return Err(fail(
            Code::NotPublished,
            format!("runbook {name} is in state {:?} after publishing, not Published", rb.state()),
        ));
    }
    if !content_checked {
        let got = published_digest(aa, &rb).await?;
        if got.as_deref() != Some(loaded.script.digest.as_str()) {
            return Err(fail(
                Code::ContentMismatch,
                format!(
                    "published content hashes to {}, the release's script to {}",
                    got.as_deref().unwrap_or("nothing"),
                    loaded.script.digest
                ),
            ));
        }
    }
    Ok(rb.state().to_owned())
}
