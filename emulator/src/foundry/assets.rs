//! Project index assets (`project.indexes.*`): `PATCH /indexes/{name}/versions/{version}`
//! (JSON merge patch: 201 created, 200 updated), GET, lists (`{"value", "nextLink"}`), DELETE
//! (204, absent or not, as the SDK documents).
//!
//! A version's type, connection, index name and field mapping are fixed at creation (the SDK
//! marks them create-only); a PATCH that changes one is refused with 409, so re-applying the
//! same asset is idempotent and a different one needs a new version. An `AzureSearch` asset's
//! `connectionName` must be one of the project's connections (`arm/projects.rs`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::{error, Admitted};
use crate::arm::inventory::Names;
use crate::http::json as respond;
use crate::state::Shared;

/// Fixed once the version exists.
const CREATE_ONLY: &[&str] = &["type", "connectionName", "indexName", "fieldMapping"];
/// What the SDK's `IndexType` knows.
const TYPES: &[&str] = &["AzureSearch", "ManagedAzureSearch", "CosmosDBNoSqlVectorStore"];

pub struct Asset {
    pub name: String,
    pub version: String,
    seq: u64,
    /// Everything the client set (`type`, `connectionName`, `indexName`, `description`, `tags`, ...).
    body: Map<String, Value>,
}

impl Asset {
    fn to_json(&self, account: &str, project: &str) -> Value {
        let mut v = Value::Object(self.body.clone());
        v["id"] = json!(format!(
            "azureai://accounts/{account}/projects/{project}/indexes/{}/versions/{}",
            self.name, self.version
        ));
        v["name"] = json!(self.name);
        v["version"] = json!(self.version);
        v
    }
}

type Params = Path<HashMap<String, String>>;

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> &'a str {
    p.get(key).map_or("", String::as_str)
}

/// Letters, digits, `-`, `_`, `.`; starting with a letter or digit; at most 255 (names) or 64 (versions).
fn valid(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn bad(code: &str, message: impl Into<String>, param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, code, message, Some(param))
}

fn names(st: &Shared) -> (String, String) {
    let n = Names::new(&st.config);
    (n.foundry, n.foundry_project)
}

/// `PATCH /indexes/{name}/versions/{version}`.
pub async fn create_or_update(State(st): State<Shared>, a: Admitted, Path(p): Params, body: Bytes) -> Response {
    let (name, version) = (param(&p, "name"), param(&p, "version"));
    if !valid(name, 255) {
        return bad("invalid_value", format!("Invalid index name '{name}'."), "name");
    }
    if !valid(version, 64) {
        return bad("invalid_value", format!("Invalid index version '{version}'."), "version");
    }
    let patch: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return bad("invalid_type", "The request body must be a JSON object.", "body"),
        Err(e) => return bad("invalid_json", format!("The request body is not valid JSON: {e}"), "body"),
    };
    let (account, project_name) = names(&st);
    let mut data = st.foundry.lock();
    let seq = data.next_seq();
    let project = data.projects.get_mut(&a.project).expect("admitted project");
    if let Some(existing) = project.assets.iter_mut().find(|x| x.name == name && x.version == version) {
        for key in CREATE_ONLY {
            if let Some(v) = patch.get(*key) {
                if existing.body.get(*key) != Some(v) {
                    return error(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!("Index '{name}' version '{version}' exists with a different '{key}'; versions are immutable, create a new version."),
                        Some(key),
                    );
                }
            }
        }
        merge(&mut existing.body, &patch);
        return respond(StatusCode::OK, existing.to_json(&account, &project_name));
    }
    let ty = patch.get("type").and_then(Value::as_str).unwrap_or_default();
    if !TYPES.contains(&ty) {
        return bad(
            "invalid_value",
            format!("Invalid index type '{ty}'; expected one of {}.", TYPES.join(", ")),
            "type",
        );
    }
    if ty == "AzureSearch" {
        for key in ["connectionName", "indexName"] {
            if patch.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                return bad(
                    "missing_required_parameter",
                    format!("'{key}' is required for an AzureSearch index."),
                    key,
                );
            }
        }
        let connection = patch["connectionName"].as_str().unwrap_or_default();
        let known = crate::arm::projects::connection_names(&st.config);
        if !known.iter().any(|c| c.eq_ignore_ascii_case(connection)) {
            return bad(
                "invalid_value",
                format!(
                    "Connection '{connection}' was not found in project '{project_name}' (connections: {}).",
                    known.join(", ")
                ),
                "connectionName",
            );
        }
    }
    let mut body = Map::new();
    merge(&mut body, &patch);
    let asset = Asset { name: name.to_owned(), version: version.to_owned(), seq, body };
    let out = asset.to_json(&account, &project_name);
    project.assets.push(asset);
    respond(StatusCode::CREATED, out)
}

/// RFC 7396 at the top level (what the SDK sends): `null` removes, anything else replaces.
/// Read-only fields the client echoed back are ignored.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if matches!(k.as_str(), "id" | "name" | "version") {
            continue;
        }
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// `GET /indexes/{name}/versions/{version}`.
pub async fn get(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let (name, version) = (param(&p, "name"), param(&p, "version"));
    let (account, project_name) = names(&st);
    let data = st.foundry.lock();
    match data.projects[&a.project].assets.iter().find(|x| x.name == name && x.version == version) {
        Some(asset) => respond(StatusCode::OK, asset.to_json(&account, &project_name)),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Index '{name}' version '{version}' was not found."),
            Some("name"),
        ),
    }
}

/// `DELETE /indexes/{name}/versions/{version}`: 204 whether or not it existed.
pub async fn delete(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let (name, version) = (param(&p, "name"), param(&p, "version"));
    let mut data = st.foundry.lock();
    data.projects
        .get_mut(&a.project)
        .expect("admitted project")
        .assets
        .retain(|x| !(x.name == name && x.version == version));
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /indexes`: the latest version of each index.
pub async fn list(State(st): State<Shared>, a: Admitted) -> Response {
    let (account, project_name) = names(&st);
    let data = st.foundry.lock();
    let assets = &data.projects[&a.project].assets;
    let mut latest: Vec<&Asset> = Vec::new();
    for asset in assets {
        match latest.iter().position(|l| l.name == asset.name) {
            Some(i) if latest[i].seq < asset.seq => latest[i] = asset,
            Some(_) => {}
            None => latest.push(asset),
        }
    }
    let value: Vec<Value> = latest.iter().map(|x| x.to_json(&account, &project_name)).collect();
    respond(StatusCode::OK, json!({"value": value, "nextLink": null}))
}

/// `GET /indexes/{name}/versions`.
pub async fn list_versions(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let name = param(&p, "name");
    let (account, project_name) = names(&st);
    let data = st.foundry.lock();
    let value: Vec<Value> = data.projects[&a.project]
        .assets
        .iter()
        .filter(|x| x.name == name)
        .map(|x| x.to_json(&account, &project_name))
        .collect();
    respond(StatusCode::OK, json!({"value": value, "nextLink": null}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_replaces_and_removes() {
        let mut t = json!({"description": "a", "tags": {"x": "1"}}).as_object().cloned().unwrap();
        merge(&mut t, json!({"description": null, "tags": {"y": "2"}, "id": "ignored"}).as_object().unwrap());
        assert_eq!(Value::Object(t), json!({"tags": {"y": "2"}}));
        assert!(valid("docs-index", 255) && valid("1", 64) && !valid("-x", 64) && !valid("a/b", 64));
    }
}
