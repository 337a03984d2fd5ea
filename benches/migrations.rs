//! Migration overhead: 200 generated migrations against the local stack's PostgreSQL, through
//! the same runner `run database` uses (`db::apply`: lock session, one transaction per
//! migration with its tracking row and lock fence), against two references on the same server:
//! the bare scripts, each in its own transaction on one session (no bookkeeping at all), and
//! `sqlx::migrate::Migrator::run`. Each measurement gets a fresh database.
//!
//! Needs a running stack: `VIBEDATA_STACK_DIR=<dir> cargo bench --bench migrations`.
//! Prints a markdown table and one `migrations-summary {json}` line. `BENCH_REPS` (default 3)
//! repetitions; medians are reported.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};
use vibedata_bootstrap::azure::identity::Secret;
use vibedata_bootstrap::config::{DatabaseConfig, DbAuth};
use vibedata_bootstrap::db::{self, Db, MigrationSet, PasswordSource};

const COUNT: usize = 200;

/// A small, realistic migration: a table and an index.
fn files() -> Vec<(String, Vec<u8>)> {
    (1..=COUNT)
        .map(|i| {
            let sql = format!("CREATE TABLE bench_{i} (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');\nCREATE INDEX bench_{i}_note ON bench_{i} (note);\n");
            (format!("{i:04}_bench_{i}.sql"), sql.into_bytes())
        })
        .collect()
}

struct Server {
    env: BTreeMap<String, String>,
}

impl Server {
    fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.env["VIBEDATA_POSTGRES_HOST"])
            .port(self.env["VIBEDATA_POSTGRES_PORT"].parse().unwrap())
            .username("postgres")
            .password(&self.env["VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD"])
            .database(database)
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert(&self.env["VIBEDATA_CA_FILE"])
            .disable_statement_logging()
    }

    async fn fresh(&self, name: &str) -> String {
        let db = format!("bench_{name}_{}", std::process::id());
        let mut su = self.options("postgres").connect().await.unwrap();
        su.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))).await.unwrap();
        su.execute(AssertSqlSafe(format!("CREATE DATABASE {db}"))).await.unwrap();
        db
    }

    async fn drop(&self, db: &str) {
        let mut su = self.options("postgres").connect().await.unwrap();
        su.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))).await.unwrap();
    }

    fn db(&self, database: &str) -> Db {
        let cfg = DatabaseConfig {
            host: self.env["VIBEDATA_POSTGRES_HOST"].clone(),
            port: self.env["VIBEDATA_POSTGRES_PORT"].parse().unwrap(),
            database: database.to_owned(),
            user: "postgres".into(),
            auth: DbAuth::KeyVaultSecret("unused".into()),
            verify_full: true,
            lock_timeout: Duration::from_secs(60),
        };
        let password =
            PasswordSource::Fixed(Secret::new(self.env["VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD"].clone()));
        Db::new(&cfg, Some(self.env["VIBEDATA_CA_FILE"].clone().into()), password, Duration::from_secs(30))
    }
}

/// Ours: `db::apply`, then the rerun that finds all 200 applied.
async fn ours(server: &Server, set: &MigrationSet) -> (Duration, Duration) {
    let name = server.fresh("ours").await;
    let db = server.db(&name);
    let started = Instant::now();
    let outcome = db::apply(&db, std::slice::from_ref(set), Duration::from_secs(60), 0, &|_, _, _| ()).await.unwrap();
    let apply = started.elapsed();
    assert_eq!(outcome.changes(), COUNT as u64);
    let started = Instant::now();
    let again = db::apply(&db, std::slice::from_ref(set), Duration::from_secs(60), 0, &|_, _, _| ()).await.unwrap();
    let rerun = started.elapsed();
    assert_eq!(again.changes(), 0);
    server.drop(&name).await;
    (apply, rerun)
}

