//! The run ledger: one record per phase per deployment, and a Blob lease per phase as its lock.
//!
//! Idempotency never depends on the ledger — every phase checks the real target state first. The
//! ledger records, lets a rerun resume and report, and serializes runners: a second runner of the
//! same phase waits on the lease and, once it gets it, finds the work done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::azure::blob::{Container, Lease};
use crate::azure::retry::Poll;
use crate::azure::AzureError;

/// Short, so a killed runner delays the next one by seconds; renewed while the holder works.
pub const LEASE: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub deployment_id: String,
    pub phase: String,
    /// `running`, `succeeded`, `unchanged` or `failed`.
    pub status: String,
    pub attempt: u32,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    /// sha256 of the phase's inputs (configuration and release), to tell a rerun from new work.
    #[serde(default)]
    pub input_digest: Option<String>,
    #[serde(default)]
    pub changes: u64,
    /// Step progress, e.g. `{"images": "12/12"}`.
    #[serde(default)]
    pub steps: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    pub binary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another runner held the phase's lock for longer than the configured wait.
    #[error("another runner still holds the lock of phase {phase} after {waited:?}")]
    LockTimeout { phase: String, waited: Duration },
    #[error(transparent)]
    Azure(#[from] AzureError),
}

#[derive(Clone)]
pub struct Ledger {
    container: Container,
    deployment: String,
}

/// A held phase lock. Renewed in the background until [`PhaseLock::release`].
pub struct PhaseLock {
    container: Container,
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Ledger {
    pub fn new(container: Container, deployment: &str) -> Ledger {
        Ledger { container, deployment: deployment.to_owned() }
    }

    pub fn container(&self) -> &Container {
        &self.container
    }

    fn record_blob(&self, phase: &str) -> String {
        format!("deployments/{}/phases/{phase}.json", self.deployment)
    }

    fn lock_blob(&self, phase: &str) -> String {
        format!("deployments/{}/locks/{phase}", self.deployment)
    }

    pub async fn read(&self, phase: &str) -> Result<Option<Record>, AzureError> {
        let Some(bytes) = self.container.get(&self.record_blob(phase)).await? else {
            return Ok(None);
        };
        // A record from a future version we cannot parse is reported as absent, not fatal: the
        // ledger is bookkeeping, and the target state decides what to do.
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Writes the phase's record. Only the holder of the phase's lock writes it (the lease is on
    /// the lock blob, so the record itself needs no lease).
    pub async fn write(&self, record: &Record, _held: &PhaseLock) -> Result<(), AzureError> {
        let body = Bytes::from(serde_json::to_vec_pretty(record).expect("record serializes"));
        self.container.put(&self.record_blob(&record.phase), body, "application/json", None).await
    }

    /// Takes the phase's lock, waiting up to `wait` for another runner to finish.
    pub async fn lock(&self, phase: &str, wait: Duration) -> Result<PhaseLock, LedgerError> {
        self.container.ensure().await?;
        let blob = self.lock_blob(phase);
        self.container.create_if_missing(&blob).await?;
        let started = Instant::now();
        let id = uuid::Uuid::new_v4().to_string();
        // A holder renews every RENEW_EVERY and a killed one's lease lapses within LEASE: look
        // often at first, then about once a second.
        let mut poll = Poll::new(wait, Duration::from_millis(250), Duration::from_secs(1));
        let mut announced = false;
        loop {
            if let Some(lease) = self.container.acquire_lease(&blob, LEASE, &id).await? {
                if announced {
                    tracing::info!(
                        phase,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "got the lock of phase {phase}"
                    );
                }
                return Ok(self.hold(lease));
            }
            let Some(pause) = poll.next(started.elapsed(), None) else {
                return Err(LedgerError::LockTimeout { phase: phase.to_owned(), waited: started.elapsed() });
            };
            if !announced {
                tracing::info!(phase, "another runner holds the lock of phase {phase}; waiting");
                announced = true;
            }
            tokio::time::sleep(pause).await;
        }
    }

    fn hold(&self, lease: Lease) -> PhaseLock {
        let lost = Arc::new(AtomicBool::new(false));
        let (container, held, flag) = (self.container.clone(), lease.clone(), lost.clone());
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if let Err(e) = container.renew_lease(&held).await {
                    tracing::error!(lock = %held.blob, error = %e, "lost the phase lock");
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        PhaseLock { container: self.container.clone(), lease, renewer, lost }
    }
}

impl PhaseLock {
    /// Whether renewal failed: another runner may now hold the lock.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self.container.release_lease(&self.lease).await {
            // Harmless: the lease expires by itself within LEASE.
            tracing::warn!(lock = %self.lease.blob, error = %e, "could not release the phase lock; it expires in {}s", LEASE.as_secs());
        }
    }
}

impl Drop for PhaseLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
