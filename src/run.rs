//! Running phases: configuration, preflight, lock, ledger record, the phase itself, outputs.
//!
//! This is the one code path for the CLI, the Functions handler and the rehearsal.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::config::{Config, Source};
use crate::context::Context;
use crate::error::RunError;
use crate::ledger::Record;
use crate::outputs::{self, OutputError, PhaseOutput};
use crate::phases::{self, preflight, Report};
use crate::sequence::{self, Step};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Preflight,
    Step(Step),
    All,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "preflight" => Some(Target::Preflight),
            "all" => Some(Target::All),
            other => Step::parse(other).map(Target::Step),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub config_file: Option<PathBuf>,
    /// Write `<phase>.json` here as well as to `$AZ_SCRIPTS_OUTPUT_PATH`.
    pub outputs_dir: Option<PathBuf>,
}

/// Runs `target`; returns the outputs of every phase that ran (or was skipped) and the error that
/// stopped the run, if any.
pub async fn run(target: Target, opts: &RunOptions) -> (Vec<PhaseOutput>, Option<RunError>) {
    let mut outputs = Vec::new();
    let collect = |outcome: Outcome, outputs: &mut Vec<PhaseOutput>| match outcome {
        Ok(o) => {
            outputs.extend(o);
            None
        }
        Err((o, e)) => {
            outputs.extend(o);
            Some(e)
        }
    };
    let error = match target {
        Target::Preflight => collect(run_preflight(opts).await, &mut outputs),
        Target::Step(step) => collect(run_one(step, opts).await, &mut outputs),
        Target::All => {
            let mut error = None;
            for step in sequence::steps() {
                if !step.built() {
                    tracing::info!(phase = step.id(), "skipped (not built)");
                    outputs.push(skipped(step));
                    continue;
                }
                error = collect(run_one(step, opts).await, &mut outputs);
                if error.is_some() {
                    break;
                }
            }
            error
        }
    };
    write_outputs(target, &outputs, opts);
    (outputs, error)
}

type Outcome = Result<Option<PhaseOutput>, (Option<PhaseOutput>, RunError)>;

fn skipped(step: Step) -> PhaseOutput {
    PhaseOutput {
        phase: step.id().into(),
        status: "skipped",
        changes: 0,
        started_at: outputs::now_rfc3339(),
        duration_ms: 0,
        dry_run: false,
        summary: json!({"reason": "not built"}),
        error: None,
    }
}

fn finish(
    phase: &str,
    started_at: String,
    started: Instant,
    dry_run: bool,
    result: Result<Report, RunError>,
) -> Outcome {
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(report) => Ok(Some(PhaseOutput {
            phase: phase.into(),
            status: outputs::status_for(false, report.changes),
            changes: report.changes,
            started_at,
            duration_ms,
            dry_run,
            summary: report.summary,
            error: None,
        })),
        Err(e) => {
            let (code, resource) = e.code_and_resource();
            let (changes, summary) = e.partial_report().unwrap_or((0, json!({})));
            let out = PhaseOutput {
                phase: phase.into(),
                status: outputs::status_for(true, changes),
                changes,
                started_at,
                duration_ms,
                dry_run,
                summary,
                error: Some(OutputError { code, message: e.to_string(), resource }),
            };
            Err((Some(out), e))
        }
    }
}

async fn run_preflight(opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let started_at = outputs::now_rfc3339();
    let built: Vec<Step> = sequence::steps().filter(|s| s.built()).collect();
    let result = async {
        let ctx = context(&built, opts)?;
        let mut extra = Vec::new();
        let impls: Vec<_> = built.iter().filter_map(|s| phases::implementation(*s)).collect();
        for p in &impls {
            extra.extend(p.extra_scopes(&ctx));
        }
        let mut checks = preflight::shared(&ctx, &extra).await;
        for p in &impls {
            checks.extend(p.checks(&ctx).await);
        }
        checks_report("preflight", checks, &built)
    }
    .await;
    finish("preflight", started_at, started, opts.dry_run, result)
}

fn checks_report(phase: &str, checks: Vec<preflight::Check>, steps: &[Step]) -> Result<Report, RunError> {
    if let Some(first) = checks.iter().find(|c| !c.ok) {
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{} ({})", c.name, c.code.as_deref().unwrap_or("failed")))
            .collect();
        return Err(RunError::Preflight {
            phase: phase.into(),
            failed: format!("{}; first: {}", failed.join(", "), first.detail),
            code: first.code.clone().unwrap_or_else(|| "PreflightFailed".into()),
            resource: first.resource.clone().unwrap_or_default(),
        });
    }
    Ok(Report {
        changes: 0,
        summary: json!({"checks": checks, "forPhases": steps.iter().map(|s| s.id()).collect::<Vec<_>>()}),
    })
}

