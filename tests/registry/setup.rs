//! Setup shared by the Registry and Health Bootstrap tests: a database of the test's own
//! (created by the stack's superuser), an artifact container and deployment id of its own, and
//! the phases before these two run for real (`run artifacts`, optionally `run runbooks`, `run
//! database`) against the sample release.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::common::*;
use crate::support::*;

/// The sample release these tests publish (deterministic, so every push gives the same digests).
pub const RELEASE: &str = "2026.12.61";

pub struct Platform {
    pub stack: Stack,
    /// The sample release this platform installs.
    pub release: String,
    pub db: String,
    pub container: String,
    out: tempfile::TempDir,
}

pub fn ok(o: &Output) {
    assert!(o.status.success(), "exit {:?}\n{}\n{}", o.status.code(), stdout(o), stderr(o));
}

impl Platform {
    pub async fn new(name: &str) -> Platform {
        Platform::with_release(name, RELEASE).await
    }

    /// A platform installing a release of its own: no other test imports it first.
    pub async fn with_release(name: &str, release: &str) -> Platform {
        let stack = Stack::get();
        let db = create_database(&stack, name, "vibedata").await;
        let container = format!("reg-{}-{}", name.replace('_', "-"), std::process::id());
        Platform { stack, release: release.to_owned(), db, container, out: tempfile::tempdir().unwrap() }
    }

    pub fn env(&self, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let manifest = format!("vibedata/release-manifest:{}", self.release);
        let mut o = vec![
            ("VIBEDATA_POSTGRES_DATABASE", self.db.as_str()),
            ("VIBEDATA_ARTIFACT_CONTAINER", self.container.as_str()),
            ("VIBEDATA_RELEASE_MANIFEST", manifest.as_str()),
            ("VIBEDATA_IMAGES", "vibedata/api"),
        ];
        o.extend_from_slice(extra);
        // env_for names the deployment `<db>-<pid>`, unique per test.
        self.stack.env_for(&self.db, &o)
    }

    /// `run <phase>` with `extra` env; the process output and the outputs JSON.
    pub fn run(&self, phase: &str, extra: &[(&str, &str)]) -> (Output, Value) {
        let path = self.out.path().join(format!("{phase}.json"));
        let _ = std::fs::remove_file(&path);
        let p = path.to_str().unwrap().to_owned();
        let mut env = self.env(extra);
        env.insert("AZ_SCRIPTS_OUTPUT_PATH".into(), p);
        let o = self.stack.cli(&env, &["run", phase]);
        let v = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
        (o, v)
    }

    /// Publishes the sample release and runs the phases before the registry.
    pub async fn prepare(&self, runbooks: bool) {
        self.publish();
        let mut phases = vec!["artifacts"];
        if runbooks {
            phases.push("runbooks");
        }
        phases.push("database");
        for phase in phases {
            ok(&self.run(phase, &[]).0);
        }
    }

    /// Publishes the sample release into the publisher registry.
    pub fn publish(&self) {
        let pushed = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sample-release"))
            .args([
                "push",
                "--release",
                &self.release,
                "--out",
                &format!("{}/target/sample-release-tests/{}", env!("CARGO_MANIFEST_DIR"), self.release),
            ])
            .envs(&self.stack.env)
            .output()
            .unwrap();
        assert!(pushed.status.success(), "sample-release push: {}", String::from_utf8_lossy(&pushed.stderr));
    }

    /// A blob of this platform's artifact container, as the phases wrote it.
    #[allow(dead_code)] // not every test binary that includes this file reads blobs
    pub async fn blob(&self, name: &str) -> Option<bytes::Bytes> {
        use vibedata_bootstrap::azure::{blob::Container, retry::RetryPolicy};
        let url = url::Url::parse(self.stack.var("VIBEDATA_STORAGE_BLOB_URL")).unwrap();
        let ca = std::path::Path::new(self.stack.var("VIBEDATA_CA_FILE"));
        let http = vibedata_bootstrap::azure::http_client(Some(ca), std::time::Duration::from_secs(30)).unwrap();
        let tokens = tokens(&self.stack);
        let c = Container::new(&url, &self.container, &http, &RetryPolicy::default(), &tokens).unwrap();
        c.get(name).await.unwrap()
    }

    /// Every row of every table in the `registry` schema, as JSON text.
    pub async fn registry_rows(&self) -> Vec<String> {
        let mut conn = superuser(&self.stack, &self.db).await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'registry'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut rows = Vec::new();
        for t in tables {
            let mut more: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT row_to_json(t)::text FROM registry.{t} t")))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            rows.append(&mut more);
        }
        rows
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        scalar_i64(&mut superuser(&self.stack, &self.db).await, sql).await
    }

    /// The state and detail of a health check (`component/check`) as the registry's current
    /// status holds it (`absent` when there is none).
    #[allow(dead_code)] // not every test binary that includes this file reads health
    pub async fn health_state(&self, key: &str) -> (String, String) {
        let mut conn = superuser(&self.stack, &self.db).await;
        sqlx::query_as::<_, (String, String)>(
            "SELECT state::text, detail FROM registry.health_status WHERE check_name = $1",
        )
        .bind(key)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .unwrap_or_else(|| ("absent".into(), String::new()))
    }

    pub async fn drop(self) {
        drop_database(&self.stack, &self.db).await;
    }
}

/// The emulator's inventory (`GET /_emulator/inventory`).
pub async fn inventory(stack: &Stack) -> Value {
    stack.http().get(format!("{}/inventory", stack.control())).send().await.unwrap().json().await.unwrap()
}

/// Airbyte's shared parts of the stack back to nothing: the emulated cluster's releases, its
/// command list and any armed stuck install, and the storage account's three Airbyte containers
/// (another test may have made them), so a first `run airbyte` is a fresh install.
#[allow(dead_code)] // only the Airbyte and snapshot tests install Airbyte
pub async fn reset_airbyte(stack: &Stack) {
    for plane in ["aks/releases", "aks/stuck", "aks/commands"] {
        let r = stack.http().delete(format!("{}/{plane}", stack.control())).send().await.unwrap();
        assert!(r.status().is_success(), "resetting {plane}: {}", r.status());
    }
    let token = stack.token("https://storage.azure.com/").await;
    let base = stack.var("VIBEDATA_AIRBYTE_STORAGE_BLOB_URL").trim_end_matches('/').to_owned();
    for c in ["airbyte-logs", "airbyte-state", "airbyte-workload"] {
        let r = stack
            .http()
            .delete(format!("{base}/{c}?restype=container"))
            .bearer_auth(&token)
            .header("x-ms-version", "2021-12-02")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success() || r.status() == 404, "deleting container {c}: {}", r.status());
    }
}
