//! AI Deployment (RFC-60 phase 13, step 3): the release's AI Search indexes, Foundry project
//! index assets and agents, through their data planes. The Foundry resource and its project are
//! ARM resources, so Bicep creates them (RFC-60's "Hub" is the Foundry resource).
//!
//! The plan reads the definitions (validated whole: bad input is exit 2 before any call), then
//! every object's current state: an index is created when missing, left alone when the service's
//! definition already holds what the release says (its defaults aside), updated in place for an
//! addition, and refused, naming the field, for a breaking change; an asset is compared before
//! its PATCH; an agent gets a new version only when its latest version's definition or digest
//! (`metadata["vibedata.digest"]`) differs, since every POST makes a new immutable version.
//! Nothing the release does not name is deleted; it is reported as `unmanaged`.

mod defs;
pub mod diff;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use url::Url;

use super::preflight::Check;
use super::{Change, Env, Phase, Plan, Report};
use crate::azure::foundry::Project;
use crate::azure::retry::Poll;
use crate::azure::search::{Condition, Search};
use crate::azure::AzureError;
use crate::cloud::Cloud;
use crate::config::{AiConfig, Validator};
use crate::error::{Code, PhaseError};
use crate::release;
use crate::sequence::Step;
use crate::stored_release::{paths, StoredRelease};
pub use defs::{Agent, Asset, Definitions};
use diff::Verdict;

/// The ARM api-version of `accounts/{a}/projects/{p}`.
const PROJECTS_API: &str = "2025-06-01";
/// A racing writer's 412 is re-read and re-decided this many times.
const RACE_ATTEMPTS: u32 = 3;
const MAX_LAYER: u64 = 8 * 1024 * 1024;

pub struct Ai;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Create,
    Update,
    Unchanged,
}

impl Act {
    fn planned(self) -> &'static str {
        match self {
            Act::Create => "create",
            Act::Update => "update",
            Act::Unchanged => "unchanged",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Act::Create => "created",
            Act::Update => "updated",
            Act::Unchanged => "unchanged",
        }
    }
}

/// An agent as this run wants it: the release's definition with the image resolved.
struct Wanted {
    agent: Agent,
    definition: Value,
    digest: String,
    act: Act,
    latest_version: Option<String>,
}

/// What the plan hands the apply.
pub struct Work {
    search: Search,
    project: Project,
    release: Option<String>,
    indexes: Vec<(String, Value, Act)>,
    assets: Vec<(Asset, Act)>,
    agents: Vec<Wanted>,
    unmanaged: Value,
}

#[async_trait]
impl Phase for Ai {
    type Config = AiConfig;
    type Work = Work;

    fn step(&self) -> Step {
        Step::Ai
    }

    fn configure(&self, v: &mut Validator<'_>, cloud: &Cloud) -> AiConfig {
        v.ai(cloud)
    }

    fn scopes(&self, _cfg: &AiConfig, _shared: &crate::config::Config) -> Vec<String> {
        vec![crate::azure::search::SCOPE.to_owned(), crate::azure::foundry::SCOPE.to_owned()]
    }

    async fn checks(&self, env: &Env<'_, AiConfig>) -> Vec<Check> {
        let started = Instant::now();
        vec![match project_endpoint(env).await {
            Ok(url) => Check::pass("Foundry project", format!("project endpoint {url}"), started),
            Err(PhaseError::Azure { source }) => Check::fail("Foundry project", &source, started),
            Err(e) => {
                Check::failed("Foundry project", Code::ProjectEndpointMissing, project_id(env), e.to_string(), started)
            }
        }]
    }

