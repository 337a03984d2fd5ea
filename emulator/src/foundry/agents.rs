//! Named, versioned agents: `POST /agents/{name}/versions` (`create_version`, which creates
//! the agent when it is missing), `POST /agents` (create with version "1"), GET of an agent
//! (its latest version) or a version, cursor-paged lists, deletes.
//!
//! Versions are immutable and numbered "1", "2", ... per agent; every POST makes one. A hosted
//! version starts `creating` and turns `active` once it has provisioned for `hostedMs` (however
//! often it is polled) and been observed `hostedPolls` times, or `failed`
//! with `error.code` when a failure was armed or its image is not in the customer registry
//! (`hosted.rs`). Other kinds are `active` at once. Preview kinds need `Foundry-Features`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::hosted::{self, ImageCheck};
use super::{error, has_feature, Admitted, FoundryData};
use crate::http::json as respond;
use crate::state::Shared;

/// Kinds that are previews, and the `Foundry-Features` opt-in each needs (what
/// `azure-ai-projects` 2.10 sends with `allow_preview=True`).
const PREVIEW_KINDS: &[(&str, &str, &str)] = &[
    ("workflow", "WorkflowAgents=V1Preview", "Workflow agents"),
    ("external", "ExternalAgents=V1Preview", "External agents"),
    ("voice", "VoiceAgents=V1Preview", "Voice agents"),
];
const KINDS: &[&str] = &["prompt", "hosted", "workflow", "external", "voice"];

pub struct Agent {
    pub name: String,
    seq: u64,
    next_version: u64,
    versions: Vec<Version>,
}

struct Version {
    version: String,
    created_at: i64,
    seq: u64,
    description: Option<String>,
    metadata: Value,
    definition: Value,
    status: &'static str,
    /// Observations still answered `creating` (hosted versions).
    polls_left: u32,
    /// When a hosted version's provisioning is over.
    ready_at: std::time::Instant,
    /// An armed failure `(code, message)`, applied when the polls are over.
    armed: Option<(String, String)>,
    image: Option<Arc<ImageCheck>>,
    error: Option<Value>,
}

impl Version {
    /// One observation of a `creating` version: count it down, then settle it.
    fn observe(&mut self) {
        if self.status != "creating" {
            return;
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            return;
        }
        if std::time::Instant::now() < self.ready_at {
            return;
        }
        let outcome = match (self.armed.take(), &self.image) {
            (Some(failure), _) => Err(failure),
            (None, Some(check)) => match check.get() {
                Some(result) => result.clone(),
                // The registry has not answered yet: still creating.
                None => return,
            },
            (None, None) => Ok(()),
        };
        match outcome {
            Ok(()) => self.status = "active",
            Err((code, message)) => {
                self.status = "failed";
                self.error = Some(json!({"code": code, "message": message}));
            }
        }
    }

    fn id(&self, agent: &str) -> String {
        format!("{agent}:{}", self.version)
    }

    fn to_json(&self, agent: &str) -> Value {
        let mut v = json!({
            "object": "agent.version",
            "id": self.id(agent),
            "name": agent,
            "version": self.version,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "definition": self.definition,
            "status": self.status,
        });
        if let Some(d) = &self.description {
            v["description"] = json!(d);
        }
        if let Some(e) = &self.error {
            v["error"] = e.clone();
        }
        v
    }
}

impl Agent {
    fn latest(&self) -> &Version {
        self.versions.last().expect("an agent has at least one version")
    }

    fn to_json(&self) -> Value {
        json!({
            "object": "agent",
            "id": self.name,
            "name": self.name,
            "state": "enabled",
            "configuration_state": "enabled",
            "versions": {"latest": self.latest().to_json(&self.name)},
        })
    }

    /// `{"name", "versions": [{"version", "status", "error"}]}` for the control view.
    pub fn summary(&self) -> Value {
        json!({
            "name": self.name,
            "versions": self.versions.iter().map(|v| json!({
                "version": v.version, "kind": v.definition["kind"], "status": v.status, "error": v.error,
            })).collect::<Vec<_>>(),
        })
    }
}

