//! DB Deployment over the local stack's real PostgreSQL 15 (TLS verify-full with the local CA,
//! scram): the embedded registry schema and a release's migrations from artifact storage.
//!
//! Each test migrates a database of its own (`test_<name>_<pid>`, owned by the application role)
//! and reads releases from an artifact container of its own, so tests run in parallel. The
//! `exclusive_*` tests stop Postgres or change the emulator's token lifetime; they run alone
//! (.config/nextest.toml, and a process-wide gate under plain `cargo test`).

mod common;
#[path = "database/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use common::*;
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Executor};
use support::*;
use vibedata_bootstrap::config::{DatabaseConfig, DbAuth};
use vibedata_bootstrap::db::{self, Db, MigrationSet, PasswordSource};

/// One test's database, artifact container and outputs file.
struct Case {
    stack: Stack,
    db: String,
    container: String,
    out: tempfile::TempDir,
}

impl Case {
    async fn new(name: &str) -> Case {
        Self::owned_by(name, "vibedata").await
    }

    async fn owned_by(name: &str, owner: &str) -> Case {
        let stack = Stack::get();
        let db = create_database(&stack, name, owner).await;
        let container = format!("db-{}-{}", name.replace('_', "-"), std::process::id());
        Case { stack, db, container, out: tempfile::tempdir().unwrap() }
    }

    fn out(&self) -> std::path::PathBuf {
        self.out.path().join("database.json")
    }

    fn env(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let out = self.out();
        let mut o = vec![
            ("VIBEDATA_POSTGRES_DATABASE", self.db.as_str()),
            ("VIBEDATA_ARTIFACT_CONTAINER", self.container.as_str()),
            ("AZ_SCRIPTS_OUTPUT_PATH", out.to_str().unwrap()),
        ];
        o.extend_from_slice(extra);
        self.stack.env_for(&self.db, &o)
    }

    /// `run database`; returns the process output and the outputs JSON.
    fn run(&self, extra: &[(&str, &str)], args: &[&str]) -> (std::process::Output, Value) {
        let _ = std::fs::remove_file(self.out());
        let mut all = vec!["run", "database"];
        all.extend_from_slice(args);
        let o = self.stack.cli(&self.env(extra), &all);
        let v = std::fs::read(self.out()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
        (o, v)
    }

    async fn release(&self, name: &str, files: &[(&str, &str)]) {
        store_release(&self.stack, &self.container, name, files).await;
    }

    async fn drop(self) {
        drop_database(&self.stack, &self.db).await;
    }
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "exit {:?}\n{}\n{}", o.status.code(), stdout(o), stderr(o));
}

fn changes(v: &Value) -> (String, u64) {
    (v["status"].as_str().unwrap_or("?").to_owned(), v["changes"].as_u64().unwrap_or(u64::MAX))
}

/// The embedded registry schema's migrations, applied by every first run.
fn registry_migrations() -> u64 {
    db::migrations::embedded().migrations.len() as u64
}

