//! Setup for the DB Deployment tests: a database of its own per test (created by the stack's
//! superuser), releases written straight into artifact storage through the library's OCI layout,
//! and a gate that lets the tests which stop Postgres or change the emulator's token lifetime run
//! alone under plain `cargo test` too (nextest runs them alone by configuration).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Executor, PgConnection};
use vibedata_bootstrap::azure::blob::Container;
use vibedata_bootstrap::azure::identity::Tokens;
use vibedata_bootstrap::azure::retry::RetryPolicy;
use vibedata_bootstrap::config::IdentityRef;
use vibedata_bootstrap::oci::{sha256_digest, Descriptor, Layout, OCI_MANIFEST};
use vibedata_bootstrap::release;

use crate::common::Stack;

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static GATE: RwLock<()> = RwLock::const_new(());

/// Held by ordinary tests: many at once.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().await
}

/// Held by tests that disturb everyone (Postgres restart, token lifetime): alone.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const POSTGRES_SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";

/// `test_<name>_<pid>`: unique per test process, valid unquoted.
pub fn unique(name: &str) -> String {
    format!("test_{name}_{}", std::process::id())
}

pub fn superuser_options(stack: &Stack, database: &str) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .host(stack.var("VIBEDATA_POSTGRES_HOST"))
        .port(stack.var("VIBEDATA_POSTGRES_PORT").parse().unwrap())
        .username("postgres")
        .password(stack.var("VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD"))
        .database(database)
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(stack.var("VIBEDATA_CA_FILE"))
        .application_name("database tests")
        .disable_statement_logging()
}

/// The library's connection settings for the superuser (password given, no Key Vault).
pub fn superuser_db(stack: &Stack, database: &str) -> vibedata_bootstrap::db::Db {
    let cfg = vibedata_bootstrap::config::DatabaseConfig {
        host: stack.var("VIBEDATA_POSTGRES_HOST").into(),
        port: stack.var("VIBEDATA_POSTGRES_PORT").parse().unwrap(),
        database: database.into(),
        user: "postgres".into(),
        auth: vibedata_bootstrap::config::DbAuth::KeyVaultSecret("unused".into()),
        verify_full: true,
        lock_timeout: Duration::from_secs(10),
    };
    let password = vibedata_bootstrap::db::PasswordSource::Fixed(vibedata_bootstrap::azure::identity::Secret::new(
        stack.var("VIBEDATA_STACK_POSTGRES_SUPERUSER_PASSWORD"),
    ));
    vibedata_bootstrap::db::Db::new(&cfg, Some(stack.var("VIBEDATA_CA_FILE").into()), password, Duration::from_secs(30))
}

pub async fn superuser(stack: &Stack, database: &str) -> PgConnection {
    superuser_options(stack, database).connect().await.expect("superuser connection")
}

/// A fresh database owned by `owner`.
pub async fn create_database(stack: &Stack, name: &str, owner: &str) -> String {
    let db = unique(name);
    let mut su = superuser(stack, "postgres").await;
    su.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))).await.unwrap();
    su.execute(AssertSqlSafe(format!("CREATE DATABASE {db} OWNER {owner}"))).await.unwrap();
    db
}

pub async fn drop_database(stack: &Stack, db: &str) {
    let mut su = superuser(stack, "postgres").await;
    let _ = su.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))).await;
}

pub async fn scalar_i64(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(conn).await.unwrap()
}

/// Versions recorded (successfully) in a tracking table, or none when it does not exist.
pub async fn recorded(stack: &Stack, db: &str, set: &str) -> Vec<i64> {
    let mut conn = superuser(stack, db).await;
    let table = format!("vibedata_bootstrap.{set}_migrations");
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&table).fetch_one(&mut conn).await.unwrap();
    if !exists {
        return Vec::new();
    }
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {table} WHERE success ORDER BY version")))
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

pub async fn table_exists(stack: &Stack, db: &str, table: &str) -> bool {
    let mut conn = superuser(stack, db).await;
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&mut conn).await.unwrap()
}