fn context(steps: &[Step], opts: &RunOptions) -> Result<Context, RunError> {
    let source = Source::load(opts.config_file.as_deref())?;
    let config = Config::validate(&source, steps)?;
    Context::new(config, opts.dry_run)
}

async fn run_one(step: Step, opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let started_at = outputs::now_rfc3339();
    let id = step.id();
    let Some(phase) = phases::implementation(step) else {
        return finish(id, started_at, started, opts.dry_run, Err(RunError::NotBuilt { phase: id.into() }));
    };
    let result = async {
        let ctx = context(&[step], opts)?;
        let mut checks = preflight::shared(&ctx, &phase.extra_scopes(&ctx)).await;
        checks.extend(phase.checks(&ctx).await);
        checks_report(id, checks, &[step])?;
        if ctx.dry_run {
            return phase.run(&ctx).await;
        }
        run_locked(&ctx, phase.as_ref(), &started_at).await
    }
    .await;
    finish(id, started_at, started, opts.dry_run, result)
}

async fn run_locked(ctx: &Context, phase: &dyn phases::Phase, started_at: &str) -> Result<Report, RunError> {
    let id = phase.step().id();
    let ledger_err = |e| RunError::Ledger { phase: id.into(), source: e };
    let lock = ctx.ledger.lock(id, ctx.config.lock_wait).await.map_err(ledger_err)?;
    let previous = ctx.ledger.read(id).await.map_err(|e| RunError::azure(id, e))?;
    let mut record = Record {
        deployment_id: ctx.config.deployment_id.clone(),
        phase: id.into(),
        status: "running".into(),
        attempt: previous.as_ref().map(|r| r.attempt + 1).unwrap_or(1),
        started_at: started_at.to_owned(),
        ended_at: None,
        input_digest: None,
        changes: 0,
        steps: Default::default(),
        error: None,
        binary: crate::VERSION.into(),
    };
    if let Some(prev) = &previous {
        tracing::info!(phase = id, previous = %prev.status, attempt = record.attempt, "ledger: previous run of {id} ended {}", prev.status);
    }
    ctx.ledger.write(&record, &lock).await.map_err(|e| RunError::azure(id, e))?;
    let result = phase.run(ctx).await;
    record.ended_at = Some(outputs::now_rfc3339());
    match &result {
        Ok(report) => {
            record.status = outputs::status_for(false, report.changes).into();
            record.changes = report.changes;
        }
        Err(e) => {
            record.status = "failed".into();
            record.error = Some(e.to_string());
        }
    }
    if lock.lost() {
        tracing::warn!(phase = id, "the phase lock was lost while working; another runner may have overlapped");
    }
    if let Err(e) = ctx.ledger.write(&record, &lock).await {
        tracing::warn!(phase = id, error = %e, "could not write the final ledger record");
    }
    lock.release().await;
    result
}

fn write_outputs(target: Target, outputs: &[PhaseOutput], opts: &RunOptions) {
    if let Some(dir) = &opts.outputs_dir {
        for o in outputs {
            write_file(&dir.join(format!("{}.json", o.phase)), o);
        }
    }
    if let Some(path) = std::env::var_os("AZ_SCRIPTS_OUTPUT_PATH") {
        let path = Path::new(&path);
        match (target, outputs) {
            (Target::All, _) => {
                let combined = json!({"phases": outputs});
                if let Err(e) = std::fs::write(path, serde_json::to_vec_pretty(&combined).expect("serializes")) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write outputs");
                }
            }
            (_, [one, ..]) => write_file(path, one),
            _ => {}
        }
    }
}

fn write_file(path: &Path, output: &PhaseOutput) {
    if let Err(e) = outputs::write(path, output) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write outputs");
    }
}

/// The recorded status of each imperative phase, for `plan`. Best effort: `plan` must work
/// without any Azure access, so a missing configuration or an unreachable ledger yields `None`.
pub async fn recorded_statuses(config_file: Option<&Path>) -> Result<Vec<(Step, Option<Record>)>, String> {
    let source = Source::load(config_file).map_err(|e| e.to_string())?;
    let mut config = Config::validate(&source, &[]).map_err(|e| e.to_string())?;
    // `plan` is a glance, not a run: no RBAC patience, few retries.
    config.rbac_deadline = std::time::Duration::ZERO;
    config.max_retries = 1;
    config.http_timeout = std::time::Duration::from_secs(5);
    let ctx = Context::new(config, true).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for step in sequence::steps() {
        let rec = ctx.ledger.read(step.id()).await.map_err(|e| e.to_string())?;
        out.push((step, rec));
    }
    Ok(out)
}