#[tokio::test]
async fn sample_release_applies_once_then_reruns_unchanged() {
    let _g = shared().await;
    let case = Case::new("sample").await;
    let release = "2026.12.7";
    let pushed = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sample-release"))
        .args([
            "push",
            "--release",
            release,
            "--out",
            &format!("{}/target/sample-release-tests/{release}", env!("CARGO_MANIFEST_DIR")),
        ])
        .envs(&case.stack.env)
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let manifest = format!("vibedata/release-manifest:{release}");
    let art = case.stack.cli(
        &case.env(&[("VIBEDATA_IMAGES", "vibedata/api"), ("VIBEDATA_RELEASE_MANIFEST", &manifest)]),
        &["run", "artifacts"],
    );
    ok(&art);

    // A dry run lists all eight and creates nothing, not even the tracking tables.
    let (o, v) = case.run(&[], &["--dry-run"]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 6));
    assert_eq!(v["summary"]["sets"][1]["pending"].as_array().unwrap().len(), 6);
    assert!(!table_exists(&case.stack, &case.db, "vibedata_bootstrap.registry_migrations").await);

    let (o, v) = case.run(&[], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 6));
    assert_eq!(v["summary"]["auth"], "keyVaultSecret");
    assert_eq!(v["summary"]["sslMode"], "verify-full");
    assert_eq!(v["summary"]["release"], release);
    assert!(
        stdout(&o).contains("applied 6/6 release migrations: 20261101000006_create_settings.sql"),
        "progress lines"
    );
    for t in [
        "registry.resources",
        "registry.endpoints",
        "registry.configuration_references",
        "registry.health_results",
        "registry.health_status",
        "registry.snapshots",
        "vibedata_app.settings",
    ] {
        assert!(table_exists(&case.stack, &case.db, t).await, "{t}");
    }
    let embedded: Vec<i64> = db::migrations::embedded().migrations.iter().map(|m| m.version()).collect();
    assert_eq!(recorded(&case.stack, &case.db, "registry").await, embedded);
    assert_eq!(recorded(&case.stack, &case.db, "release").await.len(), 6);
    // The no-transaction index migration ran outside a transaction and is valid.
    let mut su = superuser(&case.stack, &case.db).await;
    assert_eq!(scalar_i64(&mut su, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'datasets_name_lower_idx' AND i.indisvalid").await, 1);

    let (o, v) = case.run(&[], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("unchanged".into(), 0));
    // The Key Vault password never leaves the process.
    let password = kv_password(&case.stack).await;
    assert!(!stdout(&o).contains(&password) && !stderr(&o).contains(&password) && !v.to_string().contains(&password));
    case.drop().await;
}

async fn kv_password(stack: &Stack) -> String {
    let emulator: Value = serde_json::from_slice(&std::fs::read(stack.dir.join("emulator.json")).unwrap()).unwrap();
    emulator["secrets"]["postgres-password"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused_by_name() {
    let _g = shared().await;
    let case = Case::new("drift").await;
    case.release("r1", &[("1_a.sql", "CREATE TABLE drift_a (id int);"), ("2_b.sql", "CREATE TABLE drift_b (id int);")])
        .await;
    let (o, v) = case.run(&[], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 2));

    case.release(
        "r2",
        &[
            ("1_a.sql", "CREATE TABLE drift_a (id int, note text);"),
            ("2_b.sql", "CREATE TABLE drift_b (id int);"),
            ("3_c.sql", "CREATE TABLE drift_c (id int);"),
        ],
    )
    .await;
    let (o, v) = case.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = last_stderr_line(&o);
    assert!(
        line.contains("1_a.sql")
            && line.contains("MigrationChecksumMismatch")
            && line.contains("changed after it was applied"),
        "{line}"
    );
    assert_eq!(v["error"]["resource"], "1_a.sql");
    assert!(!table_exists(&case.stack, &case.db, "public.drift_c").await, "nothing after drift is applied");
    case.drop().await;
}

#[tokio::test]
async fn a_failing_migration_rolls_back_and_names_itself() {
    let _g = shared().await;
    let case = Case::new("failing").await;
    case.release(
        "r1",
        &[
            ("1_a.sql", "CREATE TABLE fail_a (id int);"),
            ("2_bad.sql", "CREATE TABLE fail_b (id int);\nINSERT INTO no_such_table VALUES (1);\n"),
        ],
    )
    .await;
    let (o, v) = case.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = last_stderr_line(&o);
    assert!(
        line.contains("2_bad.sql failed: line 2: relation \"no_such_table\" does not exist (SQLSTATE 42P01)")
            && line.contains("rolled back"),
        "{line}"
    );
    assert_eq!(v["error"]["code"], "MigrationFailed");
    assert!(!table_exists(&case.stack, &case.db, "public.fail_b").await, "the failed migration left nothing");
    assert!(table_exists(&case.stack, &case.db, "public.fail_a").await);
    assert_eq!(recorded(&case.stack, &case.db, "release").await, [1]);

    // Fixed in the next release, it applies; what was applied before is not repeated.
    case.release(
        "r2",
        &[("1_a.sql", "CREATE TABLE fail_a (id int);"), ("2_bad.sql", "CREATE TABLE fail_b (id int);\n")],
    )
    .await;
    let (o, v) = case.run(&[], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), 1));
    case.drop().await;
}

