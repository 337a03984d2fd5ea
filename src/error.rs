//! What can end a run, the one mapping to exit codes, and the codes our own failures carry.
//!
//! Phases return [`PhaseError`] and never name themselves: the runner attaches the phase
//! ([`RunError::Phase`]), so every last stderr line has the same shape.

use std::fmt;

use serde_json::Value;

use crate::azure::AzureError;
use crate::config::ConfigError;
use crate::db::DbError;
use crate::ledger::LedgerError;
use crate::oci::OciError;

/// The code of a failure, as the outputs' `error.code` and the last stderr line carry it. Our
/// own failures have a variant each; codes another layer chose (Azure's `AuthorizationFailed`,
/// a registry's `DIGEST_INVALID`, a database error's class) pass through as [`Code::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A target tag points at another digest and `Force` is not configured.
    TagConflict,
    /// After the imports, a target tag does not point at the digest the manifest pins.
    VerifyFailed,
    /// One import outlasted `VIBEDATA_IMPORT_TIMEOUT_SECS`.
    ImportTimedOut,
    /// Artifact storage holds no release yet (`run artifacts` has not run).
    ReleaseNotFound,
    /// Artifact storage's layout points an artifact at another digest than the manifest pins.
    ArtifactStorageMismatch,
    /// Artifact storage lacks a blob the release needs.
    BlobNotFound,
    /// A configured runtime environment exists with another language or version.
    RuntimeEnvironmentConflict,
    /// A runbook vanished after it was published.
    RunbookMissing,
    /// A runbook is not in state Published after publishing.
    NotPublished,
    /// The published content of a runbook is not the release's script.
    ContentMismatch,
    /// The database has no registry schema (`run database` has not run).
    RegistrySchemaMissing,
    /// The registry holds no components (`run registry` has not run).
    RegistryEmpty,
    /// The AKS cluster refuses runCommand, the only way into a private cluster.
    RunCommandDisabled,
    /// The release pins no chart of the configured name.
    ChartNotFound,
    /// A runCommand ran and did not succeed.
    CommandFailed,
    /// Airbyte was installed, and its deployments or its server are not healthy.
    AirbyteUnhealthy,
    /// The Foundry project names no data-plane endpoint.
    ProjectEndpointMissing,
    /// A Search index of the release changes a field in a way the service refuses.
    BreakingIndexChange,
    /// The customer registry's network rules keep `importImage` out.
    TrustedServicesBypassDisabled,
    /// Postgres could not be reached for a preflight check.
    PostgresUnreachable,
    /// A preflight check failed without a more specific code.
    PreflightFailed,
    /// The configuration is incomplete or invalid.
    InvalidConfiguration,
    /// An input is wrong.
    BadInput,
    /// The phase is not built in this version.
    NotBuilt,
    /// Another runner held the phase lock past the wait.
    LockTimeout,
    /// A local problem (a file, the HTTP client).
    LocalError,
    /// A code another layer chose.
    Other(String),
}

