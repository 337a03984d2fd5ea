//! The runner: configuration, preflight, the lock, the ledger, the phase's plan and apply, the
//! outputs.
//!
//! This is the one code path for the CLI, the Functions handler and the rehearsal, and the only
//! place that knows about dry runs: a dry run prints each phase's plan and mutates nothing, not
//! even the ledger; a real run takes the phase lock, records the attempt, plans, applies, and
//! records the end. Errors get their phase attached here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::config::{Config, Source};
use crate::context::Context;
use crate::error::{PhaseError, PreflightFailure, RunError};
use crate::ledger::{LedgerError, Record};
use crate::outputs::{self, OutputError, PhaseOutput};
use crate::phases::preflight::{self, Check, LedgerProbe};
use crate::phases::{self, Changes, NoSteps, Report, Run, Selected, Steps};
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

    /// Every name `run` accepts, in RFC-60 order after `preflight` and `all`.
    pub fn names() -> Vec<&'static str> {
        ["preflight", "all"].into_iter().chain(sequence::steps().map(Step::id)).collect()
    }

    fn id(self) -> &'static str {
        match self {
            Target::Preflight => "preflight",
            Target::All => "all",
            Target::Step(s) => s.id(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub config_file: Option<PathBuf>,
    /// Write `<phase>.json` here as well as to `$AZ_SCRIPTS_OUTPUT_PATH`.
    pub outputs_dir: Option<PathBuf>,
    /// Set to `true` when the process must stop (the Functions host recycling the worker): the
    /// running phase is abandoned at its next await, the ledger records it failed and the lock is
    /// released. Every phase checks the real state first, so the next run picks up from there.
    pub cancel: Option<tokio::sync::watch::Receiver<bool>>,
    /// Skip a phase whose ledger record, read under the lock, says it already succeeded: the
    /// Functions handler's dedupe across scaled-out workers (another worker may have run it while
    /// this one waited on the lease). The outputs' summary then names the record
    /// (`alreadyRecorded`), and nothing is written.
    pub once: bool,
}

/// What a run leaves behind.
#[derive(Debug, Default)]
pub struct Ran {
    /// The outputs of every phase that ran (or was skipped).
    pub outputs: Vec<PhaseOutput>,
    /// A dry run's plans, as `--dry-run --json` prints them.
    pub plans: Vec<Value>,
    /// What stopped the run.
    pub error: Option<RunError>,
}

/// Runs `target`.
pub async fn run(target: Target, opts: &RunOptions) -> Ran {
    let mut ran = Ran::default();
    let started = Instant::now();
    let started_at = outputs::now_rfc3339();
    let steps: Vec<Step> = match target {
        Target::Step(step) if !phases::built(step) => {
            let e = RunError::NotBuilt { phase: step.id().into() };
            ran.outputs.push(failed(step.id(), &started_at, started, opts.dry_run, &e, &Changes::default()));
            ran.error = Some(e);
            write_outputs(target, &ran.outputs, opts);
            return ran;
        }
        Target::Step(step) => vec![step],
        Target::Preflight | Target::All => sequence::steps().filter(|s| phases::built(*s)).collect(),
    };

    // Every selected phase's configuration, validated before the first one runs.
    let (ctx, selected) = match prepare(&steps, opts) {
        Ok(p) => p,
        Err(e) => {
            ran.outputs.push(failed(target.id(), &started_at, started, opts.dry_run, &e, &Changes::default()));
            ran.error = Some(e);
            write_outputs(target, &ran.outputs, opts);
            return ran;
        }
    };

    match target {
        Target::Preflight => {
            let scopes: Vec<String> = selected.iter().flat_map(|p| p.scopes(&ctx.config)).collect();
            let mut checks = preflight::shared(&ctx, &scopes, probe(opts)).await;
            let none = Changes::default();
            let run = Run { changes: &none, steps: &NoSteps };
            for p in &selected {
                checks.extend(p.checks(&ctx, run).await);
                checks.push(preflight::effective_permissions(&ctx, p.step()).await);
            }
            let result = checks_report("preflight", checks, &steps);
            ran.push(finish("preflight", &started_at, started, opts.dry_run, result, &none));
        }
        Target::Step(_) | Target::All => {
            let mut selected = selected.into_iter();
            for step in sequence::steps().filter(|s| steps.contains(s) || target == Target::All) {
                if !steps.contains(&step) {
                    tracing::info!(phase = step.id(), "skipped (not built)");
                    ran.outputs.push(skipped(step));
                    continue;
                }
                let phase = selected.next().expect("one selected phase per built step, in order");
                ran.push(run_one(&ctx, phase.as_ref(), opts).await);
                if step == Step::Health && !opts.dry_run {
                    // Bookkeeping, not a change: support reads it after a failed install too.
                    crate::report::publish(opts.config_file.as_deref()).await;
                }
                if ran.error.is_some() {
                    break;
                }
            }
        }
    }
    write_outputs(target, &ran.outputs, opts);
    ran
}

/// One phase's result.
struct Finished {
    output: PhaseOutput,
    plan: Option<Value>,
    error: Option<RunError>,
}

impl Ran {
    fn push(&mut self, f: Finished) {
        self.outputs.push(f.output);
        self.plans.extend(f.plan);
        self.error = f.error;
    }
}

fn probe(opts: &RunOptions) -> LedgerProbe {
    if opts.dry_run {
        LedgerProbe::Read
    } else {
        LedgerProbe::Write
    }
}

/// The shared configuration, every selected phase with its section, and the clients.
fn prepare(steps: &[Step], opts: &RunOptions) -> Result<(Context, Vec<Box<dyn Selected>>), RunError> {
    let source = Source::load(opts.config_file.as_deref())?;
    let (config, selected) = Config::validate_with(&source, steps, |v, cloud| {
        steps.iter().filter_map(|s| phases::select(*s, v, cloud)).collect::<Vec<_>>()
    })?;
    Ok((Context::new(config)?, selected))
}

async fn run_one(ctx: &Context, phase: &dyn Selected, opts: &RunOptions) -> Finished {
    let started = Instant::now();
    let started_at = outputs::now_rfc3339();
    let id = phase.step().id();
    let changes = Changes::default();
    let attach = |error: PhaseError| RunError::phase(id, error);
    let mut checks = preflight::shared(ctx, &phase.scopes(&ctx.config), probe(opts)).await;
    checks.extend(phase.checks(ctx, Run { changes: &changes, steps: &NoSteps }).await);
    checks.push(preflight::effective_permissions(ctx, phase.step()).await);
    if let Err(e) = checks_report(id, checks, &[phase.step()]) {
        return finish(id, &started_at, started, opts.dry_run, Err(e), &changes);
    }
    if opts.dry_run {
        // A dry run reads the previous attempt's steps but records none.
        let previous = ctx.ledger.read(id).await.ok().flatten().map(|r| r.steps).unwrap_or_default();
        let steps = ReadOnlySteps(previous);
        let plan = match phase.plan(ctx, Run { changes: &changes, steps: &steps }).await {
            Ok(plan) => plan,
            Err(e) => return finish(id, &started_at, started, true, Err(attach(e)), &changes),
        };
        for line in plan.render() {
            tracing::info!(phase = id, "{line}");
        }
        let doc = plan.to_json(id);
        let output = PhaseOutput {
            phase: id.into(),
            status: outputs::status_for(false, plan.count()),
            changes: plan.count(),
            // A dry run changes nothing; what it would change is the plan.
            changed: Vec::new(),
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            dry_run: true,
            summary: plan.summary,
            error: None,
        };
        return Finished { output, plan: Some(doc), error: None };
    }
    let result = run_locked(ctx, phase, &started_at, &changes, opts).await;
    finish(id, &started_at, started, false, result, &changes)
}

/// Plans and applies under the phase lock, with the ledger record around it.
async fn run_locked(
    ctx: &Context,
    phase: &dyn Selected,
    started_at: &str,
    changes: &Changes,
    opts: &RunOptions,
) -> Result<Report, RunError> {
    let id = phase.step().id();
    let ledger_err = |source: LedgerError| RunError::Ledger { phase: id.into(), source: Box::new(source) };
    let lock = ctx.ledger.lock(id, ctx.config.lock_wait).await.map_err(ledger_err)?;
    let previous = match ctx.ledger.read(id).await {
        Ok(p) => p,
        Err(e) => {
            lock.release().await;
            return Err(ledger_err(e.into()));
        }
    };
    if let Some(done) = previous.as_ref().filter(|p| opts.once && (p.status == "succeeded" || p.status == "unchanged"))
    {
        tracing::info!(
            phase = id,
            attempt = done.attempt,
            "the ledger records {id} {} (started {}); not running it again",
            done.status,
            done.started_at
        );
        let summary =
            json!({"alreadyRecorded": {"status": done.status, "attempt": done.attempt, "startedAt": done.started_at}});
        lock.release().await;
        return Ok(Report { summary });
    }
    let record = Record {
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
    if let Err(e) = ctx.ledger.write(&record, &lock).await {
        lock.release().await;
        return Err(ledger_err(e.into()));
    }
    let steps = LedgerSteps {
        ctx,
        lock: &lock,
        previous: previous.map(|p| p.steps).unwrap_or_default(),
        record: tokio::sync::Mutex::new(record),
    };
    let run = Run { changes, steps: &steps };
    let work = async {
        match phase.plan(ctx, run).await {
            Ok(plan) => phase.apply(ctx, run, plan).await,
            Err(e) => Err(e),
        }
    };
    let result = match opts.cancel.clone() {
        None => work.await,
        Some(mut cancel) => tokio::select! {
            r = work => r,
            Ok(_) = cancel.wait_for(|stop| *stop) => {
                tracing::warn!(phase = id, "stopping: the process was asked to end; the next run resumes from the real state");
                Err(PhaseError::failed(
                    crate::error::Code::from("Interrupted"),
                    id,
                    "the worker was stopped (SIGTERM) before the phase ended; run it again to resume",
                ))
            }
        },
    };
    let mut record = steps.record.into_inner();
    record.ended_at = Some(outputs::now_rfc3339());
    record.changes = changes.count();
    match &result {
        Ok(_) => record.status = outputs::status_for(false, changes.count()).into(),
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
    result.map_err(|error| RunError::phase(id, error))
}

/// Steps kept in the phase's ledger record: each `record` writes the record at once, under the
/// phase lock, so a killed run leaves what it started behind for the next.
struct LedgerSteps<'a> {
    ctx: &'a Context,
    lock: &'a crate::ledger::PhaseLock,
    previous: serde_json::Map<String, Value>,
    record: tokio::sync::Mutex<Record>,
}

#[async_trait::async_trait]
impl Steps for LedgerSteps<'_> {
    fn previous(&self, key: &str) -> Option<Value> {
        self.previous.get(key).cloned()
    }

    async fn record(&self, key: &str, value: Value) -> Result<(), crate::azure::AzureError> {
        let mut record = self.record.lock().await;
        record.steps.insert(key.to_owned(), value);
        self.ctx.ledger.write(&record, self.lock).await
    }
}

/// A dry run's view of the steps: what the last attempt recorded; nothing is written.
struct ReadOnlySteps(serde_json::Map<String, Value>);

#[async_trait::async_trait]
impl Steps for ReadOnlySteps {
    fn previous(&self, key: &str) -> Option<Value> {
        self.0.get(key).cloned()
    }

    async fn record(&self, _key: &str, _value: Value) -> Result<(), crate::azure::AzureError> {
        Ok(())
    }
}

fn skipped(step: Step) -> PhaseOutput {
    PhaseOutput {
        phase: step.id().into(),
        status: "skipped",
        changes: 0,
        changed: Vec::new(),
        started_at: outputs::now_rfc3339(),
        duration_ms: 0,
        dry_run: false,
        summary: json!({"reason": "not built"}),
        error: None,
    }
}

fn failed(
    phase: &str,
    started_at: &str,
    started: Instant,
    dry_run: bool,
    e: &RunError,
    changes: &Changes,
) -> PhaseOutput {
    let (code, resource) = e.code_and_resource();
    PhaseOutput {
        phase: phase.into(),
        status: outputs::status_for(true, 0),
        // What was done before the failure: a failed run must tell "nothing happened" from
        // "half happened".
        changes: changes.count(),
        changed: changes.listed(),
        started_at: started_at.to_owned(),
        duration_ms: started.elapsed().as_millis() as u64,
        dry_run,
        summary: e.partial_summary().unwrap_or_else(|| json!({})),
        error: Some(OutputError { code, message: e.to_string(), resource }),
    }
}

fn finish(
    phase: &str,
    started_at: &str,
    started: Instant,
    dry_run: bool,
    result: Result<Report, RunError>,
    changes: &Changes,
) -> Finished {
    match result {
        Ok(report) => Finished {
            output: PhaseOutput {
                phase: phase.into(),
                status: outputs::status_for(false, changes.count()),
                changes: changes.count(),
                changed: changes.listed(),
                started_at: started_at.to_owned(),
                duration_ms: started.elapsed().as_millis() as u64,
                dry_run,
                summary: report.summary,
                error: None,
            },
            plan: None,
            error: None,
        },
        Err(e) => {
            Finished { output: failed(phase, started_at, started, dry_run, &e, changes), plan: None, error: Some(e) }
        }
    }
}

fn checks_report(phase: &str, checks: Vec<Check>, steps: &[Step]) -> Result<Report, RunError> {
    let mut failing = checks.iter().filter(|c| !c.ok);
    if let Some(first) = failing.next() {
        return Err(RunError::Preflight(Box::new(PreflightFailure {
            phase: phase.into(),
            check: first.name.clone(),
            code: first.code.clone().unwrap_or_else(|| "PreflightFailed".into()),
            resource: first.resource.clone().unwrap_or_default(),
            detail: first.detail.clone(),
            others: failing.map(|c| c.name.clone()).collect(),
        })));
    }
    Ok(Report { summary: json!({"checks": checks, "forPhases": steps.iter().map(|s| s.id()).collect::<Vec<_>>()}) })
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
/// without any Azure access, so the caller treats an error as "no status".
pub async fn recorded_statuses(config_file: Option<&Path>) -> Result<Vec<(Step, Option<Record>)>, RunError> {
    let source = Source::load(config_file)?;
    let mut config = Config::validate(&source, &[])?;
    // `plan` is a glance, not a run: no RBAC patience, few retries.
    config.rbac_deadline = std::time::Duration::ZERO;
    config.max_retries = 1;
    config.http_timeout = std::time::Duration::from_secs(5);
    let ctx = Context::new(config)?;
    let mut out = Vec::new();
    for step in sequence::steps() {
        let rec = ctx
            .ledger
            .read(step.id())
            .await
            .map_err(|e| RunError::Ledger { phase: step.id().into(), source: Box::new(e.into()) })?;
        out.push((step, rec));
    }
    Ok(out)
}