pub fn tokens(stack: &Stack) -> Arc<Tokens> {
    // azure_identity reads the App Service protocol's endpoint from the environment. Set once:
    // under plain `cargo test` the tests share this process.
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        std::env::set_var("IDENTITY_ENDPOINT", stack.var("IDENTITY_ENDPOINT"));
        std::env::set_var("IDENTITY_HEADER", stack.var("IDENTITY_HEADER"));
    });
    let http = vibedata_bootstrap::azure::http_client(
        Some(std::path::Path::new(stack.var("VIBEDATA_CA_FILE"))),
        Duration::from_secs(30),
    )
    .unwrap();
    Tokens::managed_identity(&IdentityRef::ClientId(stack.var("VIBEDATA_IDENTITY_CLIENT_ID").into()), http).unwrap()
}

fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (name, sql) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(sql.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, sql.as_bytes()).unwrap();
    }
    let mut gz = b.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

/// Writes release `release` whose migrations artifact holds `files` into artifact storage
/// `container`, as `run artifacts` would have: blobs and refs in the OCI layout, the manifest
/// document, and `releases/latest.json` pointing at it.
pub async fn store_release(stack: &Stack, container: &str, release_name: &str, files: &[(&str, &str)]) {
    let url = url::Url::parse(stack.var("VIBEDATA_STORAGE_BLOB_URL")).unwrap();
    let http = vibedata_bootstrap::azure::http_client(
        Some(std::path::Path::new(stack.var("VIBEDATA_CA_FILE"))),
        Duration::from_secs(30),
    )
    .unwrap();
    let c = Container::new(&url, container, &http, &RetryPolicy::default(), &tokens(stack)).unwrap();
    c.ensure().await.unwrap();
    let layout = Layout::new(c.clone());
    layout.init().await.unwrap();
    let put = |bytes: Vec<u8>| {
        let layout = layout.clone();
        async move {
            let digest = sha256_digest(&bytes);
            let size = bytes.len() as u64;
            layout.put_blob(&digest, Bytes::from(bytes)).await.unwrap();
            (digest, size)
        }
    };
    let (empty, empty_size) = put(b"{}".to_vec()).await;
    let artifact = |artifact_type: &str, layer_type: &str, layer: &(String, u64)| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": empty_size},
            "layers": [{"mediaType": layer_type, "digest": layer.0, "size": layer.1}],
        }))
        .unwrap()
    };
    let layer = put(tar_gz(files)).await;
    let migrations = put(artifact(release::MIGRATIONS_ARTIFACT_TYPE, release::MIGRATIONS_LAYER_TYPE, &layer)).await;
    let descriptor = |d: &(String, u64), t: &str| Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: d.0.clone(),
        size: d.1,
        artifact_type: Some(t.into()),
        annotations: BTreeMap::new(),
    };
    layout
        .add_ref(
            &format!("{release_name}/migrations/migrations"),
            &descriptor(&migrations, release::MIGRATIONS_ARTIFACT_TYPE),
        )
        .await
        .unwrap();
    let doc = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 1, "release": release_name, "images": [],
        "migrations": {"artifact": {"repository": "vibedata/db-migrations", "digest": migrations.0}},
    }))
    .unwrap();
    let doc_layer = put(doc.clone()).await;
    let manifest = put(artifact(release::MANIFEST_ARTIFACT_TYPE, release::MANIFEST_ARTIFACT_TYPE, &doc_layer)).await;
    layout
        .add_ref(&format!("{release_name}/manifest/release"), &descriptor(&manifest, release::MANIFEST_ARTIFACT_TYPE))
        .await
        .unwrap();
    c.put(&format!("releases/{release_name}/manifest.json"), Bytes::from(doc), "application/json", None).await.unwrap();
    let pointer = json!({"release": release_name, "manifestDigest": manifest.0, "manifest": format!("releases/{release_name}/manifest.json")});
    c.put("releases/latest.json", Bytes::from(pointer.to_string()), "application/json", None).await.unwrap();
}

/// The CLI in the background, with exactly `env`; stdout and stderr captured.
pub fn spawn(env: &BTreeMap<String, String>, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vibedata-bootstrap"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vibedata-bootstrap")
}

/// Polls `probe` every 100 ms until it holds, for at most `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !probe().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
