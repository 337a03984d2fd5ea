//! Foundry projects as ARM shows them: `Microsoft.CognitiveServices/accounts/projects` (a
//! tracked child of the AI Services account, listed in the resource group) and its Search
//! connection (`.../projects/{p}/connections/{c}`, a proxy resource, not listed).
//!
//! Shapes: `specs/ai-search-foundry.md` §1 (F3 `GetProject.json`): the project's
//! `endpoints["AI Foundry API"]` is the project endpoint, here the foundry listener's
//! `/api/projects/{p}`. The connection's category is `CognitiveSearch` (not verified in the
//! spec; the one Bicep samples use).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::inventory::{guid, resource_id, Names, Resource};
use super::platform::{COGNITIVE, SEARCH};
use super::{groups, ArmRequest};
use crate::config::Config;
use crate::http::{arm_error, json};
use crate::state::Shared;

pub const PROJECT: &str = "Microsoft.CognitiveServices/accounts/projects";
pub const CONNECTION: &str = "Microsoft.CognitiveServices/accounts/projects/connections";
/// 2025-06-01 is the stable version of the spec (F3); 2025-09-01 is what
/// `azure-mgmt-cognitiveservices` 14.1.0 sends; 2025-04-01-preview introduced projects.
pub const PROJECT_API_VERSIONS: &[&str] = &["2025-09-01", "2025-06-01", "2025-04-01-preview"];

/// The project's connections' names: one, to the Search service, named as infra/ names it
/// (`searchConnectionName` in infra/main.bicep) and the release's index assets refer to it.
pub const SEARCH_CONNECTION: &str = "vibedata-search";

pub fn connection_names(_cfg: &Config) -> Vec<String> {
    vec![SEARCH_CONNECTION.to_owned()]
}

fn connections(cfg: &Config, n: &Names, project_id: &str) -> Vec<Value> {
    let search_id = resource_id(cfg, SEARCH, &n.search);
    connection_names(cfg)
        .into_iter()
        .map(|name| {
            json!({
                "id": format!("{project_id}/connections/{name}"),
                "name": name,
                "type": CONNECTION,
                "properties": {
                    "category": "CognitiveSearch",
                    "target": crate::search::endpoint(cfg, &n.search),
                    "authType": "AAD",
                    "isSharedToAll": false,
                    "useWorkspaceManagedIdentity": false,
                    "metadata": {"ApiType": "Azure", "ResourceId": search_id, "location": cfg.location},
                },
            })
        })
        .collect()
}

/// The inventory's project (after the account it belongs to).
pub fn resources(cfg: &Config, n: &Names, tags: &Value) -> Vec<Resource> {
    let mut p = Resource::new(format!("{}/{}", n.foundry, n.foundry_project), PROJECT);
    p.tags = tags.clone();
    p.identity = Some(json!({
        "type": "SystemAssigned",
        "principalId": guid(&format!("project-identity:{}", n.foundry_project)),
        "tenantId": cfg.tenant_id,
    }));
    p.properties = json!({
        "provisioningState": "Succeeded",
        "displayName": n.foundry_project,
        "description": "The platform's Foundry project",
        "isDefault": true,
        "endpoints": {"AI Foundry API": crate::foundry::project_endpoint(cfg, &n.foundry, &n.foundry_project)},
    });
    let id = p.id(cfg);
    p.children.insert("connections", Value::Array(connections(cfg, n, &id)));
    vec![p]
}

fn not_found(rtype: &str, name: &str, rg: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
    )
}

/// `GET .../accounts/{a}/projects[/{p}]` and `.../projects/{p}/connections[/{c}]`.
pub fn get(st: &Shared, req: &ArmRequest) -> Response {
    let rg = req.param("resourceGroupName");
    let (account, project) = (req.param("accountName"), req.param("projectName"));
    let cfg = &st.config;
    let arm = st.arm.lock();
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let in_group = rg.eq_ignore_ascii_case(&cfg.resource_group);
    if !(in_group && arm.inventory.iter().any(|r| r.resource_type == COGNITIVE && r.name.eq_ignore_ascii_case(account)))
    {
        return not_found(COGNITIVE, account, rg);
    }
    let projects: Vec<&Resource> = arm
        .inventory
        .iter()
        .filter(|r| {
            r.resource_type == PROJECT && r.name.split('/').next().is_some_and(|a| a.eq_ignore_ascii_case(account))
        })
        .collect();
    let shown = |r: &Resource| {
        let mut v = r.full(cfg);
        // A child's own GET names it by its last segment.
        v["name"] = json!(r.name.rsplit('/').next().unwrap_or_default());
        v
    };
    if project.is_empty() {
        return json(StatusCode::OK, json!({"value": projects.iter().map(|r| shown(r)).collect::<Vec<_>>()}));
    }
    let Some(found) =
        projects.iter().find(|r| r.name.rsplit('/').next().is_some_and(|p| p.eq_ignore_ascii_case(project)))
    else {
        return not_found(PROJECT, &format!("{account}/{project}"), rg);
    };
    if !req.lower.iter().any(|s| s == "connections") {
        return json(StatusCode::OK, shown(found));
    }
    let list = found.children.get("connections").and_then(Value::as_array).cloned().unwrap_or_default();
    let connection = req.param("connectionName");
    if connection.is_empty() {
        return json(StatusCode::OK, json!({"value": list}));
    }
    match list.into_iter().find(|c| c["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(connection))) {
        Some(c) => json(StatusCode::OK, c),
        None => not_found(CONNECTION, &format!("{account}/{project}/{connection}"), rg),
    }
}
