//! Reading the report's data: the ledger (every imperative phase's record), the release pointer
//! in artifact storage and the registry's tables in Postgres. Reads only; [`publish`] writes the
//! one bookkeeping blob `reports/day0.html`.
//!
//! Every source is best effort: a report is most useful after a failed install, when some of
//! them are missing, so what cannot be read becomes a note on the page instead of an error.

use std::path::Path;

use bytes::Bytes;
use sqlx::{PgConnection, Row};

use super::{ComponentRow, Day0, EndpointRow, FailingCheck, PhaseRow, PhaseRun, Release};
use crate::config::{Config, DatabaseConfig, Source};
use crate::context::Context;
use crate::error::RunError;
use crate::sequence::{Kind, Step, SEQUENCE};
use crate::stored_release::{paths, StoredRelease};

/// What stops a report from being made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The configuration (app settings or environment) is incomplete or invalid.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Writing `--html FILE` failed.
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Artifact storage refused the report blob.
    #[error("cannot write the report to artifact storage: {0}")]
    Upload(#[from] crate::azure::AzureError),
}

/// The shared configuration and the database section: everything a report reads.
pub fn load(config_file: Option<&Path>) -> Result<(Context, DatabaseConfig), ReportError> {
    let source = Source::load(config_file).map_err(RunError::from)?;
    let (config, db) =
        Config::validate_with(&source, &[Step::Database], |v, _| v.database()).map_err(RunError::from)?;
    Ok((Context::new(config).map_err(RunError::from)?, db))
}

/// The report's data as it stands now.
pub async fn gather(ctx: &Context, db: &DatabaseConfig) -> Day0 {
    let mut d = Day0 {
        generated_at: crate::outputs::now_rfc3339(),
        deployment_id: ctx.config.deployment_id.clone(),
        binary: crate::VERSION.into(),
        ..Day0::default()
    };
    match StoredRelease::current(ctx).await {
        Ok(Some(r)) => d.release = Some(Release { release: r.release, digest: r.manifest_digest }),
        Ok(None) => {}
        Err(e) => d.notes.push(format!("the release in artifact storage cannot be read: {e}")),
    }
    for p in &SEQUENCE {
        let run = match p.step {
            Some(step) => match ctx.ledger.read(step.id()).await {
                Ok(r) => r.map(|r| PhaseRun {
                    status: r.status,
                    attempt: r.attempt,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                    changes: r.changes,
                    error: r.error,
                }),
                Err(e) => {
                    d.notes.push(format!("the ledger record of {} cannot be read: {e}", step.id()));
                    None
                }
            },
            None => None,
        };
        d.phases.push(PhaseRow {
            order: p.order,
            id: p.id.into(),
            name: p.name.into(),
            kind: match p.kind {
                Kind::Declarative => "declarative",
                Kind::Imperative => "imperative",
                Kind::Mixed => "mixed",
            }
            .into(),
            run,
            has_step: p.step.is_some(),
        });
    }
    if let Err(note) = registry(ctx, db, &mut d).await {
        d.notes.push(note);
    }
    d
}

async fn registry(ctx: &Context, db: &DatabaseConfig, d: &mut Day0) -> Result<(), String> {
    let settings = crate::phases::database::connect_settings(ctx, db).await.map_err(|e| e.to_string())?;
    let mut conn =
        settings.connect("vibedata-bootstrap report").await.map_err(|e| format!("the registry cannot be read: {e}"))?;
    let read = read_registry(&mut conn, d).await;
    let _ = sqlx::Connection::close(conn).await;
    read.map_err(|e| format!("the registry cannot be read: {e}"))
}

async fn read_registry(conn: &mut PgConnection, d: &mut Day0) -> Result<(), sqlx::Error> {
    let present: bool =
        sqlx::query_scalar("SELECT to_regclass('registry.health_status') IS NOT NULL").fetch_one(&mut *conn).await?;
    if !present {
        d.notes.push("the database holds no registry yet (`run database` and `run registry` record it)".into());
        return Ok(());
    }
    d.overall = sqlx::query_scalar("SELECT state::text FROM registry.health_status WHERE check_name = 'overall'")
        .fetch_optional(&mut *conn)
        .await?;
    // The components the health phase checks: resources with endpoints, or with a role that
    // has a service probe (private endpoints and the identity are neither).
    d.components = sqlx::query(
        "SELECT r.name, r.type, r.role, coalesce(s.state::text, 'not checked') AS state, coalesce(s.detail, '') AS detail, s.since::text AS since
         FROM registry.resources r LEFT JOIN registry.health_status s ON s.check_name = r.name
         WHERE r.removed_at IS NULL AND (EXISTS (SELECT 1 FROM registry.endpoints e WHERE e.resource_key = r.resource_key)
               OR (r.role IS NOT NULL AND r.role NOT IN ('private-endpoint', 'identity')))
         ORDER BY r.name",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| ComponentRow {
        name: r.get("name"),
        resource_type: r.get("type"),
        role: r.get("role"),
        state: r.get("state"),
        detail: r.get("detail"),
        since: r.get("since"),
    })
    .collect();
    d.failing = sqlx::query(
        "SELECT component, check_name, state::text AS state, required, detail, observed FROM registry.health_status
         WHERE component IS NOT NULL AND check_name <> component AND state <> 'healthy' ORDER BY component, check_name",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| FailingCheck {
        component: r.get("component"),
        check: r.get("check_name"),
        state: r.get("state"),
        required: r.get("required"),
        reason: r.get("detail"),
        observed: r.get("observed"),
    })
    .collect();
    d.endpoints = sqlx::query(
        "SELECT r.name, e.fqdn, host(e.private_ip) AS ip, e.port, e.protocol FROM registry.endpoints e
         JOIN registry.resources r USING (resource_key) WHERE r.removed_at IS NULL ORDER BY r.name, e.fqdn",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| EndpointRow {
        component: r.get("name"),
        fqdn: r.get("fqdn"),
        ip: r.get("ip"),
        port: r.get::<i32, _>("port") as u16,
        protocol: r.get("protocol"),
    })
    .collect();
    Ok(())
}

impl ReportError {
    /// 2 for bad configuration (as `run`), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReportError::Run(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// `report --html FILE`: the page from the ledger and the registry, with no function app.
pub async fn write_html(path: &Path, config_file: Option<&Path>) -> Result<(), ReportError> {
    let (ctx, db) = load(config_file)?;
    let page = super::render(&gather(&ctx, &db).await);
    std::fs::write(path, page).map_err(|source| ReportError::Write { path: path.display().to_string(), source })?;
    tracing::info!(path = %path.display(), "wrote the Day-0 report to {}", path.display());
    Ok(())
}

/// Writes the page to artifact storage (`reports/day0.html`). Bookkeeping, not a change; a
/// failure is logged and never fails the phase it follows.
pub async fn publish(config_file: Option<&Path>) {
    let written = async {
        let (ctx, db) = load(config_file)?;
        let page = super::render(&gather(&ctx, &db).await);
        let container = ctx.container(&ctx.config.artifact_container)?;
        container.put(paths::DAY0_REPORT, Bytes::from(page), "text/html; charset=utf-8", None).await?;
        Ok::<_, ReportError>(format!("{}/{}", ctx.config.artifact_container, paths::DAY0_REPORT))
    };
    match written.await {
        Ok(at) => tracing::info!(report = %at, "wrote the Day-0 report to {at}"),
        Err(e) => tracing::warn!(error = %e, "could not write the Day-0 report"),
    }
}