#[tokio::test]
async fn a_failed_no_transaction_migration_is_dirty_until_repaired() {
    let _g = shared().await;
    let case = Case::new("dirty").await;
    let bad = "-- no-transaction\nCREATE INDEX CONCURRENTLY dirty_idx ON no_such_table (id);\n";
    case.release("r1", &[("1_a.sql", "CREATE TABLE dirty_a (id int);"), ("2_idx.sql", bad)]).await;
    let (o, _) = case.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        last_stderr_line(&o).contains("2_idx.sql failed") && last_stderr_line(&o).contains("marked dirty"),
        "{}",
        last_stderr_line(&o)
    );

    // Every later run refuses, saying how to repair, whatever the release holds now.
    let good = "-- no-transaction\nCREATE INDEX CONCURRENTLY dirty_idx ON dirty_a (id);\n";
    case.release("r2", &[("1_a.sql", "CREATE TABLE dirty_a (id int);"), ("2_idx.sql", good)]).await;
    let (o, v) = case.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let line = last_stderr_line(&o);
    let repair = "DELETE FROM vibedata_bootstrap.release_migrations WHERE version = 2 AND NOT success;";
    assert!(line.contains("MigrationDirty") && line.contains(repair), "{line}");
    assert_eq!(v["error"]["resource"], "2_idx.sql");

    let mut su = superuser(&case.stack, &case.db).await;
    su.execute(repair).await.unwrap();
    let (o, v) = case.run(&[], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), 1));
    assert_eq!(scalar_i64(&mut su, "SELECT count(*) FROM pg_indexes WHERE indexname = 'dirty_idx'").await, 1);
    case.drop().await;
}

#[tokio::test]
async fn bad_migration_files_are_bad_input() {
    let _g = shared().await;
    let case = Case::new("badfiles").await;
    for (files, why) in [
        (vec![("1_a.sql", "SELECT 1;"), ("create_things.sql", "SELECT 1;")], "create_things.sql"),
        (vec![("sub/1_a.sql", "SELECT 1;")], "in a folder"),
        (vec![("1_a.sql", "SELECT 1;"), ("01_b.sql", "SELECT 1;")], "both have version 1"),
    ] {
        case.release("r1", &files).await;
        let (o, v) = case.run(&[], &[]);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", stderr(&o));
        assert!(last_stderr_line(&o).contains(why), "{}", last_stderr_line(&o));
        assert_eq!(v["error"]["code"], "BadInput");
    }
    assert!(recorded(&case.stack, &case.db, "registry").await.is_empty(), "bad input mutates nothing");
    case.drop().await;
}

#[tokio::test]
async fn concurrent_runners_one_applies_the_other_waits_and_changes_nothing() {
    let _g = shared().await;
    let case = Case::new("concurrent").await;
    case.release(
        "r1",
        &[
            ("1_slow.sql", "CREATE TABLE conc_a (id int);\nSELECT pg_sleep(4);"),
            ("2_b.sql", "CREATE TABLE conc_b (id int);"),
        ],
    )
    .await;
    // Different deployments (so their Blob phase leases do not serialize them), one database.
    let env = |who: &str| {
        let mut e = case.env(&[]);
        e.insert("VIBEDATA_DEPLOYMENT_ID".into(), format!("{}-{who}", case.db));
        e.insert(
            "AZ_SCRIPTS_OUTPUT_PATH".into(),
            case.out.path().join(format!("{who}.json")).to_string_lossy().into_owned(),
        );
        e
    };
    let first = spawn(&env("first"), &["run", "database"]);
    let mut su = superuser(&case.stack, &case.db).await;
    let lock = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {} AND objid = {} AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        db::lock::KEY.0,
        db::lock::KEY.1
    );
    wait_until(Duration::from_secs(60), "the first runner to hold the lock", async || {
        scalar_i64(&mut su, &lock).await == 1
    })
    .await;
    let second = spawn(&env("second"), &["run", "database"]);
    let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    let read = |who: &str| {
        serde_json::from_slice::<Value>(&std::fs::read(case.out.path().join(format!("{who}.json"))).unwrap()).unwrap()
    };
    assert_eq!(changes(&read("first")), ("succeeded".into(), registry_migrations() + 2));
    assert_eq!(changes(&read("second")), ("unchanged".into(), 0));
    assert!(stdout(&b).contains("waiting up to 120s for the migration lock held by pid"), "{}", stdout(&b));
    case.drop().await;
}

