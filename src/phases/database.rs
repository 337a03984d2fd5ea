//! DB Deployment (RFC-60 step 3): this binary's platform-registry schema, then the release's
//! migrations, into the platform's Postgres.
//!
//! The plan is the database's own state: each set's tracking table against its files. A dry run
//! reports it; a real run applies it under the migration lock (`db::lock`). `changes` counts
//! migrations applied; the tracking tables and the lock are bookkeeping.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;

use super::preflight::Check;
use super::{Phase, Report};
use crate::config::{DatabaseConfig, DbAuth};
use crate::context::Context;
use crate::db::{self, Db, DbError, MigrationSet, PasswordSource};
use crate::error::RunError;
use crate::sequence::Step;

mod artifact;

const PHASE: &str = "database";

pub struct Database;

fn config(ctx: &Context) -> &DatabaseConfig {
    ctx.config.database.as_ref().expect("database configuration is validated for this step")
}

/// A failed database step: bad migration files are bad input (exit 2), the rest failures.
pub fn run_error(e: DbError) -> RunError {
    match e {
        DbError::BadMigrations { .. } => {
            RunError::BadInput { phase: PHASE.into(), resource: e.resource(), message: e.to_string() }
        }
        other => RunError::Phase {
            phase: PHASE.into(),
            code: other.code().into(),
            resource: other.resource(),
            message: other.to_string(),
        },
    }
}

/// The connection settings of a run: a Key Vault password is read once; an Entra token is asked
/// for at every connect.
pub async fn connect_settings(ctx: &Context) -> Result<Db, RunError> {
    let cfg = config(ctx);
    let password = match &cfg.auth {
        DbAuth::KeyVaultSecret(name) => {
            PasswordSource::Fixed(ctx.vault.get(name).await.map_err(|e| RunError::azure(PHASE, e))?)
        }
        DbAuth::Entra => {
            PasswordSource::Entra { tokens: ctx.tokens.clone(), scope: ctx.config.cloud.postgres_scope().to_owned() }
        }
    };
    Ok(Db::new(cfg, ctx.config.ca_file.clone(), password, ctx.config.http_timeout))
}

#[async_trait]
impl Phase for Database {
    fn step(&self) -> Step {
        Step::Database
    }

    fn extra_scopes(&self, ctx: &Context) -> Vec<String> {
        match ctx.config.database.as_ref().map(|c| &c.auth) {
            Some(DbAuth::Entra) => vec![ctx.config.cloud.postgres_scope().to_owned()],
            _ => Vec::new(),
        }
    }

    async fn checks(&self, ctx: &Context) -> Vec<Check> {
        let mut checks = Vec::new();
        if let DbAuth::KeyVaultSecret(name) = &config(ctx).auth {
            checks.push(Check::run("postgres password", ctx.vault.get(name), |_| format!("{name} readable")).await);
        }
        checks.push(session_check(ctx).await);
        let container = ctx.container(&ctx.config.artifact_container);
        let started = Instant::now();
        checks.push(match container {
            // Before `run artifacts` there is no release yet; the check proves only that
            // artifact storage is readable, so a preflight of every phase can run first.
            Ok(c) => match c.get(artifact::POINTER).await {
                Ok(Some(_)) => Check::pass(
                    "release in artifact storage",
                    format!("{}/{} readable", ctx.config.artifact_container, artifact::POINTER),
                    started,
                ),
                Ok(None) => {
                    Check::pass("release in artifact storage", "none stored yet; `run artifacts` stores it", started)
                }
                Err(e) => Check::fail("release in artifact storage", &e, started),
            },
            Err(e) => failed_check("release in artifact storage", &e, started),
        });
        checks
    }

    async fn run(&self, ctx: &Context) -> Result<Report, RunError> {
        let cfg = config(ctx);
        let db = connect_settings(ctx).await?;
        let release = artifact::load(ctx).await?;
        let mut sets: Vec<MigrationSet> = vec![db::migrations::embedded()];
        let artifact_digest = release.migrations.as_ref().map(|(d, _)| d.clone());
        if let Some((_, set)) = release.migrations {
            sets.push(set);
        }
        let base = json!({
            "database": db.target(),
            "user": db.user(),
            "auth": db.auth_kind(),
            "sslMode": db.ssl_mode(),
            "release": release.release,
            "manifestDigest": release.manifest_digest,
            "migrationsDigest": artifact_digest,
        });

        if ctx.dry_run {
            let plans = db::plan(&db, &sets).await.map_err(run_error)?;
            for p in &plans {
                for file in &p.pending {
                    tracing::info!(set = p.set, file = %file, "would apply {} migration {file}", p.set);
                }
            }
            let changes = plans.iter().map(|p| p.pending.len() as u64).sum();
            let mut summary = base;
            summary["sets"] = serde_json::to_value(&plans).expect("serializes");
            return Ok(Report { changes, summary });
        }

        let outcome = db::apply(&db, &sets, cfg.lock_timeout, ctx.config.max_retries).await.map_err(run_error)?;
        let mut summary = base;
        summary["sets"] = serde_json::to_value(&outcome.sets).expect("serializes");
        summary["reconnects"] = json!(outcome.reconnects);
        Ok(Report { changes: outcome.changes(), summary })
    }
}

/// Opens one session: proves the network path, TLS, the credential and the database.
async fn session_check(ctx: &Context) -> Check {
    let started = Instant::now();
    let name = "postgres session";
    let probe = async {
        let db = connect_settings(ctx).await.map_err(|e| {
            let (code, resource) = e.code_and_resource();
            (e.to_string(), code, resource)
        })?;
        let mut conn = db
            .connect("vibedata-bootstrap preflight")
            .await
            .map_err(|e| (e.to_string(), e.code().to_owned(), e.resource()))?;
        let row: Result<(String, bool), _> = sqlx::query_as("SELECT current_setting('server_version'), coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)")
            .fetch_one(&mut conn)
            .await;
        let _ = sqlx::Connection::close(conn).await;
        let (version, ssl) = row.map_err(|e| (e.to_string(), "PostgresError".to_owned(), db.target()))?;
        Ok::<_, (String, String, String)>(format!(
            "{} as {} ({}, PostgreSQL {version}, TLS {})",
            db.target(),
            db.user(),
            db.auth_kind(),
            if ssl { db.ssl_mode() } else { "off" }
        ))
    };
    match probe.await {
        Ok(detail) => {
            tracing::info!(check = name, "preflight ok: {name}: {detail}");
            Check::pass(name, detail, started)
        }
        Err((detail, code, resource)) => {
            tracing::error!(check = name, "preflight FAILED: {name}: {detail}");
            Check {
                name: name.into(),
                ok: false,
                detail,
                duration_ms: started.elapsed().as_millis() as u64,
                code: Some(code),
                resource: Some(resource),
            }
        }
    }
}

fn failed_check(name: &str, e: &RunError, started: Instant) -> Check {
    let (code, resource) = e.code_and_resource();
    Check {
        name: name.into(),
        ok: false,
        detail: e.to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
        code: Some(code),
        resource: Some(resource),
    }
}
