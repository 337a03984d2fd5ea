//! The JSON object each phase leaves behind (DESIGN §3): on `$AZ_SCRIPTS_OUTPUT_PATH` for ARM, in
//! the rehearsal's outputs folder, and as the last log event.
//!
//! Small results only — ids, FQDNs, digests, counts. Bulky data goes to Blob.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseOutput {
    pub phase: String,
    /// `succeeded`, `unchanged` or `failed`; see [`status_for`].
    pub status: &'static str,
    /// Mutating calls on the platform's own state that the run made, also when it failed part-way.
    /// Bookkeeping (ledger, leases, probes) does not count.
    pub changes: u64,
    /// The first of those changes by name (`changes` counts them all), so whoever reads a failed
    /// run's outputs can tell "nothing happened" from "half happened", and what.
    pub changed: Vec<crate::phases::Change>,
    pub started_at: String,
    pub duration_ms: u64,
    /// True when nothing was mutated and `changes` counts what *would* change.
    pub dry_run: bool,
    pub summary: Value,
    pub error: Option<OutputError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputError {
    pub code: String,
    pub message: String,
    pub resource: String,
}

/// `unchanged` exactly when the phase succeeded without changing anything: that is how a user
/// (and a test) sees that a rerun was a no-op.
pub fn status_for(failed: bool, changes: u64) -> &'static str {
    match (failed, changes) {
        (true, _) => "failed",
        (false, 0) => "unchanged",
        (false, _) => "succeeded",
    }
}

/// Writes `output` to `path`, creating parent folders. ARM requires one JSON object.
pub fn write(path: &std::path::Path, output: &PhaseOutput) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut text = serde_json::to_string_pretty(output).expect("outputs serialize");
    text.push('\n');
    std::fs::write(path, text)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        assert_eq!(status_for(false, 0), "unchanged");
        assert_eq!(status_for(false, 3), "succeeded");
        assert_eq!(status_for(true, 0), "failed");
        assert_eq!(status_for(true, 2), "failed");
    }

    #[test]
    fn keys_are_camel_case_and_error_is_null_on_success() {
        let o = PhaseOutput {
            phase: "preflight".into(),
            status: status_for(false, 0),
            changes: 0,
            changed: Vec::new(),
            started_at: "2026-11-27T00:00:00Z".into(),
            duration_ms: 5,
            dry_run: false,
            summary: serde_json::json!({}),
            error: None,
        };
        let v = serde_json::to_value(&o).unwrap();
        for k in ["phase", "status", "changes", "changed", "startedAt", "durationMs", "dryRun", "summary", "error"] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v["error"].is_null());
    }
}
