//! Postgres: connecting (Key Vault password or Entra token, TLS verified), the migration lock,
//! and the migration runner shared by the DB Deployment step and, for connections, the registry
//! and health phases.
//!
//! Two migration sets are tracked apart, each in its own table of `sqlx`'s layout in the
//! `vibedata_bootstrap` schema: this binary's platform-registry schema ([`migrations::embedded`])
//! and the release's migrations (read from artifact storage by the phase). `sqlx` provides the
//! model — file naming, `-- no-transaction`, SHA-384 checksums, the tracking table's columns —
//! and this module runs it with what `sqlx::Migrator` lacks: a bounded lock wait, dirty marking
//! of non-transactional migrations, reconnects after a lost connection, and progress lines.

pub mod connect;
pub mod lock;
pub mod migrate;
pub mod migrations;
pub mod provision;

use std::time::Duration;

pub use connect::{Db, PasswordSource};
pub use migrate::{apply, plan, Outcome, SetPlan};
pub use migrations::{Migration, MigrationSet};

/// Everything that can go wrong talking to Postgres or migrating it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A migration set's files are not what `sqlx` expects (bad name, duplicate version, not
    /// UTF-8, not a flat set of regular files). Bad input: nothing was applied.
    #[error("{origin}: {message}")]
    BadMigrations { origin: String, message: String },

    /// No Entra token could be had for the Postgres audience.
    #[error("no token for {scope}: {detail}")]
    Token { scope: String, detail: String },

    /// The server refused the credentials (SQLSTATE 28P01/28000).
    #[error("Postgres {target} refused user {user}: {detail}")]
    Auth { target: String, user: String, detail: String },

    /// The server could not be reached, TLS failed, or the connection dropped, and retries (if
    /// any) are used up.
    #[error("cannot reach Postgres {target}: {detail}")]
    Connect { target: String, detail: String },

    /// Another runner held the migration lock for longer than the configured wait.
    #[error("the migration lock is still held after {}s by {holder}; another runner is migrating this database (raise VIBEDATA_DB_LOCK_TIMEOUT_SECS to wait longer)", .waited.as_secs())]
    LockTimeout { waited: Duration, holder: String },

    /// The session holding the migration lock ended while migrations ran; another runner may
    /// have started. The migration in flight was rolled back.
    #[error("the migration lock was lost while migrating ({detail})")]
    LockLost { detail: String },

    /// A migration that is already applied was edited afterwards.
    #[error("{file} was changed after it was applied (checksum {applied} in {table}, {local} now); restore the original file and put the change in a new migration")]
    Drift { file: String, table: String, applied: String, local: String },

    /// An earlier run did not finish a migration that runs without a transaction (or a row
    /// was marked failed by hand): what it did is unknown, so nothing more is applied.
    #[error("{file} is dirty in {table}: a run started it without a transaction and did not finish. Check by hand what it did (e.g. an INVALID index left by CREATE INDEX CONCURRENTLY) and undo or complete it, then run `DELETE FROM {table} WHERE version = {version} AND NOT success;` and rerun")]
    Dirty { file: String, table: String, version: i64 },

    /// The database has a migration applied that this set does not contain (e.g. a newer
    /// release migrated it).
    #[error("{table} records migration {version} ({description}), which this set does not contain; a newer release may have migrated this database")]
    Missing { table: String, version: i64, description: String },

    /// A migration's SQL failed. `rolled_back` tells whether its transaction undid it.
    #[error("{file} failed: {detail}; {}", if *.rolled_back { "its transaction was rolled back, nothing of it was applied" } else { "it runs without a transaction, so it is now marked dirty" })]
    Failed { file: String, detail: String, rolled_back: bool },

    /// Any other statement failed.
    #[error("{context}: {source}")]
    Query {
        context: String,
        #[source]
        source: sqlx::Error,
    },
}

impl DbError {
    /// A stable code for the outputs' `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            DbError::BadMigrations { .. } => "BadMigrations",
            DbError::Token { .. } => "TokenUnavailable",
            DbError::Auth { .. } => "PostgresAuthFailed",
            DbError::Connect { .. } => "PostgresUnreachable",
            DbError::LockTimeout { .. } => "MigrationLockTimeout",
            DbError::LockLost { .. } => "MigrationLockLost",
            DbError::Drift { .. } => "MigrationChecksumMismatch",
            DbError::Dirty { .. } => "MigrationDirty",
            DbError::Missing { .. } => "MigrationMissing",
            DbError::Failed { .. } => "MigrationFailed",
            DbError::Query { .. } => "PostgresError",
        }
    }

    /// The file or object the error is about, for the outputs' `error.resource`.
    pub fn resource(&self) -> String {
        match self {
            DbError::Drift { file, .. } | DbError::Dirty { file, .. } | DbError::Failed { file, .. } => file.clone(),
            DbError::BadMigrations { origin, .. } => origin.clone(),
            DbError::Missing { table, version, .. } => format!("{table}:{version}"),
            DbError::Auth { target, .. } | DbError::Connect { target, .. } => target.clone(),
            DbError::Token { scope, .. } => scope.clone(),
            DbError::LockTimeout { .. } | DbError::LockLost { .. } => lock::NAME.to_owned(),
            DbError::Query { context, .. } => context.clone(),
        }
    }

    /// Whether retrying on a new connection can help: the connection broke, not the SQL.
    pub fn is_connection(&self) -> bool {
        match self {
            DbError::Connect { .. } | DbError::LockLost { .. } => true,
            DbError::Query { source, .. } => is_connection_error(source),
            _ => false,
        }
    }

    pub(crate) fn query(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
        let context = context.into();
        move |source| DbError::Query { context, source }
    }
}

/// Errors that mean the session is gone (or never came up), as opposed to a statement failing:
/// I/O and TLS failures, protocol breakage, and the SQLSTATEs a server sends while it shuts
/// down, crashes or starts (57P01-57P03) or for connection exceptions (class 08).
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Hex of a checksum, shortened for messages.
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    hex::encode(&bytes[..bytes.len().min(8)])
}
