//! DB Deployment (RFC-60 step 3): this binary's platform-registry schema, then the release's
//! migrations, into the platform's Postgres.
//!
//! The plan is the database's own state: each set's tracking table against its files. A dry run
//! reports it; a real run applies it under the migration lock (`db::lock`). `changes` counts
//! migrations applied; the tracking tables and the lock are bookkeeping.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::preflight::Check;
use super::{Change, Env, Phase, Plan, Report};
use crate::cloud::Cloud;
use crate::config::{Config, DatabaseConfig, DbAuth, Validator};
use crate::context::Context;
use crate::db::{self, Db, MigrationSet, PasswordSource};
use crate::error::PhaseError;
use crate::sequence::Step;
use crate::stored_release;

mod artifact;

pub struct Database;

/// The connection settings of a run: a Key Vault password is read once; an Entra token is asked
/// for at every connect. Shared by the phases that use Postgres.
pub async fn connect_settings(ctx: &Context, cfg: &DatabaseConfig) -> Result<Db, PhaseError> {
    let password = match &cfg.auth {
        DbAuth::KeyVaultSecret(name) => PasswordSource::Fixed(ctx.vault.get(name).await?),
        DbAuth::Entra => {
            PasswordSource::Entra { tokens: ctx.tokens.clone(), scope: ctx.config.cloud.postgres_scope().to_owned() }
        }
    };
    Ok(Db::new(cfg, ctx.config.ca_file.clone(), password, ctx.config.http_timeout))
}

/// The Entra audience, when the password is a token.
pub fn scopes(cfg: &DatabaseConfig, shared: &Config) -> Vec<String> {
    match cfg.auth {
        DbAuth::Entra => vec![shared.cloud.postgres_scope().to_owned()],
        DbAuth::KeyVaultSecret(_) => Vec::new(),
    }
}

/// What the plan hands the apply.
pub struct Work {
    db: Db,
    sets: Vec<MigrationSet>,
    base: Value,
}

#[async_trait]
impl Phase for Database {
    type Config = DatabaseConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Database
    }

    fn configure(&self, v: &mut Validator<'_>, _cloud: &Cloud) -> DatabaseConfig {
        v.database()
    }

    fn scopes(&self, cfg: &DatabaseConfig, shared: &Config) -> Vec<String> {
        scopes(cfg, shared)
    }

    async fn checks(&self, env: &Env<'_, DatabaseConfig>) -> Vec<Check> {
        let ctx = env.ctx;
        let mut checks = Vec::new();
        if let DbAuth::KeyVaultSecret(name) = &env.cfg.auth {
            checks.push(Check::run("postgres password", ctx.vault.get(name), |_| format!("{name} readable")).await);
        }
        checks.push(session_check(ctx, env.cfg).await);
        let started = Instant::now();
        let name = "release in artifact storage";
        let storage = &ctx.config.artifact_container;
        // Before `run artifacts` there is no release yet; the check proves only that artifact
        // storage is readable, so a preflight of every phase can run first.
        let read = async { ctx.container(storage)?.get(stored_release::POINTER).await };
        checks.push(match read.await {
            Ok(Some(_)) => Check::pass(name, format!("{storage}/{} readable", stored_release::POINTER), started),
            Ok(None) => Check::pass(name, "none stored yet; `run artifacts` stores it", started),
            Err(e) => Check::fail(name, &e, started),
        });
        checks
    }

    async fn plan(&self, env: &Env<'_, DatabaseConfig>) -> Result<Plan<Work>, PhaseError> {
        let db = connect_settings(env.ctx, env.cfg).await?;
        let release = artifact::load(env.ctx).await?;
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
        let plans = db::plan(&db, &sets).await?;
        let changes =
            plans.iter().flat_map(|p| p.pending.iter().map(|file| migration_change(p.set, file, "apply"))).collect();
        let mut summary = base.clone();
        summary["sets"] = serde_json::to_value(&plans).expect("serializes");
        Ok(Plan::new(changes, summary, Work { db, sets, base }))
    }

    async fn apply(&self, env: &Env<'_, DatabaseConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let Work { db, sets, base } = plan.work;
        let on_change = |set: &str, file: &str, action: &str| env.changed(migration_change(set, file, action));
        let outcome = db::apply(&db, &sets, env.cfg.lock_timeout, env.config().max_retries, &on_change).await?;
        let mut summary = base;
        summary["sets"] = serde_json::to_value(&outcome.sets).expect("serializes");
        summary["reconnects"] = json!(outcome.reconnects);
        Ok(Report { summary })
    }
}

fn migration_change(set: &str, file: &str, action: &str) -> Change {
    Change::new("migration", format!("{set}/{file}"), action)
}

/// Opens one session: proves the network path, TLS, the credential and the database.
async fn session_check(ctx: &Context, cfg: &DatabaseConfig) -> Check {
    let started = Instant::now();
    let name = "postgres session";
    let probe = async {
        let db = connect_settings(ctx, cfg).await.map_err(|e| {
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
            Check::failed(name, code, resource, detail, started)
        }
    }
}