    async fn plan(&self, env: &Env<'_, AiConfig>) -> Result<Plan<Work>, PhaseError> {
        let (ctx, cfg) = (env.ctx, env.cfg);
        let search = Search::new(ctx.pipeline.clone(), cfg.search_endpoint.clone());
        let project = Project::new(ctx.pipeline.clone(), project_endpoint(env).await?);
        let stored = StoredRelease::load(ctx).await?;
        let Some(ai) = stored.manifest.ai.clone() else {
            tracing::info!(release = %stored.release, "the release ships no AI definitions");
            let summary = json!({"release": stored.release, "definitions": null});
            let work = Work {
                search,
                project,
                release: None,
                indexes: vec![],
                assets: vec![],
                agents: vec![],
                unmanaged: json!({}),
            };
            return Ok(Plan::new(vec![], summary, work));
        };
        let defs = definitions(ctx, &stored, &ai).await?;

        // Indexes: a breaking change stops the plan before anything is written.
        let mut indexes = Vec::new();
        for (name, desired) in &defs.indexes {
            let act = match search.get(name).await? {
                None => Act::Create,
                Some(current) => match diff::compare(desired, &current.definition) {
                    Verdict::Equal => Act::Unchanged,
                    Verdict::Update { .. } => Act::Update,
                    Verdict::Breaking { field, why } => return Err(breaking(&search, name, &field, &why)),
                },
            };
            indexes.push((name.clone(), desired.clone(), act));
        }
        let mut assets = Vec::new();
        for a in &defs.assets {
            let act = match project.index_asset(&a.name, &a.version).await? {
                None => Act::Create,
                Some(current) if covers(&a.body, &current) => Act::Unchanged,
                Some(_) => Act::Update,
            };
            assets.push((a.clone(), act));
        }
        let mut agents = Vec::new();
        for agent in &defs.agents {
            let definition = resolve_image(agent, &stored.manifest, &cfg.acr_login_server);
            let digest = agent_digest(&definition, agent.description.as_deref());
            let latest = project.agent(&agent.name).await?;
            let latest_version = latest
                .as_ref()
                .and_then(|l| l.pointer("/versions/latest/version"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let act = match &latest {
                None => Act::Create,
                Some(l) => {
                    let v = &l["versions"]["latest"];
                    let same = v.pointer("/metadata/vibedata.digest").and_then(Value::as_str) == Some(digest.as_str())
                        && covers(&definition, &v["definition"]);
                    if same {
                        Act::Unchanged
                    } else {
                        Act::Update
                    }
                }
            };
            agents.push(Wanted { agent: agent.clone(), definition, digest, act, latest_version });
        }

        // What the release does not name stays, and is reported.
        let unmanaged = json!({
            "indexes": search.names().await?.into_iter().filter(|n| !defs.indexes.contains_key(n)).collect::<Vec<_>>(),
            "agents": project.agent_names().await?.into_iter().filter(|n| !defs.agents.iter().any(|a| &a.name == n)).collect::<Vec<_>>(),
            "indexAssets": project.index_names().await?.into_iter().filter(|n| !defs.assets.iter().any(|a| &a.name == n)).collect::<Vec<_>>(),
        });

        let mut changes = Vec::new();
        for (name, _, act) in indexes.iter().filter(|i| i.2 != Act::Unchanged) {
            changes.push(Change::new("search index", name.clone(), act.planned()));
        }
        for (a, act) in assets.iter().filter(|a| a.1 != Act::Unchanged) {
            changes.push(Change::new("index asset", format!("{}/{}", a.name, a.version), act.planned()));
        }
        for w in agents.iter().filter(|w| w.act != Act::Unchanged) {
            changes.push(Change::new(
                "agent",
                w.agent.name.clone(),
                if w.act == Act::Create { "create" } else { "new version" },
            ));
        }
        let summary = json!({
            "release": stored.release,
            "searchEndpoint": search.endpoint().as_str(),
            "projectEndpoint": project.endpoint().as_str(),
            "indexes": indexes.iter().map(|(n, _, a)| json!({"name": n, "action": a.planned()})).collect::<Vec<_>>(),
            "indexAssets": assets.iter().map(|(x, a)| json!({"name": x.name, "version": x.version, "action": a.planned()})).collect::<Vec<_>>(),
            "agents": agents.iter().map(|w| json!({"name": w.agent.name, "kind": w.agent.kind(), "action": w.act.planned(), "version": w.latest_version})).collect::<Vec<_>>(),
            "unmanaged": unmanaged,
        });
        let work = Work { search, project, release: Some(stored.release), indexes, assets, agents, unmanaged };
        Ok(Plan::new(changes, summary, work))
    }

    async fn apply(&self, env: &Env<'_, AiConfig>, plan: Plan<Work>) -> Result<Report, PhaseError> {
        let w = plan.work;
        let mut indexes = Vec::new();
        for (name, desired, act) in &w.indexes {
            let (done, etag) = write_index(env, &w.search, name, desired, *act).await?;
            indexes.push(json!({"name": name, "action": done.done(), "etag": etag}));
        }
        let mut assets = Vec::new();
        for (a, act) in &w.assets {
            if *act != Act::Unchanged {
                w.project.put_index_asset(&a.name, &a.version, &a.body).await?;
                env.changed(Change::new("index asset", format!("{}/{}", a.name, a.version), act.planned()));
            }
            assets.push(json!({"name": a.name, "version": a.version, "action": act.done()}));
        }
        let mut agents = Vec::new();
        for wanted in &w.agents {
            agents.push(write_agent(env, &w.project, wanted).await?);
        }
        Ok(Report {
            summary: json!({
                "release": w.release,
                "searchEndpoint": w.search.endpoint().as_str(),
                "projectEndpoint": w.project.endpoint().as_str(),
                "indexes": indexes,
                "indexAssets": assets,
                "agents": agents,
                "unmanaged": w.unmanaged,
            }),
        })
    }
}

/// The release's AI definitions, read from artifact storage by the digest the manifest pins and
/// validated. Registry and Health Bootstrap read the same objects' names from here.
pub async fn definitions(
    ctx: &crate::context::Context,
    stored: &StoredRelease,
    ai: &release::AiEntry,
) -> Result<Definitions, PhaseError> {
    let layer = stored
        .artifact_layer(
            &paths::ai_ref(&stored.release),
            &ai.artifact.digest,
            release::AI_ARTIFACT_TYPE,
            release::AI_LAYER_TYPE,
            MAX_LAYER,
        )
        .await?;
    let images: Vec<String> = stored.manifest.images.iter().map(|i| i.repository.clone()).collect();
    defs::parse(&layer, &images).map_err(|e| {
        PhaseError::bad_input(
            format!("{}/oci {}", ctx.config.artifact_container, paths::ai_ref(&stored.release)),
            e.to_string(),
        )
    })
}

fn project_id(env: &Env<'_, AiConfig>) -> String {
    let c = env.config();
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.CognitiveServices/accounts/{}/projects/{}",
        c.subscription_id, c.resource_group, env.cfg.foundry_account, env.cfg.foundry_project
    )
}

/// The project's data-plane endpoint: configured, or the project's `endpoints["AI Foundry API"]`.
async fn project_endpoint(env: &Env<'_, AiConfig>) -> Result<Url, PhaseError> {
    if let Some(u) = &env.cfg.project_endpoint {
        return Ok(u.clone());
    }
    let id = project_id(env);
    let project: Value = env.ctx.arm.get(&id, PROJECTS_API, &crate::azure::foundry::PROJECT_READ).await?;
    let raw = project.pointer("/properties/endpoints/AI Foundry API").and_then(Value::as_str).ok_or_else(|| {
        PhaseError::failed(Code::ProjectEndpointMissing, &id, "the project has no endpoints[\"AI Foundry API\"]")
    })?;
    Url::parse(raw).map_err(|e| {
        PhaseError::failed(Code::ProjectEndpointMissing, &id, format!("its AI Foundry API endpoint {raw:?}: {e}"))
    })
}

fn breaking(search: &Search, index: &str, field: &str, why: &str) -> PhaseError {
    PhaseError::failed(
        Code::BreakingIndexChange,
        format!("{}indexes/{index}", search.endpoint()),
        format!("field {field} of index {index}: {why}; a breaking change needs a new index name in the release"),
    )
}

/// Creates, or updates under the ETag just read; a racing writer's 412 is re-read and re-decided.
async fn write_index(
    env: &Env<'_, AiConfig>,
    search: &Search,
    name: &str,
    desired: &Value,
    planned: Act,
) -> Result<(Act, String), PhaseError> {
    let mut act = planned;
    for attempt in 1..=RACE_ATTEMPTS {
        let result = match act {
            Act::Unchanged => {
                let etag = search.get(name).await?.map(|s| s.etag).unwrap_or_default();
                return Ok((Act::Unchanged, etag));
            }
            Act::Create => search.put(name, desired, Condition::Absent).await,
            Act::Update => {
                let current = search.get(name).await?;
                match current {
                    None => {
                        act = Act::Create;
                        continue;
                    }
                    Some(c) => match diff::compare(desired, &c.definition) {
                        Verdict::Equal => return Ok((Act::Unchanged, c.etag)),
                        Verdict::Breaking { field, why } => return Err(breaking(search, name, &field, &why)),
                        Verdict::Update { .. } => search.put(name, desired, Condition::At(&c.etag)).await,
                    },
                }
            }
        };
        match result {
            Ok(stored) => {
                env.changed(Change::new("search index", name, act.planned()));
                return Ok((act, stored.etag));
            }
            Err(AzureError::Service { status: 412, .. }) if attempt < RACE_ATTEMPTS => {
                tracing::info!(index = name, "another writer changed index {name} meanwhile; reading it again");
                act = match search.get(name).await? {
                    None => Act::Create,
                    Some(c) => match diff::compare(desired, &c.definition) {
                        Verdict::Equal => return Ok((Act::Unchanged, c.etag)),
                        Verdict::Update { .. } => Act::Update,
                        Verdict::Breaking { field, why } => return Err(breaking(search, name, &field, &why)),
                    },
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PhaseError::failed(Code::Other("PreconditionFailed".into()), name, "other writers kept changing the index"))
}

/// Makes a version when the plan says so; waits for a hosted one to be `active`.
async fn write_agent(env: &Env<'_, AiConfig>, project: &Project, w: &Wanted) -> Result<Value, PhaseError> {
    let name = &w.agent.name;
    let (version, status) = if w.act == Act::Unchanged {
        (w.latest_version.clone(), None)
    } else {
        let metadata = json!({"vibedata.digest": w.digest});
        let created = project
            .create_version(name, &w.definition, w.agent.description.as_deref(), &metadata, w.agent.features())
            .await
            .map_err(|e| match e {
                AzureError::Service { status: 403, code, message, resource } if code == "preview_feature_required" => PhaseError::failed(
                    Code::Other(code),
                    resource,
                    format!("agent {name} of kind {} is a preview kind this project refuses without its Foundry-Features: {message}", w.agent.kind()),
                ),
                other => other.into(),
            })?;
        env.changed(Change::new("agent", name.clone(), if w.act == Act::Create { "create" } else { "new version" }));
        let version = created["version"].as_str().map(str::to_owned);
        let status = created["status"].as_str().map(str::to_owned);
        (version, status)
    };
    let status = if w.agent.kind() == "hosted" {
        Some(wait_hosted(env, project, name, version.as_deref(), status).await?)
    } else {
        status
    };
    Ok(json!({"name": name, "kind": w.agent.kind(), "action": w.act.done(), "version": version, "status": status}))
}

/// Polls a hosted agent's version to `active`, or fails naming its `error.code`.
async fn wait_hosted(
    env: &Env<'_, AiConfig>,
    project: &Project,
    name: &str,
    version: Option<&str>,
    mut status: Option<String>,
) -> Result<String, PhaseError> {
    let Some(version) = version else { return Ok(status.unwrap_or_default()) };
    let started = Instant::now();
    let mut poll = Poll::new(env.cfg.hosted_timeout, Duration::from_millis(500), Duration::from_secs(5));
    loop {
        let v = match status.as_deref() {
            Some("active") => return Ok("active".into()),
            _ => project.agent_version(name, version).await?.unwrap_or(Value::Null),
        };
        match v["status"].as_str() {
            Some("active") => return Ok("active".into()),
            Some("failed") => {
                let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or("failed").to_owned();
                let message = v.pointer("/error/message").and_then(Value::as_str).unwrap_or_default().to_owned();
                return Err(PhaseError::failed(
                    Code::Other(code.clone()),
                    format!("{}/agents/{name}/versions/{version}", project.endpoint()),
                    format!("hosted agent {name} version {version} failed: {code}: {message}"),
                ));
            }
            other => status = other.map(str::to_owned).filter(|s| s == "active"),
        }
        match poll.next(started.elapsed(), None) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => {
                return Err(PhaseError::failed(
                    Code::Other("HostedAgentTimedOut".into()),
                    format!("{}/agents/{name}/versions/{version}", project.endpoint()),
                    format!("hosted agent {name} version {version} is not active after {:?}", env.cfg.hosted_timeout),
                ))
            }
        }
    }
}

/// The release's definition, with a hosted image rewritten to the customer registry by digest.
fn resolve_image(agent: &Agent, manifest: &release::ReleaseManifest, registry: &str) -> Value {
    let mut definition = agent.definition.clone();
    if let Some(repo) = &agent.image {
        if let Some(image) = manifest.images.iter().find(|i| &i.repository == repo) {
            definition["container_configuration"]["image"] = json!(format!("{registry}/{repo}@{}", image.digest));
        }
    }
    definition
}

/// A short digest of what an agent version is made of, kept in its metadata (a string map).
fn agent_digest(definition: &Value, description: Option<&str>) -> String {
    crate::oci::sha256_digest(
        &serde_json::to_vec(&json!({"definition": definition, "description": description})).expect("serializes"),
    )
}

fn covers(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => d.iter().all(|(k, v)| c.get(k).is_some_and(|cv| covers(v, cv))),
        (d, c) => d == c,
    }
}