#[tokio::test]
async fn a_held_lock_is_waited_for_a_bounded_time_then_fails_loudly() {
    let _g = shared().await;
    let case = Case::new("locktimeout").await;
    case.release("r1", &[("1_a.sql", "CREATE TABLE lt_a (id int);")]).await;
    let mut holder = superuser(&case.stack, &case.db).await;
    let pid = scalar_i64(&mut holder, "SELECT pg_backend_pid()::bigint").await;
    holder
        .execute(AssertSqlSafe(format!("SELECT pg_advisory_lock({}, {})", db::lock::KEY.0, db::lock::KEY.1)))
        .await
        .unwrap();

    let started = Instant::now();
    let (o, v) = case.run(&[("VIBEDATA_DB_LOCK_TIMEOUT_SECS", "2")], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(30), "bounded: {:?}", started.elapsed());
    let line = last_stderr_line(&o);
    assert!(line.contains("MigrationLockTimeout") && line.contains(&format!("pid {pid} (database tests")), "{line}");
    assert_eq!(v["error"]["code"], "MigrationLockTimeout");
    assert!(recorded(&case.stack, &case.db, "registry").await.is_empty());

    holder
        .execute(AssertSqlSafe(format!("SELECT pg_advisory_unlock({}, {})", db::lock::KEY.0, db::lock::KEY.1)))
        .await
        .unwrap();
    let (o, v) = case.run(&[("VIBEDATA_DB_LOCK_TIMEOUT_SECS", "2")], &[]);
    ok(&o);
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 1));
    case.drop().await;
}

#[tokio::test]
async fn the_lock_is_released_on_every_path() {
    let _g = shared().await;
    let case = Case::new("lockpaths").await;
    let pg = superuser_db(&case.stack, &case.db);
    let wait = Duration::from_secs(3);
    // Released explicitly.
    db::lock::MigrationLock::acquire(&pg, wait).await.unwrap().release().await;
    // Dropped without release (a panic unwinding through the runner): the session closes.
    drop(db::lock::MigrationLock::acquire(&pg, wait).await.unwrap());
    let again = db::lock::MigrationLock::acquire(&pg, wait).await.expect("a dropped lock is free again");
    // Held: a second taker waits, then fails naming the holder.
    let e = db::lock::MigrationLock::acquire(&pg, Duration::from_secs(1)).await.err().expect("held");
    assert!(e.to_string().contains(&format!("pid {} ({}", again.pid(), db::lock::APPLICATION)), "{e}");
    again.release().await;
    // A failing migration on the migrating session leaves the lock free (the sqlx pitfall).
    let set = MigrationSet::from_files("release", "test", vec![("1_bad.sql".into(), b"SELECT 1/0;".to_vec())]).unwrap();
    assert!(matches!(db::apply(&pg, &[set], wait, 0, &|_, _, _| ()).await, Err(db::DbError::Failed { .. })));
    db::lock::MigrationLock::acquire(&pg, wait).await.expect("free after a failed migration").release().await;
    case.drop().await;
}

/// Creates a login role whose password is `password` and returns its name.
async fn role(stack: &Stack, name: &str, password: &str) -> String {
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "a JWT");
    let role = unique(name);
    let mut su = superuser(stack, "postgres").await;
    su.execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}"))).await.unwrap();
    su.execute(AssertSqlSafe(format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))).await.unwrap();
    role
}