impl Code {
    pub fn as_str(&self) -> &str {
        match self {
            Code::TagConflict => "TagConflict",
            Code::VerifyFailed => "VerifyFailed",
            Code::ImportTimedOut => "ImportTimedOut",
            Code::ReleaseNotFound => "ReleaseNotFound",
            Code::ArtifactStorageMismatch => "ArtifactStorageMismatch",
            Code::BlobNotFound => "BlobNotFound",
            Code::RuntimeEnvironmentConflict => "RuntimeEnvironmentConflict",
            Code::RunbookMissing => "RunbookMissing",
            Code::NotPublished => "NotPublished",
            Code::ContentMismatch => "ContentMismatch",
            Code::RegistrySchemaMissing => "RegistrySchemaMissing",
            Code::RegistryEmpty => "RegistryEmpty",
            Code::RunCommandDisabled => "RunCommandDisabled",
            Code::ChartNotFound => "ChartNotFound",
            Code::CommandFailed => "CommandFailed",
            Code::AirbyteUnhealthy => "AirbyteUnhealthy",
            Code::ProjectEndpointMissing => "ProjectEndpointMissing",
            Code::BreakingIndexChange => "BreakingIndexChange",
            Code::TrustedServicesBypassDisabled => "TrustedServicesBypassDisabled",
            Code::PostgresUnreachable => "PostgresUnreachable",
            Code::PreflightFailed => "PreflightFailed",
            Code::InvalidConfiguration => "InvalidConfiguration",
            Code::BadInput => "BadInput",
            Code::NotBuilt => "NotBuilt",
            Code::LockTimeout => "LockTimeout",
            Code::LocalError => "LocalError",
            Code::Other(s) => s,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Code {
    fn from(s: &str) -> Code {
        Code::Other(s.to_owned())
    }
}

/// What can end a phase. Conversions from the layers below keep their code and resource, so
/// phases use `?` and the last stderr line still names what failed.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// An input (a release manifest, an artifact) is wrong: exit 2.
    #[error("bad input in {resource}: {message}")]
    BadInput { resource: String, message: String },

    /// An Azure call failed after its retries.
    #[error("{} ({})", .source.code(), .source.detail())]
    Azure {
        #[source]
        source: AzureError,
    },

    /// A failure that is not one Azure call: a tag that points elsewhere, a digest that does not
    /// verify, a registry or database that refused us.
    #[error("{code} ({message})")]
    Failed { code: Code, resource: String, message: String },

    /// The phase did its work and judged the result a failure (the health checks ran, were
    /// recorded, and the platform is as unhealthy as configured to fail). `summary` is kept in
    /// the outputs.
    #[error("{message}")]
    Unhealthy { message: String, summary: Box<Value> },
}

impl PhaseError {
    pub fn bad_input(resource: impl Into<String>, message: impl Into<String>) -> PhaseError {
        PhaseError::BadInput { resource: resource.into(), message: message.into() }
    }

    pub fn failed(code: Code, resource: impl Into<String>, message: impl Into<String>) -> PhaseError {
        PhaseError::Failed { code, resource: resource.into(), message: message.into() }
    }

    /// `(code, resource)` for the outputs' `error` object.
    pub fn code_and_resource(&self) -> (String, String) {
        match self {
            PhaseError::BadInput { resource, .. } => (Code::BadInput.to_string(), resource.clone()),
            PhaseError::Azure { source } => (source.code().to_owned(), source.resource().to_owned()),
            PhaseError::Failed { code, resource, .. } => (code.to_string(), resource.clone()),
            PhaseError::Unhealthy { summary, .. } => {
                (summary["overall"].as_str().unwrap_or("Unhealthy").to_owned(), "overall".into())
            }
        }
    }
}

impl From<AzureError> for PhaseError {
    fn from(source: AzureError) -> PhaseError {
        PhaseError::Azure { source }
    }
}

impl From<OciError> for PhaseError {
    fn from(e: OciError) -> PhaseError {
        match e {
            OciError::Azure(source) => PhaseError::Azure { source },
            OciError::BadReference { reference, reason } => PhaseError::bad_input(reference, reason),
            OciError::TooLarge { resource, max } => {
                PhaseError::bad_input(resource.clone(), format!("{resource} is larger than {max} bytes"))
            }
            other => {
                let resource = oci_resource(&other);
                PhaseError::failed(other.code().into(), resource, other.to_string())
            }
        }
    }
}

impl From<DbError> for PhaseError {
    /// Bad migration files are bad input (exit 2); the rest are failures.
    fn from(e: DbError) -> PhaseError {
        match e {
            DbError::BadMigrations { .. } => PhaseError::bad_input(e.resource(), e.to_string()),
            other => PhaseError::failed(other.code().into(), other.resource(), other.to_string()),
        }
    }
}

/// A problem on this machine: a file that cannot be read or written, a client that cannot be
/// built. Not the platform's fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalError(pub String);

impl From<crate::azure::ClientError> for LocalError {
    fn from(e: crate::azure::ClientError) -> LocalError {
        LocalError(e.0)
    }
}

/// What can end a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is incomplete or invalid. Nothing was mutated.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The phase exists in RFC-60 but its imperative step is not implemented in this version.
    #[error("phase {phase} is not built yet in this version of vibedata-bootstrap; nothing was done")]
    NotBuilt { phase: String },

    /// One or more preflight checks failed after their retries.
    #[error(transparent)]
    Preflight(Box<PreflightFailure>),

    /// A phase failed.
    #[error("{}", phase_line(phase, error))]
    Phase {
        phase: &'static str,
        #[source]
        error: Box<PhaseError>,
    },

    /// The phase lock or ledger could not be had.
    #[error("phase {phase}: {source}")]
    Ledger {
        phase: String,
        #[source]
        source: Box<LedgerError>,
    },

    /// A local problem before any phase ran.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// Failed preflight checks. The line names the first failing check's resource, code and detail,
/// then the other failing checks by name.
#[derive(Debug, thiserror::Error)]
#[error("{phase}: preflight failed on {resource}: {code} ({check}: {detail}){}", others_line(others))]
pub struct PreflightFailure {
    pub phase: String,
    pub check: String,
    pub code: String,
    pub resource: String,
    pub detail: String,
    pub others: Vec<String>,
}

fn others_line(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!("; also failing: {}", others.join(", "))
    }
}

/// The last stderr line of a failed phase: the phase, the resource, the code, once each.
fn phase_line(phase: &str, error: &PhaseError) -> String {
    match error {
        PhaseError::BadInput { resource, message } => format!("{phase}: bad input in {resource}: {message}"),
        PhaseError::Azure { source } => {
            format!("phase {phase} failed on {}: {} ({})", source.resource(), source.code(), source.detail())
        }
        PhaseError::Failed { code, resource, message } => {
            format!("phase {phase} failed on {resource}: {code} ({message})")
        }
        PhaseError::Unhealthy { message, .. } => format!("phase {phase}: {message}"),
    }
}

impl RunError {
    /// `error` of `phase`: how the runner attaches the phase.
    pub fn phase(phase: &'static str, error: PhaseError) -> RunError {
        RunError::Phase { phase, error: Box::new(error) }
    }