type Params = Path<HashMap<String, String>>;

fn param<'a>(p: &'a HashMap<String, String>, key: &str) -> &'a str {
    p.get(key).map_or("", String::as_str)
}

/// Alphanumeric and hyphens, starting and ending alphanumeric, at most 63 (the SDK's rule).
pub fn valid_agent_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn not_found(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", format!("Agent '{name}' was not found."), Some("agent_name"))
}

fn bad(code: &str, message: impl Into<String>, param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, code, message, Some(param))
}

fn now() -> i64 {
    crate::tokens::now()
}

/// What a create request carries, checked.
struct NewVersion {
    definition: Value,
    description: Option<String>,
    metadata: Value,
}

fn check_body(a: &Admitted, name: &str, body: &Value) -> Result<NewVersion, Response> {
    if !valid_agent_name(name) {
        return Err(bad(
            "invalid_value",
            format!("Invalid agent name '{name}': it must start and end with a letter or digit, contain only letters, digits and hyphens, and be at most 63 characters."),
            "agent_name",
        ));
    }
    let Some(def) = body.get("definition").filter(|d| d.is_object()) else {
        return Err(bad("missing_required_parameter", "'definition' is required.", "definition"));
    };
    let kind = def["kind"].as_str().unwrap_or_default();
    if !KINDS.contains(&kind) {
        return Err(bad(
            "invalid_value",
            format!("Invalid value '{kind}' for 'definition.kind'; expected one of {}.", KINDS.join(", ")),
            "definition.kind",
        ));
    }
    if let Some((_, feature, label)) = PREVIEW_KINDS.iter().find(|(k, _, _)| *k == kind) {
        if !has_feature(&a.headers, feature) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "preview_feature_required",
                format!("{label} is in preview. This operation requires the following opt-in preview feature(s): {feature}. Include the 'Foundry-Features: {feature}' header in your request."),
                Some("Foundry-Features"),
            ));
        }
    }
    let need_str = |key: &str| -> Result<(), Response> {
        match def.get(key).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err(bad(
                "missing_required_parameter",
                format!("'definition.{key}' is required."),
                &format!("definition.{key}"),
            )),
        }
    };
    match kind {
        "prompt" => need_str("model")?,
        "hosted" => {
            need_str("cpu")?;
            need_str("memory")?;
            let image = def.pointer("/container_configuration/image").and_then(Value::as_str);
            if image.is_none_or(str::is_empty) && def.get("code_configuration").is_none() {
                return Err(bad(
                    "missing_required_parameter",
                    "A hosted agent needs 'definition.container_configuration.image' (or 'definition.code_configuration').",
                    "definition.container_configuration",
                ));
            }
        }
        _ => {}
    }
    let metadata = body.get("metadata").cloned().filter(|m| !m.is_null()).unwrap_or_else(|| json!({}));
    check_metadata(&metadata)?;
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("invalid_type", "'description' must be a string.", "description")),
    };
    Ok(NewVersion { definition: def.clone(), description, metadata })
}

/// At most 16 string pairs, keys up to 64 and values up to 512 characters.
fn check_metadata(m: &Value) -> Result<(), Response> {
    let Some(map) = m.as_object() else {
        return Err(bad("invalid_type", "'metadata' must be an object of strings.", "metadata"));
    };
    if map.len() > 16 {
        return Err(bad(
            "invalid_value",
            format!("'metadata' has {} keys; at most 16 are allowed.", map.len()),
            "metadata",
        ));
    }
    for (k, v) in map {
        let Some(v) = v.as_str() else {
            return Err(bad("invalid_type", format!("metadata['{k}'] must be a string."), "metadata"));
        };
        if k.chars().count() > 64 || v.chars().count() > 512 {
            return Err(bad(
                "invalid_value",
                format!("metadata['{k}']: keys are at most 64 and values at most 512 characters."),
                "metadata",
            ));
        }
    }
    Ok(())
}

