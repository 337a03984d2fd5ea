//! Registry Bootstrap (RFC-60 phase 14): discover the deployment through ARM, record its
//! resources, endpoints and configuration references in the platform registry (Postgres), and
//! export the registry as JSON to artifact storage for consumers without database access.
//!
//! The plan is the difference between what ARM reports and what the registry holds
//! ([`store::diff`]); a real run applies it in one transaction. `changes` counts registry rows
//! added, updated or removed plus the export blob when its content changed, so a rerun against
//! an unchanged platform writes nothing and reports `unchanged`.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};

use super::preflight::Check;
use super::{Phase, Report};
use crate::azure::discovery::Discovery;
use crate::config::DbAuth;
use crate::context::Context;
use crate::db::DbError;
use crate::error::RunError;
use crate::sequence::Step;

pub mod model;
pub mod store;

const PHASE: &str = "registry";

pub struct Registry;

/// The export's blob name in artifact storage, one per deployment.
pub fn export_blob(deployment_id: &str) -> String {
    format!("registry/{deployment_id}/registry.json")
}

fn db_error(e: DbError) -> RunError {
    RunError::Phase { phase: PHASE.into(), code: e.code().into(), resource: e.resource(), message: e.to_string() }
}

/// The export document: the snapshot with what it describes. Deterministic (no timestamps), so
/// an unchanged registry exports the same bytes and the blob is not rewritten.
pub fn export_document(ctx: &Context, snapshot: &model::Snapshot) -> Bytes {
    let doc = json!({
        "schemaVersion": 1,
        "deploymentId": ctx.config.deployment_id,
        "subscriptionId": ctx.config.subscription_id,
        "resourceGroup": ctx.config.resource_group,
        "digest": snapshot.digest(),
        "registry": snapshot,
    });
    let mut text = serde_json::to_vec_pretty(&doc).expect("serializes");
    text.push(b'\n');
    Bytes::from(text)
}

/// The release the artifact storage pointer names, for the snapshot row; none before `run artifacts`.
async fn current_release(ctx: &Context) -> Option<String> {
    let container = ctx.container(&ctx.config.artifact_container).ok()?;
    let bytes = container.get("releases/latest.json").await.ok()??;
    serde_json::from_slice::<Value>(&bytes).ok()?.get("release")?.as_str().map(str::to_owned)
}

#[async_trait]
impl Phase for Registry {
    fn step(&self) -> Step {
        Step::Registry
    }

    fn extra_scopes(&self, ctx: &Context) -> Vec<String> {
        super::database::Database.extra_scopes(ctx)
    }

    async fn checks(&self, ctx: &Context) -> Vec<Check> {
        let started = Instant::now();
        let group = ctx.config.resource_group_id();
        let mut checks = vec![
            Check::run(
                "resource group readable",
                ctx.arm.get::<Value>(&group, crate::azure::discovery::LIST_API),
                |_| format!("{group} readable"),
            )
            .await,
        ];
        checks.push(schema_check(ctx, started).await);
        checks
    }

    async fn run(&self, ctx: &Context) -> Result<Report, RunError> {
        let cfg = ctx.config.registry.clone().expect("registry configuration is validated for this step");
        let discovery =
            Discovery::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, cfg.concurrency);
        let found = discovery.discover().await.map_err(|e| RunError::azure(PHASE, e))?;
        let mut secrets = Vec::new();
        if let Some(DbAuth::KeyVaultSecret(name)) = ctx.config.database.as_ref().map(|d| &d.auth) {
            secrets.push(("postgres-password".to_owned(), name.clone()));
        }
        let export = export_blob(&ctx.config.deployment_id);
        let locations = model::Locations {
            artifact_container_url: format!(
                "{}/{}",
                ctx.config.blob_url.as_str().trim_end_matches('/'),
                ctx.config.artifact_container
            ),
            export_blob: export.clone(),
            vault_url: ctx.config.key_vault_url.to_string(),
            vault_suffix: ctx.config.cloud.vault_suffix().to_owned(),
            secrets,
        };
        let snapshot = model::build(&found, &locations);
        tracing::info!(
            resources = snapshot.resources.len(),
            endpoints = snapshot.endpoints.len(),
            references = snapshot.configuration_references.len(),
            "discovered the deployment"
        );

        let db = super::database::connect_settings(ctx).await?;
        if let Ok((target, false)) = schema_present(ctx).await {
            return Err(schema_missing(PHASE, &target));
        }
        let mut conn = db.connect("vibedata-bootstrap registry").await.map_err(db_error)?;
        let release = current_release(ctx).await;
        let meta = store::Meta { deployment_id: &ctx.config.deployment_id, release: release.as_deref() };
        let diff = store::replace(&mut conn, &snapshot, &meta, ctx.dry_run).await.map_err(db_error)?;
        let _ = sqlx::Connection::close(conn).await;
        let verb = if ctx.dry_run { "would change" } else { "changed" };
        tracing::info!(changes = diff.changes(), "registry: {verb} {} rows", diff.changes());

