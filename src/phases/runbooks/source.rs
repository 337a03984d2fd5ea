//! Reads the release's runbooks from artifact storage (DESIGN §4), never from the publisher:
//! `releases/latest.json` names the release and its manifest digest; the manifest document is
//! checked against the release-manifest artifact in the OCI layout; each runbook's layout ref
//! must point at the digest the manifest pins. Every blob is verified on the way out
//! ([`Layout::get_blob`]), and every runbook is extracted and validated here, before the phase
//! mutates anything.

use super::extract::{self, Script};
use crate::context::Context;
use crate::error::PhaseError;
use crate::release::{self, RunbookEntry};
use crate::stored_release::{paths, StoredRelease};

/// A runbook of the release, with its validated script.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub entry: RunbookEntry,
    pub script: Script,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub release: String,
    pub manifest_digest: String,
    pub runbooks: Vec<Loaded>,
}

fn bad(resource: impl Into<String>, message: impl Into<String>) -> PhaseError {
    PhaseError::bad_input(resource, message)
}

/// Reads, verifies and extracts every runbook of the current release. `limit` bounds each script.
pub async fn load(ctx: &Context, limit: u64) -> Result<Release, PhaseError> {
    let stored = StoredRelease::load(ctx).await?;
    let resource = format!("{}/oci {}", ctx.config.artifact_container, stored.manifest_digest);
    // The stored manifest may have been written by hand or by an older binary, and nothing has
    // been published yet: re-check what this phase relies on.
    release::check_runbooks(&stored.manifest.runbooks).map_err(|e| bad(&resource, e.to_string()))?;

    let mut runbooks = Vec::with_capacity(stored.manifest.runbooks.len());
    for entry in &stored.manifest.runbooks {
        let ref_name = paths::runbook_ref(&stored.release, &entry.name);
        let resource = format!("{} {ref_name}", ctx.config.artifact_container);
        // A compressed script is smaller than the script plus its tar framing; a bigger layer is
        // refused before it is read into memory.
        let layer = stored
            .artifact_layer(
                &ref_name,
                &entry.artifact.digest,
                release::RUNBOOK_ARTIFACT_TYPE,
                release::RUNBOOK_LAYER_TYPE,
                limit + extract::FRAMING,
            )
            .await?;
        let script = extract::extract(&layer, entry, limit)
            .map_err(|e| bad(&resource, format!("runbook {}: {e}", entry.name)))?;
        tracing::debug!(runbook = %entry.name, digest = %script.digest, "runbook extracted and validated");
        runbooks.push(Loaded { entry: entry.clone(), script });
    }
    tracing::info!(release = %stored.release, runbooks = runbooks.len(), "read, verified and validated every runbook of the release");
    Ok(Release { release: stored.release, manifest_digest: stored.manifest_digest, runbooks })
}