#[tokio::test]
async fn an_entra_token_is_the_password() {
    let _g = shared().await;
    let stack = Stack::get();
    // The emulator, like IMDS, hands the same identity the same token for an audience until it
    // nears expiry, so the runner will present this very token.
    let token = stack.bootstrap_token("https://ossrdbms-aad.database.windows.net").await;
    assert!(token.len() > 500, "a real JWT ({} bytes); scram hashes it, so Postgres takes it whole", token.len());
    let user = role(&stack, "entra", &token).await;
    let case = Case::owned_by("entra", &user).await;
    case.release("r1", &[("1_a.sql", "CREATE TABLE entra_a (id int);")]).await;
    let (o, v) = case.run(&[("VIBEDATA_POSTGRES_USER", &user), ("VIBEDATA_POSTGRES_PASSWORD_SECRET", "")], &[]);
    ok(&o);
    assert_eq!(v["summary"]["auth"], "entra");
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 1));
    assert!(
        stdout(&o).contains("token https://ossrdbms-aad.database.windows.net/.default"),
        "preflight asks for the Postgres audience"
    );
    assert!(!stdout(&o).contains(&token) && !v.to_string().contains(&token), "the token never appears");
    case.drop().await;
    let mut su = superuser(&stack, "postgres").await;
    su.execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {user}"))).await.unwrap();
}

/// Stands in for Entra on the server side: every token the identity issues becomes the role's
/// only valid password, until the token's `exp` (`VALID UNTIL`). A stale token is refused.
#[derive(Debug)]
struct Rotating {
    inner: Arc<vibedata_bootstrap::azure::identity::Tokens>,
    su: sqlx::postgres::PgConnectOptions,
    role: String,
    issued: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl TokenCredential for Rotating {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let t = self.inner.get_token(scopes, options).await?;
        let until = t.expires_on.format(&time::format_description::well_known::Rfc3339).unwrap();
        let mut su = sqlx::ConnectOptions::connect(&self.su).await.unwrap();
        su.execute(AssertSqlSafe(format!(
            "ALTER ROLE {} PASSWORD '{}' VALID UNTIL '{until}'",
            self.role,
            t.token.secret()
        )))
        .await
        .unwrap();
        self.issued.lock().unwrap().push(t.token.secret().to_owned());
        Ok(t)
    }
}