fn parse(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| bad("invalid_json", format!("The request body is not valid JSON: {e}"), "body"))
}

/// Adds a version to `agent` (creating the agent when it is `None`): returns its JSON.
fn add_version(st: &Shared, data: &mut FoundryData, project: &str, name: &str, new: NewVersion) -> Value {
    let seq = data.next_seq();
    let hosted = new.definition["kind"] == "hosted";
    let armed = if hosted { data.take_failure(name) } else { None };
    let image = match (hosted, &armed) {
        (true, None) => new
            .definition
            .pointer("/container_configuration/image")
            .and_then(Value::as_str)
            .map(|i| hosted::check(st, i)),
        _ => None,
    };
    let polls = data.hosted_polls;
    let provisioning = std::time::Duration::from_millis(if hosted { data.hosted_ms } else { 0 });
    if hosted {
        crate::latency::record_for("foundry.agents", "hostedAgent", name, provisioning);
    }
    let project = data.projects.get_mut(project).expect("admitted project");
    let agent = match project.agents.iter().position(|a| a.name == name) {
        Some(i) => &mut project.agents[i],
        None => {
            project.agents.push(Agent { name: name.to_owned(), seq, next_version: 1, versions: Vec::new() });
            project.agents.last_mut().expect("just pushed")
        }
    };
    let version = Version {
        version: agent.next_version.to_string(),
        created_at: now(),
        seq,
        description: new.description,
        metadata: new.metadata,
        definition: new.definition,
        status: if hosted { "creating" } else { "active" },
        polls_left: polls,
        ready_at: std::time::Instant::now() + provisioning,
        armed: armed.map(|(code, message)| {
            let message = if message.is_empty() {
                format!("Failed to pull the container image for agent '{name}'.")
            } else {
                message
            };
            (code, message)
        }),
        image,
        error: None,
    };
    agent.next_version += 1;
    let out = version.to_json(name);
    agent.versions.push(version);
    out
}

/// `POST /agents/{name}/versions`.
pub async fn create_version(State(st): State<Shared>, a: Admitted, Path(p): Params, body: Bytes) -> Response {
    let name = param(&p, "agent");
    let new = match parse(&body).and_then(|b| check_body(&a, name, &b)) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut data = st.foundry.lock();
    let out = add_version(&st, &mut data, &a.project, name, new);
    respond(StatusCode::OK, out)
}

/// `POST /agents` `{"name", "definition", ...}`: the agent and its version "1".
pub async fn create(State(st): State<Shared>, a: Admitted, body: Bytes) -> Response {
    let body = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let new = match check_body(&a, &name, &body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut data = st.foundry.lock();
    if data.projects[&a.project].agents.iter().any(|ag| ag.name == name) {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            format!("An agent named '{name}' already exists."),
            Some("name"),
        );
    }
    add_version(&st, &mut data, &a.project, &name, new);
    let agent = data.projects[&a.project].agents.iter().find(|ag| ag.name == name).expect("just created");
    respond(StatusCode::OK, agent.to_json())
}

/// `GET /agents/{name}`: the agent with its latest version (observed).
pub async fn get(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let name = param(&p, "agent");
    let mut data = st.foundry.lock();
    let project = data.projects.get_mut(&a.project).expect("admitted project");
    let Some(agent) = project.agents.iter_mut().find(|ag| ag.name == name) else {
        return not_found(name);
    };
    if let Some(v) = agent.versions.last_mut() {
        v.observe();
    }
    respond(StatusCode::OK, agent.to_json())
}

