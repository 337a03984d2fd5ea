//! The migration lock: a session-level advisory lock held on a connection of its own.
//!
//! Peers' pitfalls decided the shape (field notes §5): `sqlx` takes `pg_advisory_lock` on the
//! connection that runs the migrations and waits forever; when a migration fails, its unlock is
//! refused in the failed transaction and the lock leaks. Here the lock session runs nothing but
//! lock statements, so it is never in a failed transaction and its unlock cannot be refused;
//! the wait is bounded by `lock_timeout` and fails with the holder's name; and if the process
//! dies, the session ends and the server drops the lock. Each migration checks, inside its own
//! transaction, that the lock session still holds the lock ([`MigrationLock::still_held`]), so a
//! lock lost to a dropped connection stops the run instead of letting two runners overlap.

use std::time::{Duration, Instant};

use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{sqlstate, Db, DbError};

/// What messages call the lock.
pub const NAME: &str = "migration lock";
/// `pg_advisory_lock(int4, int4)` key: `'vdbs'` and 1. Advisory locks are per database, so one
/// key serves every database on a server.
pub const KEY: (i32, i32) = (0x7664_6273, 1);
/// `application_name` of the lock session.
pub const APPLICATION: &str = "vibedata-bootstrap migration lock";

/// The `pg_locks` row of our key in the current database (two-int keys have `objsubid` 2).
fn lock_row_filter() -> String {
    format!(
        "l.locktype = 'advisory' AND l.classid = {} AND l.objid = {} AND l.objsubid = 2 AND l.granted \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        KEY.0, KEY.1
    )
}

/// How often the otherwise idle lock session is pinged. Idle TCP flows through Azure's load
/// balancers and NAT are dropped after about four minutes, which would end the session (and the
/// lock) under a long migration.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The held lock. Release it with [`MigrationLock::release`]; dropping it closes the session,
/// which releases it too.
pub struct MigrationLock {
    /// Taken by `release`; `Drop` handles the paths that never get there (a panic).
    conn: Option<Arc<Mutex<PgConnection>>>,
    pid: i32,
    heartbeat: Option<JoinHandle<()>>,
}

impl Drop for MigrationLock {
    /// Stops the heartbeat, so its handle on the session goes too and the session closes.
    fn drop(&mut self) {
        if let Some(h) = &self.heartbeat {
            h.abort();
        }
    }
}

impl MigrationLock {
    /// Takes the lock, waiting at most `wait` for another holder.
    pub async fn acquire(db: &Db, wait: Duration) -> Result<MigrationLock, DbError> {
        let mut conn = db.connect(APPLICATION).await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .map_err(DbError::query("reading the lock session's pid"))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(KEY.0)
            .bind(KEY.1)
            .fetch_one(&mut conn)
            .await
            .map_err(DbError::query("trying the migration lock"))?;
        if !got {
            let started = Instant::now();
            let who = holder(&mut conn).await;
            tracing::info!(holder = %who, wait_secs = wait.as_secs(), "waiting up to {}s for the migration lock held by {who}", wait.as_secs());
            // lock_timeout bounds any lock wait of this session, advisory locks included.
            conn.execute(AssertSqlSafe(format!("SET lock_timeout = '{}ms'", wait.as_millis().max(1))))
                .await
                .map_err(DbError::query("setting lock_timeout"))?;
            let waited =
                sqlx::query("SELECT pg_advisory_lock($1, $2)").bind(KEY.0).bind(KEY.1).execute(&mut conn).await;
            match waited {
                Ok(_) => tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "migration lock acquired after waiting"
                ),
                // 55P03 lock_not_available: the wait ran out.
                Err(e) if sqlstate(&e).as_deref() == Some("55P03") => {
                    return Err(DbError::LockTimeout { waited: started.elapsed(), holder: holder(&mut conn).await });
                }
                Err(e) => return Err(DbError::query("waiting for the migration lock")(e)),
            }
            conn.execute("RESET lock_timeout").await.map_err(DbError::query("resetting lock_timeout"))?;
        }
        tracing::debug!(pid, "migration lock held");
        let conn = Arc::new(Mutex::new(conn));
        let heartbeat = tokio::spawn(heartbeat(conn.clone()));
        Ok(MigrationLock { conn: Some(conn), pid, heartbeat: Some(heartbeat) })
    }

    /// The backend pid of the lock session.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the lock session still holds the lock, asked on `conn` (the migration session,
    /// inside a migration's transaction).
    pub async fn still_held(&self, conn: &mut PgConnection) -> Result<bool, DbError> {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = $1 AND {})",
            lock_row_filter()
        )))
        .bind(self.pid)
        .fetch_one(conn)
        .await
        .map_err(DbError::query("checking the migration lock"))
    }

    /// Unlocks and closes the session. Never fails: if the unlock cannot be sent, closing (or
    /// the server noticing the session is gone) releases the lock all the same.
    pub async fn release(mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            // The aborted task has dropped its handle on the session once this returns.
            let _ = h.await;
        }
        let Some(Ok(conn)) = self.conn.take().map(Arc::try_unwrap) else {
            tracing::warn!("the lock session is still shared; dropping it releases the lock");
            return;
        };
        let mut conn = conn.into_inner();
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1, $2)")
            .bind(KEY.0)
            .bind(KEY.1)
            .fetch_one(&mut conn)
            .await;
        match unlocked {
            Ok(true) => tracing::debug!("migration lock released"),
            Ok(false) => tracing::warn!("the migration lock was not held at release; the session was interrupted"),
            Err(e) => tracing::warn!(error = %e, "unlock failed; closing the session releases the lock"),
        }
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing the lock session");
        }
    }
}

/// Keeps the lock session's TCP flow alive until aborted. A failed ping is logged once; the
/// fence in each migration's transaction is what stops the run.
async fn heartbeat(conn: Arc<Mutex<PgConnection>>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if let Err(e) = conn.lock().await.ping().await {
            tracing::warn!(error = %e, "the migration lock session stopped answering; the next migration will find out whether the lock still holds");
            return;
        }
    }
}

/// Who holds the lock, for messages: pid, application, client, since when.
async fn holder(conn: &mut PgConnection) -> String {
    let q = format!(
        "SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), coalesce(a.backend_start::text, '?') \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE {} LIMIT 1",
        lock_row_filter()
    );
    match sqlx::query_as::<_, (i32, String, String, String)>(AssertSqlSafe(q)).fetch_optional(conn).await {
        Ok(Some((pid, app, client, since))) => format!("pid {pid} ({app}, {client}, connected since {since})"),
        Ok(None) => "a session that has just ended".into(),
        Err(e) => format!("another session (not identified: {e})"),
    }
}