    /// The one mapping to exit codes: 2 for bad configuration or input (nothing was mutated),
    /// 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => 2,
            RunError::Phase { error, .. } if matches!(**error, PhaseError::BadInput { .. }) => 2,
            _ => 1,
        }
    }

    /// What a failed phase still reports in its outputs: the summary of a phase that did its
    /// work and then judged the result a failure.
    pub fn partial_summary(&self) -> Option<Value> {
        match self {
            RunError::Phase { error, .. } => match &**error {
                PhaseError::Unhealthy { summary, .. } => Some((**summary).clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// `(code, resource)` for the outputs' `error` object.
    pub fn code_and_resource(&self) -> (String, String) {
        match self {
            RunError::Config(e) => (
                Code::InvalidConfiguration.to_string(),
                e.problems.iter().map(|p| p.key.clone()).collect::<Vec<_>>().join(","),
            ),
            RunError::NotBuilt { phase } => (Code::NotBuilt.to_string(), phase.clone()),
            RunError::Preflight(f) => (f.code.clone(), f.resource.clone()),
            RunError::Phase { error, .. } => error.code_and_resource(),
            RunError::Ledger { phase, source } => match &**source {
                LedgerError::Azure(e) => (e.code().to_owned(), e.resource().to_owned()),
                LedgerError::LockTimeout { .. } => (Code::LockTimeout.to_string(), phase.clone()),
            },
            RunError::Local(_) => (Code::LocalError.to_string(), String::new()),
        }
    }
}

fn oci_resource(e: &OciError) -> String {
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
        OciError::BadReference { reference, .. } => reference.clone(),
        OciError::TooLarge { resource, .. } => resource.clone(),
        OciError::Azure(e) => e.resource().to_owned(),
        OciError::Local(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_have_one_mapping() {
        let phase = |error| RunError::phase("artifacts", error);
        let cases: Vec<(RunError, i32)> = vec![
            (RunError::Config(ConfigError { problems: vec![] }), 2),
            (phase(PhaseError::bad_input("m", "bad")), 2),
            (phase(PhaseError::failed(Code::TagConflict, "r", "m")), 1),
            (phase(AzureError::Timeout { resource: "r".into(), after: std::time::Duration::ZERO }.into()), 1),
            (RunError::NotBuilt { phase: "ai".into() }, 1),
            (RunError::Local(LocalError("x".into())), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn the_last_line_names_the_phase_the_resource_and_the_code() {
        let e = RunError::phase("artifacts", PhaseError::failed(Code::TagConflict, "acr/x:1", "moved"));
        assert_eq!(e.to_string(), "phase artifacts failed on acr/x:1: TagConflict (moved)");
        let e = RunError::phase("runbooks", PhaseError::bad_input("m", "too long"));
        assert_eq!(e.to_string(), "runbooks: bad input in m: too long");
        assert_eq!(e.code_and_resource(), ("BadInput".into(), "m".into()));
    }

    #[test]
    fn bad_references_and_bad_migrations_are_bad_input() {
        let e: PhaseError = OciError::BadReference { reference: "x".into(), reason: "no".into() }.into();
        assert!(matches!(e, PhaseError::BadInput { .. }));
    }
}