/// `GET /agents/{name}/versions/{version}`.
pub async fn get_version(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let (name, version) = (param(&p, "agent"), param(&p, "version"));
    let mut data = st.foundry.lock();
    let project = data.projects.get_mut(&a.project).expect("admitted project");
    let Some(agent) = project.agents.iter_mut().find(|ag| ag.name == name) else {
        return not_found(name);
    };
    let Some(v) = agent.versions.iter_mut().find(|v| v.version == version) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Version '{version}' of agent '{name}' was not found."),
            Some("agent_version"),
        );
    };
    v.observe();
    respond(StatusCode::OK, v.to_json(name))
}

/// `DELETE /agents/{name}`: the agent and all its versions.
pub async fn delete(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let name = param(&p, "agent");
    let mut data = st.foundry.lock();
    let agents = &mut data.projects.get_mut(&a.project).expect("admitted project").agents;
    let Some(i) = agents.iter().position(|ag| ag.name == name) else {
        return not_found(name);
    };
    agents.remove(i);
    respond(StatusCode::OK, json!({"object": "agent.deleted", "name": name, "deleted": true}))
}

/// `DELETE /agents/{name}/versions/{version}`; the agent goes with its last version.
pub async fn delete_version(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let (name, version) = (param(&p, "agent"), param(&p, "version"));
    let mut data = st.foundry.lock();
    let agents = &mut data.projects.get_mut(&a.project).expect("admitted project").agents;
    let Some(i) = agents.iter().position(|ag| ag.name == name) else {
        return not_found(name);
    };
    let Some(j) = agents[i].versions.iter().position(|v| v.version == version) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Version '{version}' of agent '{name}' was not found."),
            Some("agent_version"),
        );
    };
    agents[i].versions.remove(j);
    if agents[i].versions.is_empty() {
        agents.remove(i);
    }
    respond(
        StatusCode::OK,
        json!({"object": "agent.version.deleted", "name": name, "version": version, "deleted": true}),
    )
}

/// One page of `items` (`(id, seq, json)`) by `limit`, `order`, `after`, `before`, in the
/// OpenAI list shape: `{"object": "list", "data", "first_id", "last_id", "has_more"}`.
fn page(
    mut items: Vec<(String, u64, Value)>,
    q: &HashMap<String, String>,
    id_alias: impl Fn(&str) -> String,
) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return bad("invalid_value", "'limit' must be an integer from 1 to 100.", "limit"),
    };
    let desc = match q.get("order").map(String::as_str) {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => {
            return bad("invalid_value", format!("Invalid value '{o}' for 'order'; expected 'asc' or 'desc'."), "order")
        }
    };
    items.sort_by_key(|(_, seq, _)| *seq);
    if desc {
        items.reverse();
    }
    let position = |cursor: &str| {
        let cursor = id_alias(cursor);
        items.iter().position(|(id, _, _)| *id == cursor)
    };
    let mut start = 0;
    let mut end = items.len();
    if let Some(after) = q.get("after") {
        start = position(after).map_or(items.len(), |i| i + 1);
    }
    if let Some(before) = q.get("before") {
        end = position(before).unwrap_or(0);
    }
    let window: Vec<(String, u64, Value)> = items.get(start..end.max(start)).unwrap_or_default().to_vec();
    let has_more = window.len() > limit;
    // `before` alone pages backwards: the items just before the cursor.
    let skip =
        if q.contains_key("before") && !q.contains_key("after") { window.len().saturating_sub(limit) } else { 0 };
    let data: Vec<(String, u64, Value)> = window.into_iter().skip(skip).take(limit).collect();
    respond(
        StatusCode::OK,
        json!({
            "object": "list",
            "data": data.iter().map(|(_, _, v)| v.clone()).collect::<Vec<_>>(),
            "first_id": data.first().map(|(id, _, _)| id.clone()),
            "last_id": data.last().map(|(id, _, _)| id.clone()),
            "has_more": has_more,
        }),
    )
}

