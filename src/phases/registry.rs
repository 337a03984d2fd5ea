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
use super::{Change, Env, Phase, Plan, Report};
use crate::azure::discovery::Discovery;
use crate::cloud::Cloud;
use crate::config::{Config, DatabaseConfig, DbAuth, RegistryConfig, Validator};
use crate::context::Context;
use crate::error::{Code, PhaseError};
use crate::sequence::Step;
use crate::stored_release::StoredRelease;

pub mod model;
pub mod objects;
pub mod store;

pub struct Registry;

/// The export's blob name in artifact storage, one per deployment.
pub fn export_blob(deployment_id: &str) -> String {
    format!("registry/{deployment_id}/registry.json")
}

/// The export document: the snapshot with what it describes. Deterministic (no timestamps), so
/// an unchanged registry exports the same bytes and the blob is not rewritten.
pub fn export_document(config: &Config, snapshot: &model::Snapshot) -> Bytes {
    let doc = json!({
        "schemaVersion": 1,
        "deploymentId": config.deployment_id,
        "subscriptionId": config.subscription_id,
        "resourceGroup": config.resource_group,
        "digest": snapshot.digest(),
        "registry": snapshot,
    });
    let mut text = serde_json::to_vec_pretty(&doc).expect("serializes");
    text.push(b'\n');
    Bytes::from(text)
}

/// What the plan hands the apply.
pub struct Work {
    snapshot: model::Snapshot,
    db: crate::db::Db,
    release: Option<String>,
    document: Bytes,
    export_changed: bool,
    requests: usize,
    /// What the release names that its service does not hold.
    missing: Vec<String>,
}

#[async_trait]
impl Phase for Registry {
    type Config = RegistryConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Registry
    }

    fn configure(&self, v: &mut Validator<'_>, _cloud: &Cloud) -> RegistryConfig {
        v.registry()
    }

    fn scopes(&self, cfg: &RegistryConfig, shared: &Config) -> Vec<String> {
        super::database::scopes(&cfg.database, shared)
    }

    async fn checks(&self, env: &Env<'_, RegistryConfig>) -> Vec<Check> {
        let started = Instant::now();
        let group = env.config().resource_group_id();
        let mut checks = vec![
            Check::run(
                "resource group readable",
                env.ctx.arm.get::<Value>(&group, crate::azure::discovery::LIST_API, &crate::azure::arm::GROUP_READ),
                |_| format!("{group} readable"),
            )
            .await,
        ];
        checks.push(schema_check(env.ctx, &env.cfg.database, started).await);
        checks
    }

    async fn plan(&self, env: &Env<'_, RegistryConfig>) -> Result<Plan<Work>, PhaseError> {
        let (ctx, cfg) = (env.ctx, env.cfg);
        let config = env.config();
        let discovery =
            Discovery::new(ctx.arm.clone(), &config.subscription_id, &config.resource_group, cfg.concurrency);
        let found = discovery.discover().await?;
        let mut secrets = Vec::new();
        if let DbAuth::KeyVaultSecret(name) = &cfg.database.auth {
            secrets.push(("postgres-password".to_owned(), name.clone()));
        }
        let export = export_blob(&config.deployment_id);
        let locations = model::Locations {
            artifact_container_url: format!(
                "{}/{}",
                config.blob_url.as_str().trim_end_matches('/'),
                config.artifact_container
            ),
            export_blob: export.clone(),
            vault_url: config.key_vault_url.to_string(),
            vault_suffix: config.cloud.vault_suffix().to_owned(),
            secrets,
        };
        let mut snapshot = model::build(&found, &locations);
        let stored = StoredRelease::current(ctx).await?;
        let release_objects = objects::read(ctx, &snapshot, stored.as_ref()).await?;
        for m in &release_objects.missing {
            tracing::warn!(object = %m, "the release names {m}, which its service does not hold; not recorded");
        }
        snapshot.release_objects = release_objects.rows;
        snapshot.sort();
        let missing = release_objects.missing;
        tracing::info!(
            release_objects = snapshot.release_objects.len(),
            resources = snapshot.resources.len(),
            endpoints = snapshot.endpoints.len(),
            references = snapshot.configuration_references.len(),
            "discovered the deployment"
        );

        let db = super::database::connect_settings(ctx, &cfg.database).await?;
        let (target, present) = schema_present(ctx, &cfg.database).await?;
        if !present {
            return Err(schema_missing(&target));
        }
        let mut conn = db.connect("vibedata-bootstrap registry").await?;
        let diff = store::plan(&mut conn, &snapshot).await;
        let _ = sqlx::Connection::close(conn).await;
        let diff = diff?;
        tracing::info!(changes = diff.changes(), "registry: {} rows to change", diff.changes());

        // The export follows the registry: written only when its bytes differ.
        let document = export_document(config, &snapshot);
        let exported = ctx.container(&config.artifact_container)?.get(&export).await?;
        let export_changed = exported.as_deref() != Some(&document[..]);
        let mut changes = diff.rows();
        if export_changed {
            changes.push(export_change(config, &export));
        }
        let release = stored.map(|r| r.release);
        let summary = summary(config, &snapshot, &diff, found.requests, &export, false, &missing);
        Ok(Plan::new(
            changes,
            summary,
            Work { snapshot, db, release, document, export_changed, requests: found.requests, missing },
        ))
    }

    async fn apply(&self, env: &Env<'_, RegistryConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let Work { snapshot, db, release, document, export_changed, requests, missing } = plan.work;
        let config = env.config();
        let mut conn = db.connect("vibedata-bootstrap registry").await?;
        let meta = store::Meta { deployment_id: &config.deployment_id, release: release.as_deref() };
        let diff = store::replace(&mut conn, &snapshot, &meta).await;
        let _ = sqlx::Connection::close(conn).await;
        let diff = diff?;
        for row in diff.rows() {
            env.changed(row);
        }
        tracing::info!(changes = diff.changes(), "registry: changed {} rows", diff.changes());

        let export = export_blob(&config.deployment_id);
        if export_changed {
            let container = env.ctx.container(&config.artifact_container)?;
            container.ensure().await?;
            container.put(&export, document, "application/json", None).await?;
            env.changed(export_change(config, &export));
            tracing::info!(blob = %format!("{}/{export}", config.artifact_container), "exported the registry");
        }
        Ok(Report { summary: summary(config, &snapshot, &diff, requests, &export, export_changed, &missing) })
    }
}

