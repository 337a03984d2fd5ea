//! Health of what the release deployed inside the platform's resources, as the registry recorded
//! it (`registry.release_objects`): each object is read again from its service, with the same
//! reads Registry Bootstrap recorded it by. A Helm release is healthy when every deployment of
//! its namespace is Available and the Airbyte server's health endpoint answers, through the
//! cluster (a read-only runCommand); an index or an asset when it still exists; an agent when it
//! exists and, if hosted, its latest version is `active`.

use std::time::Duration;

use serde_json::Value;

use super::probes::Outcome;
use crate::azure::foundry::Project;
use crate::azure::search::Search;
use crate::context::Context;
use crate::error::PhaseError;
use crate::phases::registry::model::ObjectRow;
use crate::phases::registry::objects::{self, AGENT, HELM_RELEASE, INDEX_ASSET, SEARCH_INDEX};
use crate::phases::{airbyte, NoSteps};

/// A runCommand takes a pod start: far longer than a network check.
pub const LIMIT: Duration = Duration::from_secs(300);

fn failed(e: &PhaseError) -> Outcome {
    Outcome::unhealthy(e.to_string(), e.code_and_resource().0)
}

/// Checks one recorded object; `host` is the properties of the resource that holds it.
pub async fn check(ctx: &Context, host: &Value, o: &ObjectRow) -> Outcome {
    let missing = |what: &str, code: &str| Outcome::unhealthy(format!("{what} {} is gone", o.name), code);
    let endpoint_missing = || Outcome::unhealthy("its service's registry row has no data-plane endpoint", "NoEndpoint");
    match o.kind.as_str() {
        HELM_RELEASE => helm(ctx, o).await,
        SEARCH_INDEX => {
            let Some(endpoint) = objects::search_endpoint(host) else { return endpoint_missing() };
            match objects::index(&Search::new(ctx.pipeline.clone(), endpoint), &o.host, &o.name).await {
                Ok(Some(r)) => Outcome::healthy(format!("ETag {}", r.version.unwrap_or_default()), "the index exists"),
                Ok(None) => missing("index", "SearchIndexMissing"),
                Err(e) => failed(&e),
            }
        }
        INDEX_ASSET | AGENT => {
            let Some(endpoint) = objects::project_endpoint(host) else { return endpoint_missing() };
            let project = Project::new(ctx.pipeline.clone(), endpoint);
            if o.kind == INDEX_ASSET {
                let version = o.version.as_deref().unwrap_or("1");
                return match objects::asset(&project, &o.host, &o.name, version).await {
                    Ok(Some(_)) => Outcome::healthy(format!("version {version}"), "the index asset exists"),
                    Ok(None) => missing("index asset", "IndexAssetMissing"),
                    Err(e) => failed(&e),
                };
            }
            let kind = o.properties.get("kind").and_then(Value::as_str).unwrap_or("prompt");
            match objects::agent(&project, &o.host, &o.name, kind).await {
                Ok(Some(r)) => {
                    let version = r.version.unwrap_or_default();
                    let state = r.state.unwrap_or_default();
                    let observed = format!("version {version} {state}");
                    if kind == "hosted" && state != "active" {
                        let mut out = Outcome::unhealthy(
                            format!("hosted agent {} version {version} is {state}, not active", o.name),
                            "HostedAgentNotActive",
                        );
                        out.observed = Some(observed);
                        out
                    } else {
                        Outcome::healthy(observed, format!("the {kind} agent exists"))
                    }
                }
                Ok(None) => missing("agent", "AgentMissing"),
                Err(e) => failed(&e),
            }
        }
        other => Outcome::unhealthy(format!("an object kind this binary does not know: {other}"), "UnknownObject"),
    }
}

async fn helm(ctx: &Context, o: &ObjectRow) -> Outcome {
    let text = |k: &str| o.properties.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (namespace, release) = (text("namespace"), text("release"));
    let aks = objects::cluster(ctx, &o.host);
    let token = match airbyte::cluster_token(ctx, &aks).await {
        Ok(t) => t,
        Err(e) => return failed(&e),
    };
    match airbyte::verify(&aks, token.as_ref(), &namespace, &release, &NoSteps).await {
        Ok(r) => Outcome::healthy(
            r.logs().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned(),
            format!("every deployment in {namespace} is Available and the {release} server answers its health check"),
        ),
        Err(e) => failed(&e),
    }
}
