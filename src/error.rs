//! What can end a run, and the exit code each maps to.

use crate::azure::AzureError;
use crate::config::ConfigError;
use crate::ledger::LedgerError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is incomplete or invalid. Nothing was mutated.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// An input (a release manifest, an artifact, an argument) is wrong. Nothing was mutated
    /// beyond what the message says.
    #[error("{phase}: bad input in {resource}: {message}")]
    BadInput { phase: String, resource: String, message: String },

    /// The phase exists in RFC-60 but its imperative step is not implemented in this version.
    #[error("phase {phase} is not built yet in this version of vibedata-bootstrap; nothing was done")]
    NotBuilt { phase: String },

    /// One or more preflight checks failed after their retries.
    #[error("{phase}: preflight failed: {failed}")]
    Preflight { phase: String, failed: String, code: String, resource: String },

    /// An Azure call failed after its retries.
    #[error("phase {phase} failed on {}: {} ({source})", .source.resource(), .source.code())]
    Azure {
        phase: String,
        #[source]
        source: AzureError,
    },

    /// A phase-level failure that is not one Azure call: a tag that points elsewhere, a digest
    /// that does not verify, a registry that refused us.
    #[error("phase {phase} failed on {resource}: {code} ({message})")]
    Phase { phase: String, code: String, resource: String, message: String },

    /// The health checks ran and were recorded, and the overall status is at least as bad as
    /// configured to fail (`VIBEDATA_HEALTH_FAIL_ON`). The outputs keep the phase's summary.
    /// `report` is the phase's `(changes, summary)`, boxed to keep every `Result` small.
    #[error("phase {phase}: {message}")]
    Unhealthy { phase: String, message: String, report: Box<(u64, serde_json::Value)> },

    #[error("phase {phase}: {source}")]
    Ledger {
        phase: String,
        #[source]
        source: LedgerError,
    },

    /// A local problem: a file that cannot be written, the HTTP client cannot be built.
    #[error("{0}")]
    Local(String),
}

impl RunError {
    pub fn azure(phase: &str, source: AzureError) -> RunError {
        RunError::Azure { phase: phase.to_owned(), source }
    }

    pub fn oci(phase: &str, e: crate::oci::OciError) -> RunError {
        use crate::oci::OciError;
        match e {
            OciError::Azure(a) => RunError::azure(phase, a),
            OciError::BadReference { reference, reason } => {
                RunError::BadInput { phase: phase.into(), resource: reference, message: reason }
            }
            other => RunError::Phase {
                phase: phase.into(),
                code: other.code().to_owned(),
                resource: oci_resource(&other),
                message: other.to_string(),
            },
        }
    }

    /// 2 for bad input or configuration (nothing mutated), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) | RunError::BadInput { .. } => 2,
            _ => 1,
        }
    }

    /// What a failed run still reports: `(changes, summary)` of a phase that did its work and
    /// then judged the result a failure (an Unhealthy platform).
    pub fn partial_report(&self) -> Option<(u64, serde_json::Value)> {
        match self {
            RunError::Unhealthy { report, .. } => Some((**report).clone()),
            _ => None,
        }
    }

    /// `(code, resource)` for the outputs' `error` object.
    pub fn code_and_resource(&self) -> (String, String) {
        match self {
            RunError::Config(e) => {
                ("InvalidConfiguration".into(), e.problems.iter().map(|p| p.key.clone()).collect::<Vec<_>>().join(","))
            }
            RunError::BadInput { resource, .. } => ("BadInput".into(), resource.clone()),
            RunError::NotBuilt { phase } => ("NotBuilt".into(), phase.clone()),
            RunError::Preflight { code, resource, .. } => (code.clone(), resource.clone()),
            RunError::Azure { source, .. } => (source.code().to_owned(), source.resource().to_owned()),
            RunError::Phase { code, resource, .. } => (code.clone(), resource.clone()),
            RunError::Unhealthy { report, .. } => {
                (report.1["overall"].as_str().unwrap_or("Unhealthy").to_owned(), "overall".into())
            }
            RunError::Ledger { source: LedgerError::Azure(e), .. } => (e.code().to_owned(), e.resource().to_owned()),
            RunError::Ledger { phase, .. } => ("LockTimeout".into(), phase.clone()),
            RunError::Local(_) => ("LocalError".into(), String::new()),
        }
    }
}

fn oci_resource(e: &crate::oci::OciError) -> String {
    use crate::oci::OciError;
    match e {
        OciError::DigestMismatch { repository, expected, .. } => format!("{repository}@{expected}"),
        OciError::RealmRefused { registry, .. } | OciError::Auth { registry, .. } => registry.clone(),
        OciError::Denied { registry, resource, .. }
        | OciError::NotFound { registry, resource }
        | OciError::Registry { registry, resource, .. }
        | OciError::Transport { registry, resource, .. } => format!("{registry}/{resource}"),
        OciError::SecretHostMismatch { host, .. } => host.clone(),
        OciError::Manifest { resource, .. } => resource.clone(),
        OciError::VerifyFailed { registry, repository, reference, .. } => {
            format!("{registry}/{repository}:{reference}")
        }
        _ => String::new(),
    }
}