        // The export follows the registry: written only when its bytes differ.
        let container = ctx.container(&ctx.config.artifact_container)?;
        let document = export_document(ctx, &snapshot);
        let stored = container.get(&export).await.map_err(|e| RunError::azure(PHASE, e))?;
        let export_changed = stored.as_deref() != Some(&document[..]);
        if export_changed && !ctx.dry_run {
            container.ensure().await.map_err(|e| RunError::azure(PHASE, e))?;
            container.put(&export, document, "application/json", None).await.map_err(|e| RunError::azure(PHASE, e))?;
            tracing::info!(blob = %format!("{}/{export}", ctx.config.artifact_container), "exported the registry");
        }
        Ok(Report {
            changes: diff.changes() + u64::from(export_changed),
            summary: summary(ctx, &snapshot, &diff, found.requests, &export, export_changed),
        })
    }
}

/// Whether the registry schema is in the database: `(target, present)`. Proves Postgres is
/// reachable with the run's credentials either way.
pub async fn schema_present(ctx: &Context) -> Result<(String, bool), String> {
    let db = super::database::connect_settings(ctx).await.map_err(|e| e.to_string())?;
    let mut conn = db.connect("vibedata-bootstrap preflight").await.map_err(|e| e.to_string())?;
    let present: Result<bool, _> = sqlx::query_scalar(
        "SELECT to_regclass('registry.resources') IS NOT NULL AND to_regclass('registry.health_status') IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await;
    let _ = sqlx::Connection::close(conn).await;
    present.map(|p| (db.target(), p)).map_err(|e| e.to_string())
}

/// Postgres reachable; the schema present or still to come. Before `run database` there is no
/// schema yet, and a preflight of every phase runs first, so its absence is not a failure here
/// (the run itself then stops with RegistrySchemaMissing).
async fn schema_check(ctx: &Context, started: Instant) -> Check {
    match schema_present(ctx).await {
        Ok((target, true)) => Check::pass("registry schema", format!("{target} holds the registry schema"), started),
        Ok((target, false)) => {
            Check::pass("registry schema", format!("{target} has none yet; `run database` applies it"), started)
        }
        Err(detail) => Check {
            name: "registry schema".into(),
            ok: false,
            detail,
            duration_ms: started.elapsed().as_millis() as u64,
            code: Some("PostgresUnreachable".into()),
            resource: Some("registry".into()),
        },
    }
}

/// Stops a run that has no schema to write to.
pub fn schema_missing(phase: &str, target: &str) -> RunError {
    RunError::Phase {
        phase: phase.into(),
        code: "RegistrySchemaMissing".into(),
        resource: target.to_owned(),
        message: "the database has no registry schema; run `vibedata-bootstrap run database` first".into(),
    }
}

fn summary(
    ctx: &Context,
    s: &model::Snapshot,
    diff: &store::Diff,
    requests: usize,
    export: &str,
    export_changed: bool,
) -> Value {
    let mut roles: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &s.resources {
        *roles.entry(r.role.as_deref().unwrap_or("other")).or_default() += 1;
    }
    let name_of = |id: &str| {
        s.resources.iter().find(|r| r.arm_id.eq_ignore_ascii_case(id)).map(|r| r.name.clone()).unwrap_or_default()
    };
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for r in s.resources.iter().filter_map(|r| r.properties.get("dnsSource")) {
        *sources.entry(r.as_str().unwrap_or("none").to_owned()).or_default() += 1;
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &s.configuration_references {
        *kinds.entry(r.kind.as_str()).or_default() += 1;
    }
    json!({
        "digest": s.digest(),
        "resources": s.resources.len(),
        "endpoints": s.endpoints.len(),
        "configurationReferences": s.configuration_references.len(),
        "roles": roles,
        "privateEndpointDnsSources": sources,
        "referenceKinds": kinds,
        "armReads": requests,
        "rowsChanged": diff.changes(),
        "diff": store::brief(&diff.to_json(), 5),
        "export": {"blob": format!("{}/{export}", ctx.config.artifact_container), "written": export_changed && !ctx.dry_run},
        "endpointTable": s.endpoints.iter().map(|e| json!({"resource": name_of(&e.resource), "groupId": e.group_id, "fqdn": e.fqdn, "ip": e.private_ip, "port": e.port})).collect::<Vec<_>>(),
    })
}
