//! Applying migration sets: `sqlx`'s model, run under the bounded [`MigrationLock`].
//!
//! Per migration: the script and its tracking row commit in one transaction, so a migration is
//! either wholly applied and recorded or not at all, whatever happens to the connection. A
//! `-- no-transaction` file cannot have that, so its row is written first with `success =
//! false` and flipped after the script: a run that dies in between leaves the set *dirty*, and
//! every later run refuses to continue until someone checks it by hand (the message says how).
//!
//! A lost connection (server restart, network) is retried on a new session: the lock is taken
//! again, the state re-read and re-checked, and the run continues where the database says it is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgDatabaseError;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use super::lock::MigrationLock;
use super::migrations::{Migration, MigrationSet, TRACKING_SCHEMA};
use super::{is_connection_error, short_hex, Db, DbError};

/// `application_name` of the migrating session.
pub const APPLICATION: &str = "vibedata-bootstrap migrations";

/// A row of a tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub description: String,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// Pure: the migrations of `set` still to apply, given its tracking rows, or why none may be.
/// Dirty beats drift beats missing: a dirty set is not to be touched at all.
pub fn pending<'a>(set: &'a MigrationSet, applied: &[Applied]) -> Result<Vec<&'a Migration>, DbError> {
    let local: BTreeMap<i64, &Migration> = set.migrations.iter().map(|m| (m.version(), m)).collect();
    let name_of = |a: &Applied| {
        local
            .get(&a.version)
            .map(|m| m.file.clone())
            .unwrap_or_else(|| format!("migration {} ({})", a.version, a.description))
    };
    if let Some(dirty) = applied.iter().find(|a| !a.success) {
        return Err(DbError::Dirty { file: name_of(dirty), table: set.table.clone(), version: dirty.version });
    }
    for a in applied {
        match local.get(&a.version) {
            None => {
                return Err(DbError::Missing {
                    table: set.table.clone(),
                    version: a.version,
                    description: a.description.clone(),
                })
            }
            Some(m) if m.checksum() != a.checksum.as_slice() => {
                return Err(DbError::Drift {
                    file: m.file.clone(),
                    table: set.table.clone(),
                    applied: short_hex(&a.checksum),
                    local: short_hex(m.checksum()),
                })
            }
            Some(_) => {}
        }
    }
    Ok(set.migrations.iter().filter(|m| !applied.iter().any(|a| a.version == m.version())).collect())
}

/// What a dry run reports per set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetPlan {
    pub set: &'static str,
    pub table: String,
    pub origin: String,
    pub total: usize,
    pub applied: usize,
    pub pending: Vec<String>,
}

/// What a run did per set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetOutcome {
    pub set: &'static str,
    pub table: String,
    pub origin: String,
    pub total: usize,
    /// Files this run applied, in order.
    pub applied: Vec<String>,
    pub latest_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub sets: Vec<SetOutcome>,
    /// New sessions opened after a lost connection.
    pub reconnects: u32,
}

impl Outcome {
    /// Migrations applied: the phase's `changes`.
    pub fn changes(&self) -> u64 {
        self.sets.iter().map(|s| s.applied.len() as u64).sum()
    }
}

/// Reads the state of every set and says what a run would apply. Takes no lock and creates
/// nothing (a tracking table that does not exist yet means nothing applied).
pub async fn plan(db: &Db, sets: &[MigrationSet]) -> Result<Vec<SetPlan>, DbError> {
    let mut conn = db.connect(APPLICATION).await?;
    let mut plans = Vec::new();
    for set in sets {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&set.table)
            .fetch_one(&mut conn)
            .await
            .map_err(DbError::query("reading the tracking tables"))?;
        let applied = if exists { read_applied(&mut conn, &set.table).await? } else { Vec::new() };
        let todo = pending(set, &applied)?;
        plans.push(SetPlan {
            set: set.name,
            table: set.table.clone(),
            origin: set.origin.clone(),
            total: set.migrations.len(),
            applied: set.migrations.len() - todo.len(),
            pending: todo.iter().map(|m| m.file.clone()).collect(),
        });
    }
    let _ = conn.close().await;
    Ok(plans)
}