/// `GET /agents[?kind=&limit=&order=&after=&before=]`.
pub async fn list(State(st): State<Shared>, a: Admitted) -> Response {
    let kind = a.query.get("kind").cloned();
    let mut data = st.foundry.lock();
    let project = data.projects.get_mut(&a.project).expect("admitted project");
    let items = project
        .agents
        .iter_mut()
        .filter(|ag| kind.as_ref().is_none_or(|k| ag.latest().definition["kind"] == json!(k)))
        .map(|ag| {
            if let Some(v) = ag.versions.last_mut() {
                v.observe();
            }
            (ag.name.clone(), ag.seq, ag.to_json())
        })
        .collect();
    page(items, &a.query, str::to_owned)
}

/// `GET /agents/{name}/versions[?limit=&order=&after=&before=]`; cursors are version ids
/// (`name:2`) or bare versions.
pub async fn list_versions(State(st): State<Shared>, a: Admitted, Path(p): Params) -> Response {
    let name = param(&p, "agent").to_owned();
    let mut data = st.foundry.lock();
    let project = data.projects.get_mut(&a.project).expect("admitted project");
    let Some(agent) = project.agents.iter_mut().find(|ag| ag.name == name) else {
        return not_found(&name);
    };
    let items = agent
        .versions
        .iter_mut()
        .map(|v| {
            v.observe();
            (v.id(&name), v.seq, v.to_json(&name))
        })
        .collect();
    let prefix = format!("{name}:");
    page(items, &a.query, move |c| if c.starts_with(&prefix) { c.to_owned() } else { format!("{prefix}{c}") })
}

#[cfg(test)]
use serde_json::Map;

#[cfg(test)]
fn version_for_test(status: &'static str, polls: u32, armed: Option<(String, String)>) -> Version {
    Version {
        version: "1".into(),
        created_at: 0,
        seq: 1,
        description: None,
        metadata: Value::Object(Map::new()),
        definition: json!({"kind": "hosted"}),
        status,
        polls_left: polls,
        ready_at: std::time::Instant::now(),
        armed,
        image: None,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_versions_provision_in_time_however_often_they_are_polled() {
        let mut v = version_for_test("creating", 0, None);
        v.ready_at = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for _ in 0..10 {
            v.observe();
        }
        assert_eq!(v.status, "creating");
        v.ready_at = std::time::Instant::now();
        v.observe();
        assert_eq!(v.status, "active");
    }

    #[test]
    fn hosted_versions_settle_after_their_polls() {
        let mut v = version_for_test("creating", 2, None);
        v.observe();
        v.observe();
        assert_eq!(v.status, "creating");
        v.observe();
        assert_eq!(v.status, "active");

        let mut f = version_for_test("creating", 0, Some(("image_pull_failed".into(), "no".into())));
        f.observe();
        assert_eq!(f.status, "failed");
        assert_eq!(f.to_json("a")["error"]["code"], "image_pull_failed");

        let check = Arc::new(ImageCheck::new());
        let mut pending = version_for_test("creating", 0, None);
        pending.image = Some(check.clone());
        pending.observe();
        assert_eq!(pending.status, "creating", "waits for the registry's answer");
        check.set(Err(("AcrImageNotFound".into(), "gone".into()))).unwrap();
        pending.observe();
        assert_eq!(
            (pending.status, pending.error.as_ref().unwrap()["code"].as_str()),
            ("failed", Some("AcrImageNotFound"))
        );
    }

    #[test]
    fn agent_names_follow_the_sdk_rule() {
        assert!(valid_agent_name("triage") && valid_agent_name("a-1") && valid_agent_name(&"a".repeat(63)));
        for bad in ["", "-a", "a-", "a_b", "a b", &"a".repeat(64)] {
            assert!(!valid_agent_name(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_limits() {
        assert!(check_metadata(&json!({"vibedata.digest": "abc"})).is_ok());
        assert!(check_metadata(&json!({"k": 1})).is_err());
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(check_metadata(&Value::Object(many)).is_err());
        assert!(check_metadata(&json!({"k": "v".repeat(513)})).is_err());
    }
}
