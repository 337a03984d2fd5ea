//! Phases started over HTTP or by the timer, running in the background through the same runner
//! as the CLI (`run::run`).
//!
//! Dedupe has two layers, because the function app can scale out: within one worker a second
//! request for a running phase joins it (and sees its status); across workers the runner's Blob
//! lease serialises them and the ledger says what is done, so a phase the ledger records as
//! succeeded is refused (409) before anything starts. The outputs of a finished run are kept
//! beside the ledger record, so any worker (or a restarted one) answers the status URL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex};

use crate::config::{Config, Source};
use crate::context::Context;
use crate::error::RunError;
use crate::ledger::Record;
use crate::run::{self, RunOptions, Target};
use crate::sequence::Step;

/// Why a job could not be looked at or started.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The app settings are incomplete or invalid (the operator's to fix, not the caller's).
    #[error(transparent)]
    Config(#[from] RunError),
    /// The ledger (Blob storage) could not be read.
    #[error("the ledger cannot be read: {0}")]
    Ledger(#[from] crate::azure::AzureError),
}

/// What a request to start a phase found.
#[derive(Debug)]
pub enum Started {
    /// This request started it.
    New { started_at: String },
    /// It was already running in this worker; the request joined it.
    Joined { started_at: String },
    /// The ledger records it succeeded; RFC-60 leaves Day-2 changes out, so it does not run again.
    Done(Box<Record>),
}

/// A phase's state, for the status URL.
#[derive(Debug)]
pub enum Status {
    Running {
        started_at: String,
        record: Option<Box<Record>>,
    },
    /// The outputs JSON, as the runner wrote it.
    Finished(Value),
    /// Recorded by another worker, or by one that was stopped: what the ledger says.
    Recorded(Box<Record>),
    NotStarted,
}

#[derive(Clone)]
struct Job {
    started_at: String,
    done: watch::Receiver<Option<Arc<Value>>>,
}

impl Job {
    fn finished(&self) -> Option<Arc<Value>> {
        self.done.borrow().clone()
    }
}

pub struct Jobs {
    config_file: Option<PathBuf>,
    cancel: watch::Sender<bool>,
    jobs: Mutex<HashMap<Step, Job>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
}

/// The ledger's view: the shared configuration only, no phase section.
pub fn context(config_file: Option<&std::path::Path>) -> Result<Context, RunError> {
    let source = Source::load(config_file)?;
    Ok(Context::new(Config::validate(&source, &[])?)?)
}

fn outputs_blob(ctx: &Context, step: Step) -> String {
    format!("deployments/{}/outputs/{}.json", ctx.config.deployment_id, step.id())
}

fn succeeded(r: &Record) -> bool {
    r.status == "succeeded" || r.status == "unchanged"
}

impl Jobs {
    pub fn new(config_file: Option<PathBuf>) -> Arc<Jobs> {
        let (cancel, _) = watch::channel(false);
        Arc::new(Jobs { config_file, cancel, jobs: Mutex::default(), tasks: Mutex::default() })
    }

    /// Starts `step` in the background, or joins the run already going in this worker.
    pub async fn start(self: &Arc<Self>, step: Step) -> Result<Started, JobError> {
        let mut jobs = self.jobs.lock().await;
        if let Some(job) = jobs.get(&step).filter(|j| j.finished().is_none()) {
            return Ok(Started::Joined { started_at: job.started_at.clone() });
        }
        let ctx = context(self.config_file.as_deref())?;
        if step != Step::Health {
            if let Some(r) = ctx.ledger.read(step.id()).await?.filter(succeeded) {
                return Ok(Started::Done(Box::new(r)));
            }
        }
        let started_at = crate::outputs::now_rfc3339();
        let (tx, rx) = watch::channel(None);
        jobs.insert(step, Job { started_at: started_at.clone(), done: rx });
        let opts = RunOptions {
            dry_run: false,
            config_file: self.config_file.clone(),
            outputs_dir: None,
            cancel: Some(self.cancel.subscribe()),
            // Health refreshes at any time; every other phase runs once (RFC-60: no Day-2).
            once: step != Step::Health,
        };
        self.tasks.lock().await.spawn(async move {
            let ran = run::run(Target::Step(step), &opts).await;
            let outputs = ran.outputs.first().map(|o| serde_json::to_value(o).expect("outputs serialize"));
            let outputs = outputs.unwrap_or_else(|| json!({"phase": step.id(), "status": "failed"}));
            // Kept so that any worker, and this one after a restart, answers the status URL; a
            // run that found the phase done by another worker keeps that worker's outputs.
            let skipped = !outputs["summary"]["alreadyRecorded"].is_null();
            let body = Bytes::from(serde_json::to_vec_pretty(&outputs).expect("json"));
            if skipped {
                tracing::info!(phase = step.id(), "another worker ran {}; its outputs stand", step.id());
            } else if let Err(e) = async {
                let ctx = context(opts.config_file.as_deref()).map_err(|e| e.to_string())?;
                ctx.ledger.container().put(&outputs_blob(&ctx, step), body, "application/json", None).await.map_err(|e| e.to_string())
            }
            .await
            {
                tracing::warn!(phase = step.id(), error = %e, "could not keep the outputs beside the ledger");
            }
            tracing::info!(phase = step.id(), status = %outputs["status"], outputs = %outputs, "phase {} {}", step.id(), outputs["status"].as_str().unwrap_or(""));
            let _ = tx.send(Some(Arc::new(outputs)));
        });
        Ok(Started::New { started_at })
    }

    /// Waits until this worker's run of `step` ends; `None` when none is going.
    pub async fn wait(&self, step: Step) -> Option<Arc<Value>> {
        let mut done = self.jobs.lock().await.get(&step)?.done.clone();
        let finished = done.wait_for(Option::is_some).await.ok()?.clone();
        finished
    }

    /// What the status URL shows. Reads only: a GET never starts or resumes anything.
    pub async fn status(&self, step: Step) -> Result<Status, JobError> {
        let job = self.jobs.lock().await.get(&step).cloned();
        let finished = job.as_ref().and_then(Job::finished);
        match &finished {
            // Another worker ran it: its outputs (beside the ledger) are the answer.
            Some(outputs) if !outputs["summary"]["alreadyRecorded"].is_null() => {}
            Some(outputs) => return Ok(Status::Finished((**outputs).clone())),
            None => {}
        }
        let ctx = context(self.config_file.as_deref())?;
        let record = ctx.ledger.read(step.id()).await?;
        if let (Some(job), None) = (job, finished) {
            return Ok(Status::Running { started_at: job.started_at, record: record.map(Box::new) });
        }
        let Some(record) = record else { return Ok(Status::NotStarted) };
        if record.status != "running" {
            if let Some(bytes) = ctx.ledger.container().get(&outputs_blob(&ctx, step)).await? {
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    if v["startedAt"] == record.started_at.as_str() {
                        return Ok(Status::Finished(v));
                    }
                }
            }
        }
        Ok(Status::Recorded(Box::new(record)))
    }

    /// Stops every running phase at its next safe point and waits for the runner to record the
    /// ledger and release the lease, for at most `within`.
    pub async fn shutdown(&self, within: Duration) -> bool {
        let _ = self.cancel.send(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().await);
        tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} }).await.is_ok()
    }
}