/// What survives a lost connection: what this run applied, and the migration in flight.
#[derive(Default)]
struct Progress {
    applied: BTreeMap<&'static str, Vec<String>>,
    in_flight: Option<(&'static str, i64, String)>,
}

/// Told of every change to the database as it is made: `(set, file, action)`.
pub type OnChange<'a> = &'a (dyn Fn(&str, &str, &str) + Send + Sync);

/// Applies every set in order under the migration lock, waiting at most `lock_wait` for it and
/// retrying a lost connection up to `retries` times with backoff. `on_change` hears of each
/// migration applied, and of one left half-applied, as it happens.
pub async fn apply(
    db: &Db,
    sets: &[MigrationSet],
    lock_wait: Duration,
    retries: u32,
    on_change: OnChange<'_>,
) -> Result<Outcome, DbError> {
    let mut progress = Progress::default();
    let mut reconnects = 0;
    let latest = loop {
        match apply_once(db, sets, lock_wait, &mut progress, on_change).await {
            Ok(latest) => break latest,
            Err(e) if e.is_connection() && reconnects < retries => {
                reconnects += 1;
                let delay = Duration::from_millis(500 * 2u64.pow(reconnects.min(5) - 1)).min(Duration::from_secs(8));
                tracing::warn!(error = %e, attempt = reconnects, retries, "lost the connection to Postgres ({e}); the server rolls back an interrupted migration; reconnecting in {delay:?} (attempt {reconnects}/{retries})");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    };
    let sets = sets
        .iter()
        .zip(latest)
        .map(|(set, latest_version)| SetOutcome {
            set: set.name,
            table: set.table.clone(),
            origin: set.origin.clone(),
            total: set.migrations.len(),
            applied: progress.applied.remove(set.name).unwrap_or_default(),
            latest_version,
        })
        .collect();
    Ok(Outcome { sets, reconnects })
}

/// One session's worth: lock, check, apply. Returns the latest applied version per set. The
/// lock is released on every path; a panic or a killed process ends its session instead.
async fn apply_once(
    db: &Db,
    sets: &[MigrationSet],
    lock_wait: Duration,
    progress: &mut Progress,
    on_change: OnChange<'_>,
) -> Result<Vec<Option<i64>>, DbError> {
    let lock = MigrationLock::acquire(db, lock_wait).await?;
    let result = async {
        let mut conn = db.connect(APPLICATION).await?;
        let mut latest = Vec::new();
        for set in sets {
            latest.push(apply_set(&mut conn, &lock, set, progress, on_change).await?);
        }
        let _ = conn.close().await;
        Ok(latest)
    }
    .await;
    lock.release().await;
    result
}

async fn apply_set(
    conn: &mut PgConnection,
    lock: &MigrationLock,
    set: &MigrationSet,
    progress: &mut Progress,
    on_change: OnChange<'_>,
) -> Result<Option<i64>, DbError> {
    // Under the lock: `IF NOT EXISTS` DDL is not safe against a concurrent creator.
    ensure_table(conn, &set.table).await?;
    let applied = read_applied(conn, &set.table).await?;
    // A transaction whose COMMIT was sent when the connection died may have committed: the
    // table says so, and then it was this run's.
    if let Some((name, version, file)) = progress.in_flight.take() {
        if name == set.name && applied.iter().any(|a| a.version == version && a.success) {
            on_change(name, &file, "apply");
            progress.applied.entry(name).or_default().push(file);
        } else if name != set.name {
            progress.in_flight = Some((name, version, file));
        }
    }
    let todo = pending(set, &applied)?;
    let total = set.migrations.len();
    let mut done = total - todo.len();
    if todo.is_empty() {
        tracing::info!(set = set.name, total, "{} migrations up to date ({total} applied)", set.name);
    }
    let newest_applied = applied.iter().map(|a| a.version).max();
    for m in todo {
        if newest_applied.is_some_and(|v| v > m.version()) {
            // sqlx applies these too; say so, since the order differs from the files'.
            tracing::warn!(set = set.name, file = %m.file, "{} is older than migrations already applied; applying it out of order", m.file);
        }
        progress.in_flight = Some((set.name, m.version(), m.file.clone()));
        let started = Instant::now();
        let result = if m.no_tx() {
            apply_without_transaction(conn, lock, set, m).await
        } else {
            apply_in_transaction(conn, lock, set, m).await
        };
        if let Err(e) = result {
            if matches!(e, DbError::Failed { rolled_back: false, .. }) {
                on_change(set.name, &m.file, "apply (failed part-way; dirty)");
            }
            return Err(e);
        }
        on_change(set.name, &m.file, "apply");
        progress.in_flight = None;
        progress.applied.entry(set.name).or_default().push(m.file.clone());
        done += 1;
        tracing::info!(set = set.name, file = %m.file, ms = started.elapsed().as_millis() as u64, "applied {done}/{total} {} migrations: {}", set.name, m.file);
    }
    Ok(set.migrations.iter().map(Migration::version).max().filter(|_| done > 0))
}

async fn apply_in_transaction(
    conn: &mut PgConnection,
    lock: &MigrationLock,
    set: &MigrationSet,
    m: &Migration,
) -> Result<(), DbError> {
    let started = Instant::now();
    let mut tx = conn.begin().await.map_err(DbError::query(format!("starting the transaction of {}", m.file)))?;
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(m.sql().to_owned())).execute(&mut *tx).await {
        let _ = tx.rollback().await;
        return Err(script_error(m, e, true));
    }
    // The fence: the lock must still be ours when this commits.
    if !lock.still_held(&mut tx).await? {
        let _ = tx.rollback().await;
        return Err(DbError::LockLost {
            detail: format!("lock session pid {} no longer holds it; {} was rolled back", lock.pid(), m.file),
        });
    }
    record(&mut tx, set, m, true, started.elapsed()).await?;
    tx.commit().await.map_err(DbError::query(format!("committing {}", m.file)))
}

async fn apply_without_transaction(
    conn: &mut PgConnection,
    lock: &MigrationLock,
    set: &MigrationSet,
    m: &Migration,
) -> Result<(), DbError> {
    if !lock.still_held(conn).await? {
        return Err(DbError::LockLost {
            detail: format!("lock session pid {} no longer holds it; {} was not started", lock.pid(), m.file),
        });
    }
    // Marked dirty until the script has finished.
    record(conn, set, m, false, Duration::ZERO).await?;
    let started = Instant::now();
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(m.sql().to_owned())).execute(&mut *conn).await {
        return Err(script_error(m, e, false));
    }
    let q = format!("UPDATE {} SET success = TRUE, execution_time = $1 WHERE version = $2", set.table);
    sqlx::query(AssertSqlSafe(q))
        .bind(started.elapsed().as_nanos() as i64)
        .bind(m.version())
        .execute(conn)
        .await
        .map_err(DbError::query(format!("recording {} as finished", m.file)))?;
    Ok(())
}

/// A failed script: a lost connection stays retryable; anything else names the file and, for a
/// database error, the line and SQLSTATE.
fn script_error(m: &Migration, e: sqlx::Error, rolled_back: bool) -> DbError {
    if is_connection_error(&e) {
        return DbError::Query { context: format!("running {}", m.file), source: e };
    }
    let detail = match e.as_database_error().and_then(|d| d.try_downcast_ref::<PgDatabaseError>()) {
        Some(pg) => {
            let line = match pg.position() {
                Some(sqlx::postgres::PgErrorPosition::Original(pos)) => {
                    format!("line {}: ", m.sql().chars().take(pos.saturating_sub(1)).filter(|c| *c == '\n').count() + 1)
                }
                _ => String::new(),
            };
            format!("{line}{} (SQLSTATE {})", pg.message(), pg.code())
        }
        None => e.to_string(),
    };
    DbError::Failed { file: m.file.clone(), detail, rolled_back }
}

async fn record(
    conn: &mut PgConnection,
    set: &MigrationSet,
    m: &Migration,
    success: bool,
    took: Duration,
) -> Result<(), DbError> {
    let q = format!(
        "INSERT INTO {} (version, description, success, checksum, execution_time) VALUES ($1, $2, $3, $4, $5)",
        set.table
    );
    sqlx::query(AssertSqlSafe(q))
        .bind(m.version())
        .bind(m.description())
        .bind(success)
        .bind(m.checksum())
        // sqlx records nanoseconds; -1 until a non-transactional script has finished.
        .bind(if success { took.as_nanos() as i64 } else { -1 })
        .execute(conn)
        .await
        .map_err(DbError::query(format!("recording {} in {}", m.file, set.table)))?;
    Ok(())
}

/// `sqlx`'s tracking table layout, so `sqlx migrate info` can read it.
async fn ensure_table(conn: &mut PgConnection, table: &str) -> Result<(), DbError> {
    // In one transaction, with the "already exists, skipping" notices of every rerun silenced.
    let ddl = format!(
        "BEGIN;
         SET LOCAL client_min_messages = warning;
         CREATE SCHEMA IF NOT EXISTS {TRACKING_SCHEMA};
         CREATE TABLE IF NOT EXISTS {table} (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
             success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL,
             execution_time BIGINT NOT NULL
         );
         COMMIT;"
    );
    conn.execute(AssertSqlSafe(ddl)).await.map_err(DbError::query(format!("creating {table}")))?;
    Ok(())
}

async fn read_applied(conn: &mut PgConnection, table: &str) -> Result<Vec<Applied>, DbError> {
    let q = format!("SELECT version, description, success, checksum FROM {table} ORDER BY version");
    let rows: Vec<(i64, String, bool, Vec<u8>)> =
        sqlx::query_as(AssertSqlSafe(q)).fetch_all(conn).await.map_err(DbError::query(format!("reading {table}")))?;
    Ok(rows
        .into_iter()
        .map(|(version, description, success, checksum)| Applied { version, description, success, checksum })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        MigrationSet::from_files(
            "release",
            "test",
            files.iter().map(|(n, s)| ((*n).to_owned(), s.as_bytes().to_vec())).collect(),
        )
        .unwrap()
    }

    fn row(s: &MigrationSet, version: i64, success: bool) -> Applied {
        let m = s.migrations.iter().find(|m| m.version() == version).unwrap();
        Applied { version, description: m.description().to_owned(), success, checksum: m.checksum().to_vec() }
    }

    #[test]
    fn pending_is_what_the_table_lacks() {
        let s = set(&[("1_a.sql", "A"), ("2_b.sql", "B"), ("3_c.sql", "C")]);
        let files = |v: Vec<&Migration>| v.iter().map(|m| m.file.clone()).collect::<Vec<_>>();
        assert_eq!(files(pending(&s, &[]).unwrap()), ["1_a.sql", "2_b.sql", "3_c.sql"]);
        assert_eq!(files(pending(&s, &[row(&s, 1, true), row(&s, 3, true)]).unwrap()), ["2_b.sql"]);
        assert!(pending(&s, &[row(&s, 1, true), row(&s, 2, true), row(&s, 3, true)]).unwrap().is_empty());
    }

    #[test]
    fn an_edited_applied_migration_is_drift_naming_the_file() {
        let old = set(&[("1_a.sql", "A"), ("2_b.sql", "B")]);
        let new = set(&[("1_a.sql", "A -- edited"), ("2_b.sql", "B")]);
        let e = pending(&new, &[row(&old, 1, true)]).unwrap_err();
        assert!(matches!(&e, DbError::Drift { file, .. } if file == "1_a.sql"), "{e}");
        assert!(e.to_string().contains("1_a.sql was changed after it was applied"), "{e}");
    }

    #[test]
    fn dirty_wins_and_says_how_to_repair() {
        let s = set(&[("1_a.sql", "A"), ("2_b.sql", "-- no-transaction\nB")]);
        let mut drifted = row(&s, 1, true);
        drifted.checksum = vec![0; 48];
        let e = pending(&s, &[drifted, row(&s, 2, false)]).unwrap_err();
        assert!(matches!(&e, DbError::Dirty { file, version: 2, .. } if file == "2_b.sql"), "{e}");
        assert!(
            e.to_string()
                .contains("DELETE FROM vibedata_bootstrap.release_migrations WHERE version = 2 AND NOT success"),
            "{e}"
        );
    }

    #[test]
    fn an_applied_version_missing_from_the_set_is_refused() {
        let s = set(&[("1_a.sql", "A")]);
        let stranger =
            Applied { version: 7, description: "from a newer release".into(), success: true, checksum: vec![1] };
        let e = pending(&s, &[row(&s, 1, true), stranger]).unwrap_err();
        assert!(matches!(e, DbError::Missing { version: 7, .. }), "{e}");
    }
}