/// The scripts alone, each in its own transaction, on one session opened inside the timing.
async fn bare(server: &Server, set: &MigrationSet) -> Duration {
    let name = server.fresh("bare").await;
    let started = Instant::now();
    let mut conn: PgConnection = server.options(&name).connect().await.unwrap();
    for m in &set.migrations {
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(m.sql().to_owned())).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    conn.close().await.unwrap();
    let took = started.elapsed();
    server.drop(&name).await;
    took
}

/// `sqlx::migrate::Migrator::run` on one session opened inside the timing.
async fn sqlx_migrator(server: &Server, set: &MigrationSet) -> Duration {
    let name = server.fresh("sqlx").await;
    let migrator = sqlx::migrate::Migrator::with_migrations(set.migrations.iter().map(|m| m.inner.clone()).collect());
    let started = Instant::now();
    let mut conn: PgConnection = server.options(&name).connect().await.unwrap();
    migrator.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let took = started.elapsed();
    server.drop(&name).await;
    took
}

/// The fixed cost a run pays twice (lock session, migration session): one TLS + scram connect.
async fn connect(server: &Server) -> Duration {
    let name = server.fresh("connect").await;
    let started = Instant::now();
    let conn = server.db(&name).connect("bench").await.unwrap();
    conn.close().await.unwrap();
    let took = started.elapsed();
    server.drop(&name).await;
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    // The same stack harness as the integration tests (`VIBEDATA_STACK_DIR`).
    let server = Server { env: common::Stack::get().env };
    let reps: usize = std::env::var("BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let set = MigrationSet::from_files("release", "bench", files()).unwrap();
    let (mut ours_apply, mut ours_rerun, mut bare_t, mut sqlx_t, mut conn_t) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=reps {
        let (a, r) = ours(&server, &set).await;
        let b = bare(&server, &set).await;
        let s = sqlx_migrator(&server, &set).await;
        let c = connect(&server).await;
        println!(
            "{}",
            serde_json::json!({"rep": rep, "oursMs": ms(a), "oursRerunMs": ms(r), "bareMs": ms(b), "sqlxMs": ms(s), "connectMs": ms(c)})
        );
        conn_t.push(c);
        ours_apply.push(a);
        ours_rerun.push(r);
        bare_t.push(b);
        sqlx_t.push(s);
    }
    // Overheads from paired differences (same rep, same load), which the noise of a busy
    // machine affects far less than a difference of medians.
    let paired = |x: &[Duration]| {
        let mut d: Vec<f64> = x.iter().zip(&bare_t).map(|(x, b)| (ms(*x) - ms(*b)) / COUNT as f64).collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    };
    let (over_ours, over_sqlx) = (paired(&ours_apply), paired(&sqlx_t));
    let (a, r, b, s, c) = (median(ours_apply), median(ours_rerun), median(bare_t), median(sqlx_t), median(conn_t));
    let per = |d: Duration| ms(d) / COUNT as f64;
    println!("\n| {COUNT} migrations (median of {reps}) | total (ms) | per migration (ms) |\n|---|---:|---:|");
    println!("| vibedata-bootstrap `db::apply` | {:.0} | {:.2} |", ms(a), per(a));
    println!("| `sqlx` Migrator::run | {:.0} | {:.2} |", ms(s), per(s));
    println!("| bare scripts, one transaction each | {:.0} | {:.2} |", ms(b), per(b));
    println!("| rerun, all applied (`changes: 0`) | {:.0} | - |", ms(r));
    println!("| one connect (TLS + scram), of which a run makes two | {:.1} | - |", ms(c));
    println!("\noverhead per migration over the bare scripts (median of paired differences): {over_ours:.2} ms (ours), {over_sqlx:.2} ms (sqlx)");
    println!(
        "migrations-summary {}",
        serde_json::json!({
            "migrations": COUNT, "reps": reps,
            "oursTotalMs": ms(a), "oursPerMigrationMs": per(a), "oursOverheadPerMigrationMs": over_ours, "sqlxOverheadPerMigrationMs": over_sqlx,
            "sqlxTotalMs": ms(s), "bareTotalMs": ms(b), "rerunMs": ms(r), "connectMs": ms(c),
        })
    );
}