fn export_change(config: &Config, export: &str) -> Change {
    Change::new("artifact storage", format!("{}/{export}", config.artifact_container), "write")
}

/// Whether the registry schema is in the database: `(target, present)`. Proves Postgres is
/// reachable with the run's credentials either way.
pub async fn schema_present(ctx: &Context, cfg: &DatabaseConfig) -> Result<(String, bool), PhaseError> {
    let db = super::database::connect_settings(ctx, cfg).await?;
    let mut conn = db.connect("vibedata-bootstrap preflight").await?;
    let present: Result<bool, _> = sqlx::query_scalar(
        "SELECT to_regclass('registry.resources') IS NOT NULL AND to_regclass('registry.health_status') IS NOT NULL",
    )
    .fetch_one(&mut conn)
    .await;
    let _ = sqlx::Connection::close(conn).await;
    let present = present.map_err(crate::db::DbError::query("looking for the registry schema"))?;
    Ok((db.target(), present))
}

/// Postgres reachable; the schema present or still to come. Before `run database` there is no
/// schema yet, and a preflight of every phase runs first, so its absence is not a failure here
/// (the run itself then stops with RegistrySchemaMissing).
pub async fn schema_check(ctx: &Context, cfg: &DatabaseConfig, started: Instant) -> Check {
    let name = "registry schema";
    match schema_present(ctx, cfg).await {
        Ok((target, true)) => Check::pass(name, format!("{target} holds the registry schema"), started),
        Ok((target, false)) => Check::pass(name, format!("{target} has none yet; `run database` applies it"), started),
        Err(e) => Check::failed(name, Code::PostgresUnreachable, "registry", e.to_string(), started),
    }
}

/// Stops a run that has no schema to write to.
pub fn schema_missing(target: &str) -> PhaseError {
    PhaseError::failed(
        Code::RegistrySchemaMissing,
        target,
        "the database has no registry schema; run `vibedata-bootstrap run database` first",
    )
}

fn summary(
    config: &Config,
    s: &model::Snapshot,
    diff: &store::Diff,
    requests: usize,
    export: &str,
    export_changed: bool,
    missing: &[String],
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
        "export": {"blob": format!("{}/{export}", config.artifact_container), "written": export_changed},
        "releaseObjects": s.release_objects.iter().map(|o| json!({"kind": o.kind, "host": name_of(&o.host), "name": o.name, "version": o.version, "digest": o.digest, "state": o.state})).collect::<Vec<_>>(),
        "releaseObjectsMissing": missing,
        "endpointTable": s.endpoints.iter().map(|e| json!({"resource": name_of(&e.resource), "groupId": e.group_id, "fqdn": e.fqdn, "ip": e.private_ip, "port": e.port})).collect::<Vec<_>>(),
    })
}
