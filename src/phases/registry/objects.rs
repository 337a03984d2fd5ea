//! The objects the release deployed inside the platform's resources, which ARM does not list:
//! the Helm release of each chart on each cluster (Airbyte), and the Search indexes, Foundry
//! index assets and agents of its AI definitions. Each is read from the service itself — a
//! read-only runCommand (`helm status`), the Search and project data planes — so the registry
//! records what is there, not what a phase said it did.
//!
//! Only what the release names is looked for; what it names and the service does not hold is
//! reported as `missing` in the outputs, not recorded. Health Bootstrap reads each object again
//! with the same functions ([`helm`], [`index`], [`asset`], [`agent`]).

use serde_json::{json, Value};
use url::Url;

use super::model::{ObjectRow, ResourceRow, Snapshot};
use crate::azure::aks::Aks;
use crate::azure::foundry::Project;
use crate::azure::search::Search;
use crate::context::Context;
use crate::error::PhaseError;
use crate::phases::{ai, airbyte, NoSteps};
use crate::release::ChartEntry;
use crate::stored_release::StoredRelease;

pub const HELM_RELEASE: &str = "helmRelease";
pub const SEARCH_INDEX: &str = "searchIndex";
pub const INDEX_ASSET: &str = "indexAsset";
pub const AGENT: &str = "agent";

/// What was found: the rows to record, and what the release names that is not there.
#[derive(Debug, Default)]
pub struct Found {
    pub rows: Vec<ObjectRow>,
    pub missing: Vec<String>,
}

/// The Search service's data-plane endpoint, from its ARM `properties.endpoint`.
pub fn search_endpoint(properties: &Value) -> Option<Url> {
    properties.get("endpoint").and_then(Value::as_str).and_then(|s| Url::parse(s).ok())
}

/// A Foundry project's data-plane endpoint, its `endpoints["AI Foundry API"]`.
pub fn project_endpoint(properties: &Value) -> Option<Url> {
    properties.pointer("/endpoints/AI Foundry API").and_then(Value::as_str).and_then(|s| Url::parse(s).ok())
}

/// The cluster a registry row describes, for runCommand.
pub fn cluster(ctx: &Context, arm_id: &str) -> Aks {
    let name = arm_id.rsplit('/').next().unwrap_or(arm_id);
    Aks::new(ctx.arm.clone(), &ctx.config.subscription_id, &ctx.config.resource_group, name)
}

fn row(kind: &str, host: &str, name: &str) -> ObjectRow {
    ObjectRow {
        kind: kind.into(),
        host: host.into(),
        name: name.into(),
        version: None,
        digest: None,
        state: None,
        properties: json!({}),
    }
}

/// The chart's release on the cluster `host`, or `None` when it is not installed.
pub async fn helm(
    aks: &Aks,
    token: Option<&crate::azure::identity::Secret>,
    chart: &ChartEntry,
) -> Result<Option<ObjectRow>, PhaseError> {
    Ok(airbyte::probe(aks, token, chart, &NoSteps).await?.map(|d| ObjectRow {
        version: Some(d.revision.to_string()),
        digest: d.chart_digest,
        state: Some(d.status),
        properties: json!({"namespace": chart.namespace, "release": chart.name}),
        ..row(HELM_RELEASE, aks.id(), &format!("{}/{}", chart.namespace, chart.name))
    }))
}

pub async fn index(search: &Search, host: &str, name: &str) -> Result<Option<ObjectRow>, PhaseError> {
    Ok(search.get(name).await?.map(|s| {
        let fields = s.definition.get("fields").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
        ObjectRow {
            version: Some(s.etag),
            state: Some("present".into()),
            properties: json!({"fields": fields}),
            ..row(SEARCH_INDEX, host, name)
        }
    }))
}

pub async fn asset(project: &Project, host: &str, name: &str, version: &str) -> Result<Option<ObjectRow>, PhaseError> {
    Ok(project.index_asset(name, version).await?.map(|a| ObjectRow {
        version: Some(version.to_owned()),
        state: Some("present".into()),
        properties: json!({"indexName": a.get("indexName"), "connectionName": a.get("connectionName")}),
        ..row(INDEX_ASSET, host, name)
    }))
}

/// The agent's latest version: its number, `vibedata.digest` and status (`active` for a hosted
/// agent that runs; a prompt agent has none).
pub async fn agent(project: &Project, host: &str, name: &str, kind: &str) -> Result<Option<ObjectRow>, PhaseError> {
    Ok(project.agent(name).await?.map(|a| {
        let latest = &a["versions"]["latest"];
        let text = |p: &str| latest.pointer(p).and_then(Value::as_str).map(str::to_owned);
        ObjectRow {
            version: text("/version"),
            digest: text("/metadata/vibedata.digest"),
            state: text("/status").or_else(|| Some("present".into())),
            properties: json!({"kind": kind}),
            ..row(AGENT, host, name)
        }
    }))
}

fn with_role<'a>(snapshot: &'a Snapshot, role: &'a str) -> impl Iterator<Item = &'a ResourceRow> + 'a {
    snapshot.resources.iter().filter(move |r| r.role.as_deref() == Some(role))
}

/// Reads every object the release names from the resources the snapshot found.
pub async fn read(ctx: &Context, snapshot: &Snapshot, stored: Option<&StoredRelease>) -> Result<Found, PhaseError> {
    let mut found = Found::default();
    let Some(stored) = stored else { return Ok(found) };
    let mut put = |r: Option<ObjectRow>, what: String| match r {
        Some(r) => found.rows.push(r),
        None => found.missing.push(what),
    };

    if !stored.manifest.charts.is_empty() {
        for r in with_role(snapshot, "kubernetes") {
            let aks = cluster(ctx, &r.arm_id);
            let token = airbyte::cluster_token(ctx, &aks).await?;
            for chart in &stored.manifest.charts {
                let what = format!("{HELM_RELEASE} {}/{} on {}", chart.namespace, chart.name, r.name);
                put(helm(&aks, token.as_ref(), chart).await?, what);
            }
        }
    }

    if let Some(entry) = &stored.manifest.ai {
        let defs = ai::definitions(ctx, stored, entry).await?;
        for r in with_role(snapshot, "search") {
            let Some(endpoint) = search_endpoint(&r.properties) else { continue };
            let search = Search::new(ctx.pipeline.clone(), endpoint);
            for name in defs.indexes.keys() {
                put(index(&search, &r.arm_id, name).await?, format!("{SEARCH_INDEX} {name} on {}", r.name));
            }
        }
        for r in with_role(snapshot, "ai-project") {
            let Some(endpoint) = project_endpoint(&r.properties) else { continue };
            let project = Project::new(ctx.pipeline.clone(), endpoint);
            for a in &defs.assets {
                let what = format!("{INDEX_ASSET} {}/{} on {}", a.name, a.version, r.name);
                put(asset(&project, &r.arm_id, &a.name, &a.version).await?, what);
            }
            for a in &defs.agents {
                put(agent(&project, &r.arm_id, &a.name, a.kind()).await?, format!("{AGENT} {} on {}", a.name, r.name));
            }
        }
    }
    Ok(found)
}