async fn set_token_lifetime(stack: &Stack, seconds: Option<u64>) {
    let r = stack
        .http()
        .put(format!("{}/identity", stack.control()))
        .json(&json!({"lifetimeSeconds": seconds}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

#[tokio::test]
async fn exclusive_a_reconnect_presents_a_fresh_entra_token() {
    let _g = exclusive().await;
    let stack = Stack::get();
    // Short-lived tokens: with a lifetime under the five-minute reissue window, the identity
    // issues a new one at every request. Expiring the cached ones makes that start now.
    set_token_lifetime(&stack, Some(200)).await;
    let r = stack.http().post(format!("{}/identity/expire", stack.control())).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let user = role(&stack, "rotating", "not-yet").await;
    let case = Case::owned_by("rotating", &user).await;
    let issued = Arc::new(Mutex::new(Vec::new()));
    let rotating = Rotating {
        inner: tokens(&stack),
        su: superuser_options(&stack, "postgres"),
        role: user.clone(),
        issued: issued.clone(),
    };
    let rotating = Arc::new(rotating);
    let tokens = vibedata_bootstrap::azure::identity::Tokens::from_factory(Box::new(move || {
        Ok(rotating.clone() as Arc<dyn TokenCredential>)
    }))
    .unwrap();
    let cfg = DatabaseConfig {
        host: stack.var("VIBEDATA_POSTGRES_HOST").into(),
        port: stack.var("VIBEDATA_POSTGRES_PORT").parse().unwrap(),
        database: case.db.clone(),
        user: user.clone(),
        auth: DbAuth::Entra,
        verify_full: true,
        lock_timeout: Duration::from_secs(30),
    };
    let pg = Db::new(
        &cfg,
        Some(stack.var("VIBEDATA_CA_FILE").into()),
        PasswordSource::Entra { tokens, scope: POSTGRES_SCOPE.into() },
        Duration::from_secs(30),
    );
    let files: Vec<(String, Vec<u8>)> = (1..=6)
        .map(|i| (format!("{i}_t.sql"), format!("CREATE TABLE rot_{i} (id int);\nSELECT pg_sleep(0.5);").into_bytes()))
        .collect();
    let set = MigrationSet::from_files("release", "test", files).unwrap();

    // Drop every session of the role once two migrations are in: the runner must come back.
    let killer = async {
        let mut su = superuser(&stack, &case.db).await;
        let count = "SELECT count(*) FROM vibedata_bootstrap.release_migrations";
        wait_until(Duration::from_secs(60), "two migrations", async || {
            sqlx::query_scalar::<_, i64>(count).fetch_one(&mut su).await.map(|n| n >= 2).unwrap_or(false)
        })
        .await;
        scalar_i64(
            &mut su,
            &format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{user}'"),
        )
        .await
    };
    let sets = [set];
    let (outcome, killed) = tokio::join!(db::apply(&pg, &sets, Duration::from_secs(30), 8, &|_, _, _| ()), killer);
    set_token_lifetime(&stack, None).await;
    let outcome = outcome.unwrap();
    assert!(killed >= 1 && outcome.reconnects >= 1, "killed {killed}, reconnects {}", outcome.reconnects);
    assert_eq!(outcome.changes(), 6);
    let issued = issued.lock().unwrap().clone();
    // Lock and migration sessions, before and after the reconnect: each with a token of its own.
    assert!(issued.len() >= 4, "{} tokens", issued.len());
    let distinct: std::collections::BTreeSet<_> = issued.iter().collect();
    assert_eq!(distinct.len(), issued.len(), "every connect presented a freshly issued token");
    case.drop().await;
    let mut su = superuser(&stack, "postgres").await;
    su.execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {user}"))).await.unwrap();
}

#[tokio::test]
async fn exclusive_postgres_restarted_mid_run_is_retried_and_nothing_is_half_applied() {
    let _g = exclusive().await;
    let case = Case::new("restart").await;
    let files: Vec<(String, String)> = (1..=10)
        .map(|i| (format!("{i}_r.sql"), format!("CREATE TABLE restart_{i} (id int);\nSELECT pg_sleep(0.6);")))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    case.release("r1", &refs).await;
    let runner = spawn(&case.env(&[]), &["run", "database"]);

    wait_until(Duration::from_secs(60), "three release migrations", async || {
        recorded(&case.stack, &case.db, "release").await.len() >= 3
    })
    .await;
    // The cluster may live outside a stack dir that user postgres cannot reach (scripts/lib:
    // postgres_home), behind a link: hand pg_ctl the real path, from a directory it can enter.
    let data = std::fs::canonicalize(case.stack.dir.join("data/postgres")).unwrap();
    let stop = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-D", data.to_str().unwrap(), "stop", "-m", "fast"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(stop.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&stop.stderr));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let up = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack"))
        .args(["up", "--dir", case.stack.dir.to_str().unwrap()])
        .env_remove("VIBEDATA_STACK_SKIP")
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "scripts/stack up: {}\n{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );

    let o = runner.wait_with_output().unwrap();
    ok(&o);
    let v = read_outputs(&case.out());
    assert_eq!(changes(&v), ("succeeded".into(), registry_migrations() + 10));
    assert!(v["summary"]["reconnects"].as_u64().unwrap() >= 1, "{}", v["summary"]);
    assert!(stdout(&o).contains("reconnecting in"), "a progress line says what happened");
    // Every recorded migration's table exists and no table exists without its record.
    let versions = recorded(&case.stack, &case.db, "release").await;
    assert_eq!(versions, (1..=10).collect::<Vec<i64>>());
    for i in 1..=10 {
        assert!(table_exists(&case.stack, &case.db, &format!("public.restart_{i}")).await, "restart_{i}");
    }
    case.drop().await;
}
