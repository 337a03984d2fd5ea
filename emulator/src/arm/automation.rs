//! Azure Automation: runbooks and runtime environments (`specs/automation.md`) under
//! `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Automation/automationAccounts/{account}`.
//!
//! The account is the one in the inventory (`automationAccount` of `emulator.json`); any other
//! account or group is ARM's 404. Runbook states follow the spec's state machine:
//!
//! - `PUT .../runbooks/{n}` with `draft: {}` (or neither `draft` nor `publishContentLink`)
//!   creates the runbook in state `New`; a PUT of an existing runbook replaces its metadata
//!   and keeps its content and state. `publishContentLink` is refused (400): the service would
//!   have to fetch the uri, which nothing here can.
//! - `PUT .../draft/content` (raw body) stores the draft at once and makes the state `Edit`
//!   (`draft.inEdit: true`); it answers `202` + `Location: .../draft/content/operationResults/{id}`,
//!   which answers `202` for `lro.polls` polls, then `200`.
//! - `POST .../publish` snapshots the draft and answers `202` +
//!   `Location: .../publish/operationResults/{id}`; the operation runs for `publishPolls`
//!   observations (polls of that URL or GETs of the runbook; default `lro.polls`) and at least
//!   `publishDurationMs`, then the snapshot becomes the published content and the state
//!   `Published`. A failure armed through `POST /_emulator/automation/fail-publish` ends it
//!   with an ARM error body instead.
//!
//! Content hashes are SHA-256 of the bytes, uppercase hex, as `contentHash.value` shows them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{groups, no_route, ArmRequest};
use crate::config::{Config, LroSettings, PublishSettings};
use crate::http::{arm_error, json, now_rfc3339};
use crate::state::Shared;

/// Runbooks: the two stable versions of the spec; 2024-10-23 is also `azure-mgmt-automation`
/// 2.0.0's default.
pub const RUNBOOK_API_VERSIONS: &[&str] = &["2024-10-23", "2023-11-01"];
/// Runtime environments exist from 2024-10-23 on (2023-11-01 has none).
pub const RUNTIME_ENVIRONMENT_API_VERSIONS: &[&str] = &["2024-10-23"];

const ACCOUNT_TYPE: &str = "Microsoft.Automation/automationAccounts";
/// As the service spells it in responses (spec example).
const RUNBOOK_TYPE: &str = "Microsoft.Automation/AutomationAccounts/Runbooks";
const RUNTIME_ENVIRONMENT_TYPE: &str =
    "Microsoft.Automation/automationAccounts/runtimeEnvironments";
/// Small on purpose, so clients' paging is exercised by a handful of runbooks.
const PAGE_SIZE: usize = 2;

/// `RunbookCreateOrUpdateProperties.runbookType` in 2024-10-23 (the response enum adds
/// `PowerShell72`, which a create does not accept).
const CREATE_TYPES_2024: &[&str] = &[
    "Script",
    "Graph",
    "PowerShellWorkflow",
    "PowerShell",
    "GraphPowerShellWorkflow",
    "GraphPowerShell",
    "Python2",
    "Python3",
    "Python",
];
/// 2023-11-01: the same list without `Python`.
const CREATE_TYPES_2023: &[&str] = &[
    "Script",
    "Graph",
    "PowerShellWorkflow",
    "PowerShell",
    "GraphPowerShellWorkflow",
    "GraphPowerShell",
    "Python2",
    "Python3",
];

// ---------------------------------------------------------------------------------------------
// State.

/// Script bytes with their SHA-256 (uppercase hex, as `contentHash.value`).
#[derive(Debug, Clone)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Content {
    pub fn new(bytes: &[u8]) -> Content {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let hash = d.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Content {
            bytes: bytes.to_vec(),
            hash,
        }
    }

    fn link(&self) -> Value {
        json!({"contentHash": {"algorithm": "SHA256", "value": self.hash}})
    }
}

#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub runbook_type: String,
    pub runtime_environment: Option<String>,
    pub description: Option<String>,
    pub log_verbose: bool,
    pub log_progress: bool,
    pub log_activity_trace: i64,
    /// The draft's content; after a publish it equals the published content.
    pub draft: Option<Content>,
    pub in_edit: bool,
    pub draft_created: String,
    pub draft_modified: String,
    pub published: Option<Content>,
    pub created: String,
    pub modified: String,
    pub etag: String,
    /// Successful publishes (for "published exactly once" assertions).
    pub publish_count: u32,
    pub publish_failures: u32,
    pub last_published: Option<String>,
    pub last_publish_error: Option<Value>,
}

impl Runbook {
    pub fn state(&self) -> &'static str {
        if self.in_edit {
            "Edit"
        } else if self.published.is_some() {
            "Published"
        } else {
            "New"
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeEnvironment {
    pub name: String,
    pub location: String,
    pub tags: Value,
    pub language: String,
    pub version: String,
    pub default_packages: Map<String, Value>,
    pub description: Option<String>,
    /// Seeded from the config: system-generated in Azure, so it cannot be deleted.
    pub system: bool,
}

/// How an operation ends badly: the status and ARM error its poll answers.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Failure {
    fn response(&self) -> Response {
        arm_error(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST),
            &self.code,
            self.message.clone(),
        )
    }
}

#[derive(Debug, Clone)]
enum OpKind {
    Draft,
    Publish {
        content: Content,
        injected: Option<Failure>,
        /// `Microsoft.Automation/automationAccounts/{a}/runbooks/{n}` for a 404 message.
        resource: String,
        group: String,
    },
}

#[derive(Debug, Clone)]
struct Op {
    kind: OpKind,
    /// Lowercased runbook name.
    runbook: String,
    polls_left: u32,
    not_before: Instant,
    outcome: Option<Result<(), Failure>>,
}

/// One armed publish failure (`POST /_emulator/automation/fail-publish`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailPublish {
    /// A runbook name (case-insensitive) or `*` for any.
    pub runbook: String,
    /// How many publishes still fail (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub struct AutomationState {
    inner: Mutex<AutomationData>,
}

pub struct AutomationData {
    /// Lowercased name → runbook.
    pub runbooks: BTreeMap<String, Runbook>,
    /// Lowercased name → runtime environment.
    pub runtime_environments: BTreeMap<String, RuntimeEnvironment>,
    ops: HashMap<String, Op>,
    pub settings: PublishSettings,
    pub fail_publish: Vec<FailPublish>,
    last_etag: u64,
}

impl AutomationState {
    pub fn new(cfg: &Config) -> AutomationState {
        let runtime_environments = cfg
            .automation
            .runtime_environments
            .iter()
            .map(|seed| {
                (
                    seed.name.to_ascii_lowercase(),
                    RuntimeEnvironment {
                        name: seed.name.clone(),
                        location: cfg.location.clone(),
                        tags: json!({}),
                        language: seed.language.clone(),
                        version: seed.version.clone(),
                        default_packages: seed
                            .default_packages
                            .iter()
                            .map(|(k, v)| (k.clone(), json!(v)))
                            .collect(),
                        description: seed.description.clone(),
                        system: true,
                    },
                )
            })
            .collect();
        AutomationState {
            inner: Mutex::new(AutomationData {
                runbooks: BTreeMap::new(),
                runtime_environments,
                ops: HashMap::new(),
                settings: cfg.automation.publish,
                fail_publish: Vec::new(),
                last_etag: 0,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, AutomationData> {
        self.inner.lock().unwrap()
    }
}

impl AutomationData {
    /// A new etag: .NET ticks, strictly increasing, quoted as the service sends it.
    fn etag(&mut self) -> String {
        let ticks = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 100) as u64
            + 621_355_968_000_000_000;
        self.last_etag = ticks.max(self.last_etag + 1);
        format!("\"{}\"", self.last_etag)
    }

    /// The test view (`GET /_emulator/automation/runbooks`): every runbook with its state,
    /// content hashes and publish counts. Not an observation of running publishes.
    pub fn view(&self) -> Value {
        Value::Array(
            self.runbooks
                .iter()
                .map(|(key, rb)| {
                    let publishing = self
                        .ops
                        .values()
                        .filter(|op| {
                            &op.runbook == key
                                && op.outcome.is_none()
                                && matches!(op.kind, OpKind::Publish { .. })
                        })
                        .count();
                    json!({
                        "name": rb.name,
                        "runbookType": rb.runbook_type,
                        "runtimeEnvironment": rb.runtime_environment,
                        "state": rb.state(),
                        "inEdit": rb.in_edit,
                        "draftContentHash": rb.draft.as_ref().map(|c| c.hash.clone()),
                        "publishedContentHash": rb.published.as_ref().map(|c| c.hash.clone()),
                        "publishCount": rb.publish_count,
                        "publishFailures": rb.publish_failures,
                        "publishing": publishing,
                        "lastPublished": rb.last_published,
                        "lastPublishError": rb.last_publish_error,
                        "created": rb.created,
                        "lastModified": rb.modified,
                    })
                })
                .collect(),
        )
    }

    /// Forgets every runbook and operation (runtime environments stay).
    pub fn clear_runbooks(&mut self) {
        self.runbooks.clear();
        self.ops.clear();
    }

    /// The failure armed for the next publish of `name`, consuming one count.
    fn take_failure(&mut self, name: &str) -> Option<Failure> {
        let idx = self.fail_publish.iter().position(|f| {
            f.count.unwrap_or(1) > 0 && (f.runbook == "*" || f.runbook.eq_ignore_ascii_case(name))
        })?;
        let spec = &mut self.fail_publish[idx];
        let left = spec.count.unwrap_or(1) - 1;
        spec.count = Some(left);
        let failure = Failure {
            status: spec.status.unwrap_or(400),
            code: spec.code.clone().unwrap_or_else(|| "BadRequest".to_owned()),
            message: spec.message.clone().unwrap_or_else(|| {
                format!("The runbook '{name}' could not be published: the publish failed (armed through the emulator's control API).")
            }),
        };
        if left == 0 {
            self.fail_publish.remove(idx);
        }
        Some(failure)
    }

    /// One observation of operation `id`; returns its outcome (`None` while running).
    fn observe(&mut self, id: &str) -> Option<Option<Result<(), Failure>>> {
        let op = self.ops.get_mut(id)?;
        if op.outcome.is_none() {
            if op.polls_left > 0 {
                op.polls_left -= 1;
            } else if Instant::now() >= op.not_before {
                let (kind, key) = (op.kind.clone(), op.runbook.clone());
                let outcome = match kind {
                    OpKind::Draft => Ok(()),
                    OpKind::Publish {
                        content,
                        injected,
                        resource,
                        group,
                    } => self.finish_publish(&key, content, injected, &resource, &group),
                };
                self.ops.get_mut(id)?.outcome = Some(outcome);
            }
        }
        self.ops.get(id).map(|op| op.outcome.clone())
    }

    fn finish_publish(
        &mut self,
        key: &str,
        content: Content,
        injected: Option<Failure>,
        resource: &str,
        group: &str,
    ) -> Result<(), Failure> {
        let etag = self.etag();
        let Some(rb) = self.runbooks.get_mut(key) else {
            return Err(Failure {
                status: 404,
                code: "ResourceNotFound".into(),
                message: format!("The Resource '{resource}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
            });
        };
        if let Some(f) = injected {
            rb.publish_failures += 1;
            rb.last_publish_error = Some(json!({"code": f.code, "message": f.message}));
            return Err(f);
        }
        let now = now_rfc3339();
        // A draft replaced while the publish ran stays in edit.
        if rb.draft.as_ref().is_none_or(|d| d.hash == content.hash) {
            rb.in_edit = false;
        }
        rb.published = Some(content);
        rb.publish_count += 1;
        rb.last_published = Some(now.clone());
        rb.last_publish_error = None;
        rb.modified = now;
        rb.etag = etag;
        Ok(())
    }

    /// GETs of a runbook count as observations of its running publishes (as GETs of a
    /// deployment do), so a client that only watches `state` also sees the publish end.
    fn observe_runbook(&mut self, key: &str) {
        let ids: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, op)| {
                op.runbook == key
                    && op.outcome.is_none()
                    && matches!(op.kind, OpKind::Publish { .. })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.observe(&id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    ListRunbooks,
    Runbook,
    Draft,
    DraftContent,
    DraftOperation,
    UndoEdit,
    Publish,
    PublishOperation,
    Content,
    ListRuntimeEnvironments,
    RuntimeEnvironment,
}

/// What every handler needs besides the state.
struct Ctx<'a> {
    cfg: &'a Config,
    req: &'a ArmRequest,
    lro: LroSettings,
}

impl Ctx<'_> {
    /// Whether the request's api-version knows runtime environments (2023-11-01 does not).
    fn has_runtime_environments(&self) -> bool {
        self.req.api_version() != "2023-11-01"
    }

    fn account_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{ACCOUNT_TYPE}/{}",
            self.cfg.subscription_id, self.cfg.resource_group, self.cfg.automation_account
        )
    }

    /// The name in the path (runbook or runtime environment).
    fn name(&self) -> &str {
        &self.req.segs[9]
    }

    fn not_found(&self, child: &str) -> Response {
        not_found_resource(
            &format!(
                "{ACCOUNT_TYPE}/{}/{child}/{}",
                self.cfg.automation_account,
                self.name()
            ),
            &self.req.segs[3],
        )
    }

    /// `https://host/subscriptions/.../runbooks/{n}/<tail>/operationResults/{id}?api-version=..`,
    /// with the path's own spelling.
    fn operation_url(&self, tail: &str, id: &str) -> String {
        format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Automation/automationAccounts/{}/runbooks/{}/{tail}/operationResults/{id}?api-version={}",
            self.req.origin,
            self.req.segs[1],
            self.req.segs[3],
            self.req.segs[7],
            self.req.segs[9],
            self.req.api_version()
        )
    }

    fn runbook_json(&self, rb: &Runbook) -> Value {
        let mut draft = json!({
            "inEdit": rb.in_edit,
            "creationTime": rb.draft_created,
            "lastModifiedTime": rb.draft_modified,
            "parameters": {},
            "outputTypes": [],
        });
        if let Some(d) = &rb.draft {
            draft["draftContentLink"] = d.link();
        }
        let mut props = json!({
            "runbookType": rb.runbook_type,
            "state": rb.state(),
            "logVerbose": rb.log_verbose,
            "logProgress": rb.log_progress,
            "logActivityTrace": rb.log_activity_trace,
            "jobCount": 0,
            "parameters": {},
            "outputTypes": [],
            "draft": draft,
            "provisioningState": "Succeeded",
            "lastModifiedBy": "",
            "creationTime": rb.created,
            "lastModifiedTime": rb.modified,
        });
        if let Some(p) = &rb.published {
            props["publishContentLink"] = p.link();
        }
        if let Some(d) = &rb.description {
            props["description"] = json!(d);
        }
        if self.has_runtime_environments() {
            if let Some(env) = &rb.runtime_environment {
                props["runtimeEnvironment"] = json!(env);
            }
        }
        json!({
            "id": format!("{}/runbooks/{}", self.account_id(), rb.name),
            "name": rb.name,
            "type": RUNBOOK_TYPE,
            "location": rb.location,
            "tags": rb.tags,
            "etag": rb.etag,
            "properties": props,
        })
    }

    fn runtime_environment_json(&self, env: &RuntimeEnvironment) -> Value {
        let mut props = json!({
            "runtime": {"language": env.language, "version": env.version},
            "defaultPackages": env.default_packages,
        });
        if let Some(d) = &env.description {
            props["description"] = json!(d);
        }
        json!({
            "id": format!("{}/runtimeEnvironments/{}", self.account_id(), env.name),
            "name": env.name,
            "type": RUNTIME_ENVIRONMENT_TYPE,
            "location": env.location,
            "tags": env.tags,
            "properties": props,
        })
    }

    /// One page of `items` with an absolute `nextLink` carrying `$skiptoken` (an offset).
    fn page(&self, items: Vec<Value>) -> Response {
        let skip: usize = self
            .req
            .query
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let end = (skip + PAGE_SIZE).min(items.len());
        let page = items.get(skip.min(end)..end).unwrap_or_default().to_vec();
        let mut body = json!({"value": page});
        if end < items.len() {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            next.append_pair("api-version", self.req.api_version());
            next.append_pair("$skiptoken", &end.to_string());
            body["nextLink"] = json!(format!(
                "{}/{}?{}",
                self.req.origin,
                self.req.segs.join("/"),
                next.finish()
            ));
        }
        json(StatusCode::OK, body)
    }
}

fn not_found_resource(resource: &str, group: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{resource}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// Automation's validation errors: 400 `BadRequest`.
fn bad_request(message: impl Into<String>) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn accepted(location: &str, retry_after: u32) -> Response {
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

fn script(content: &Content) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/powershell")],
        content.bytes.clone(),
    )
        .into_response()
}

/// `^[a-zA-Z][a-zA-Z-_0-9]*$`, at most 63 characters.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The JSON object of a request body.
fn body_object(req: &ArmRequest) -> Result<Map<String, Value>, Response> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("The request body is required."));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("The request body must be a JSON object.")),
        Err(e) => Err(arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )),
    }
}

fn opt_str(v: &Value, key: &str) -> Result<Option<String>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(format!(
            "The property '{key}' must be a string."
        ))),
    }
}

fn opt_bool(v: &Value, key: &str) -> Result<Option<bool>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad_request(format!(
            "The property '{key}' must be a boolean."
        ))),
    }
}

fn opt_int(v: &Value, key: &str) -> Result<Option<i64>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(bad_request(format!(
            "The property '{key}' must be an integer."
        ))),
    }
}

fn opt_tags(body: &Map<String, Value>) -> Result<Option<Value>, Response> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(t)) if t.values().all(Value::is_string) => {
            Ok(Some(Value::Object(t.clone())))
        }
        Some(_) => Err(bad_request(
            "The property 'tags' must be an object of strings.",
        )),
    }
}

/// The language a runbook type runs in, when it can use a runtime environment at all.
fn type_language(runbook_type: &str) -> Option<&'static str> {
    match runbook_type {
        "PowerShell" | "PowerShell72" => Some("PowerShell"),
        "Python" | "Python2" | "Python3" => Some("Python"),
        _ => None,
    }
}

/// Resolves a runbook's `runtimeEnvironment` (case-insensitively; returns the stored name) and
/// checks it suits the runbook type.
fn resolve_runtime(
    data: &AutomationData,
    cfg: &Config,
    env: &str,
    runbook_type: &str,
) -> Result<String, Response> {
    let Some(found) = data.runtime_environments.get(&env.to_ascii_lowercase()) else {
        return Err(bad_request(format!(
            "The runtime environment '{env}' was not found in automation account '{}'.",
            cfg.automation_account
        )));
    };
    match type_language(runbook_type) {
        None => Err(bad_request(format!(
            "Runbook type '{runbook_type}' cannot be used with a runtime environment."
        ))),
        Some(lang) if !lang.eq_ignore_ascii_case(&found.language) => Err(bad_request(format!(
            "Runbook type '{runbook_type}' does not match runtime environment '{}' (language {} {}).",
            found.name, found.language, found.version
        ))),
        Some(_) => Ok(found.name.clone()),
    }
}

/// Every request under `.../automationAccounts/{account}/...`.
pub fn handle(st: &Shared, req: &ArmRequest) -> Response {
    let rest: Vec<&str> = req.lower[8..].iter().map(String::as_str).collect();
    let m = &req.method;
    let is = |allowed: &[Method]| allowed.contains(m);
    let route = match rest.as_slice() {
        ["runbooks"] if is(&[Method::GET]) => Route::ListRunbooks,
        ["runbooks", _] if is(&[Method::GET, Method::PUT, Method::PATCH, Method::DELETE]) => {
            Route::Runbook
        }
        ["runbooks", _, "draft"] if is(&[Method::GET]) => Route::Draft,
        ["runbooks", _, "draft", "content"] if is(&[Method::GET, Method::PUT]) => {
            Route::DraftContent
        }
        ["runbooks", _, "draft", "content", "operationresults", _] if is(&[Method::GET]) => {
            Route::DraftOperation
        }
        ["runbooks", _, "draft", "undoedit"] if is(&[Method::POST]) => Route::UndoEdit,
        ["runbooks", _, "publish"] if is(&[Method::POST]) => Route::Publish,
        ["runbooks", _, "publish", "operationresults", _] if is(&[Method::GET]) => {
            Route::PublishOperation
        }
        ["runbooks", _, "content"] if is(&[Method::GET]) => Route::Content,
        ["runtimeenvironments"] if is(&[Method::GET]) => Route::ListRuntimeEnvironments,
        ["runtimeenvironments", _]
            if is(&[Method::GET, Method::PUT, Method::PATCH, Method::DELETE]) =>
        {
            Route::RuntimeEnvironment
        }
        _ => return no_route(req),
    };
    let versions = match route {
        Route::ListRuntimeEnvironments | Route::RuntimeEnvironment => {
            RUNTIME_ENVIRONMENT_API_VERSIONS
        }
        _ => RUNBOOK_API_VERSIONS,
    };
    if let Err(r) = req.require_api_version(versions) {
        return r;
    }
    let cfg = &st.config;
    let (rg, account) = (&req.segs[3], &req.segs[7]);
    let lro = {
        let arm = st.arm.lock();
        if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
            return groups::not_found(rg);
        }
        arm.lro
    };
    if !rg.eq_ignore_ascii_case(&cfg.resource_group)
        || !account.eq_ignore_ascii_case(&cfg.automation_account)
    {
        return not_found_resource(&format!("{ACCOUNT_TYPE}/{account}"), rg);
    }
    let ctx = Ctx { cfg, req, lro };
    let mut data = st.automation.lock();
    let result = match route {
        Route::ListRunbooks => Ok(list_runbooks(&ctx, &data)),
        Route::Runbook => match *m {
            Method::GET => get_runbook(&ctx, &mut data),
            Method::PUT => put_runbook(&ctx, &mut data),
            Method::PATCH => patch_runbook(&ctx, &mut data),
            _ => Ok(delete_runbook(&ctx, &mut data)),
        },
        Route::Draft => get_draft(&ctx, &data),
        Route::DraftContent if *m == Method::GET => get_draft_content(&ctx, &data),
        Route::DraftContent => put_draft_content(&ctx, &mut data),
        Route::DraftOperation => Ok(poll(&ctx, &mut data, "draft/content")),
        Route::UndoEdit => undo_edit(&ctx, &mut data),
        Route::Publish => publish(&ctx, &mut data),
        Route::PublishOperation => Ok(poll(&ctx, &mut data, "publish")),
        Route::Content => get_content(&ctx, &data),
        Route::ListRuntimeEnvironments => Ok(list_runtime_environments(&ctx, &data)),
        Route::RuntimeEnvironment => match *m {
            Method::GET => get_runtime_environment(&ctx, &data),
            Method::PUT => put_runtime_environment(&ctx, &mut data),
            Method::PATCH => patch_runtime_environment(&ctx, &mut data),
            _ => delete_runtime_environment(&ctx, &mut data),
        },
    };
    result.unwrap_or_else(|r| r)
}

type Answer = Result<Response, Response>;

fn runbook<'d>(ctx: &Ctx, data: &'d AutomationData) -> Result<&'d Runbook, Response> {
    data.runbooks
        .get(&ctx.name().to_ascii_lowercase())
        .ok_or_else(|| ctx.not_found("runbooks"))
}

fn runbook_mut<'d>(ctx: &Ctx, data: &'d mut AutomationData) -> Result<&'d mut Runbook, Response> {
    data.runbooks
        .get_mut(&ctx.name().to_ascii_lowercase())
        .ok_or_else(|| ctx.not_found("runbooks"))
}

fn list_runbooks(ctx: &Ctx, data: &AutomationData) -> Response {
    let items = data
        .runbooks
        .values()
        .map(|rb| ctx.runbook_json(rb))
        .collect();
    ctx.page(items)
}

fn get_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    data.observe_runbook(&ctx.name().to_ascii_lowercase());
    Ok(json(StatusCode::OK, ctx.runbook_json(runbook(ctx, data)?)))
}

/// `PUT .../runbooks/{n}`: `RunbookCreateOrUpdateParameters`, 201 created / 200 replaced.
fn put_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let name = ctx.name();
    if !valid_name(name) {
        return Err(bad_request(format!(
            "The runbook name '{name}' is invalid: it must match '^[a-zA-Z][a-zA-Z-_0-9]*$' and be at most 63 characters long."
        )));
    }
    let body = body_object(ctx.req)?;
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(bad_request(
            "The 'properties' of the runbook are required (RunbookCreateOrUpdateParameters).",
        ));
    };
    let Some(requested_type) = opt_str(props, "runbookType")? else {
        return Err(bad_request(
            "The property 'properties.runbookType' is required.",
        ));
    };
    let allowed = if ctx.has_runtime_environments() {
        CREATE_TYPES_2024
    } else {
        CREATE_TYPES_2023
    };
    let Some(runbook_type) = allowed
        .iter()
        .find(|t| t.eq_ignore_ascii_case(&requested_type))
    else {
        return Err(bad_request(format!(
            "The runbook type '{requested_type}' is not supported in api-version {}. Supported types: {}.",
            ctx.req.api_version(),
            allowed.join(", ")
        )));
    };
    let has_draft = props.get("draft").is_some_and(|d| !d.is_null());
    let has_link = props
        .get("publishContentLink")
        .is_some_and(|d| !d.is_null());
    if has_draft && has_link {
        return Err(bad_request(
            "Provide either content link for a published runbook or draft, not both.",
        ));
    }
    if has_link {
        return Err(bad_request(
            "The emulator cannot fetch 'publishContentLink.uri' (Azure Automation would download it from a public or SAS URL). \
             Create the runbook with 'draft': {}, replace its draft content (PUT .../draft/content) and publish it (POST .../publish).",
        ));
    }
    if props
        .get("draft")
        .is_some_and(|d| !d.is_null() && !d.is_object())
    {
        return Err(bad_request(
            "The property 'properties.draft' must be an object.",
        ));
    }
    let runtime_environment = if ctx.has_runtime_environments() {
        match opt_str(props, "runtimeEnvironment")? {
            Some(env) => Some(resolve_runtime(data, ctx.cfg, &env, runbook_type)?),
            None => None,
        }
    } else {
        // 2023-11-01 has no such property; the service ignores what it does not know.
        None
    };
    let description = opt_str(props, "description")?;
    let log_verbose = opt_bool(props, "logVerbose")?.unwrap_or(false);
    let log_progress = opt_bool(props, "logProgress")?.unwrap_or(false);
    let log_activity_trace = opt_int(props, "logActivityTrace")?.unwrap_or(0);
    let tags = opt_tags(&body)?.unwrap_or_else(|| json!({}));
    let location = opt_str(&Value::Object(body.clone()), "location")?
        .unwrap_or_else(|| ctx.cfg.location.clone());
    let etag = data.etag();
    let now = now_rfc3339();
    let key = name.to_ascii_lowercase();
    let created = !data.runbooks.contains_key(&key);
    let rb = data.runbooks.entry(key).or_insert_with(|| Runbook {
        name: name.to_owned(),
        location: location.clone(),
        tags: json!({}),
        runbook_type: runbook_type.to_string(),
        runtime_environment: None,
        description: None,
        log_verbose: false,
        log_progress: false,
        log_activity_trace: 0,
        draft: None,
        in_edit: false,
        draft_created: now.clone(),
        draft_modified: now.clone(),
        published: None,
        created: now.clone(),
        modified: now.clone(),
        etag: etag.clone(),
        publish_count: 0,
        publish_failures: 0,
        last_published: None,
        last_publish_error: None,
    });
    // A replace keeps content and state; the metadata is the new request's.
    rb.location = location;
    rb.tags = tags;
    rb.runbook_type = runbook_type.to_string();
    if ctx.has_runtime_environments() {
        rb.runtime_environment = runtime_environment;
    }
    rb.description = description;
    rb.log_verbose = log_verbose;
    rb.log_progress = log_progress;
    rb.log_activity_trace = log_activity_trace;
    rb.modified = now;
    rb.etag = etag;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, ctx.runbook_json(rb)))
}

/// `PATCH .../runbooks/{n}`: `RunbookUpdateParameters` (description, log flags, tags, and in
/// 2024-10-23 the runtime environment, as the runtime-environment doc re-links runbooks).
fn patch_runbook(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runbook(ctx, data)?;
    let body = body_object(ctx.req)?;
    let empty = json!({});
    let props = match body.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(bad_request("The property 'properties' must be an object.")),
    };
    let runtime_environment = match ctx
        .has_runtime_environments()
        .then(|| opt_str(props, "runtimeEnvironment"))
        .transpose()?
        .flatten()
    {
        Some(env) => {
            let rb_type = runbook(ctx, data)?.runbook_type.clone();
            Some(resolve_runtime(data, ctx.cfg, &env, &rb_type)?)
        }
        None => None,
    };
    let description = opt_str(props, "description")?;
    let log_verbose = opt_bool(props, "logVerbose")?;
    let log_progress = opt_bool(props, "logProgress")?;
    let log_activity_trace = opt_int(props, "logActivityTrace")?;
    let tags = opt_tags(&body)?;
    let etag = data.etag();
    let rb = runbook_mut(ctx, data)?;
    if let Some(env) = runtime_environment {
        rb.runtime_environment = Some(env);
    }
    if let Some(d) = description {
        rb.description = Some(d);
    }
    if let Some(v) = log_verbose {
        rb.log_verbose = v;
    }
    if let Some(v) = log_progress {
        rb.log_progress = v;
    }
    if let Some(v) = log_activity_trace {
        rb.log_activity_trace = v;
    }
    if let Some(t) = tags {
        rb.tags = t;
    }
    rb.modified = now_rfc3339();
    rb.etag = etag;
    Ok(json(StatusCode::OK, ctx.runbook_json(rb)))
}

fn delete_runbook(ctx: &Ctx, data: &mut AutomationData) -> Response {
    match data.runbooks.remove(&ctx.name().to_ascii_lowercase()) {
        Some(_) => StatusCode::OK.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `GET .../runbooks/{n}/draft`: `RunbookDraft`.
fn get_draft(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    let draft = &ctx.runbook_json(rb)["properties"]["draft"];
    Ok(json(StatusCode::OK, draft.clone()))
}

fn get_draft_content(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    match &rb.draft {
        Some(c) => Ok(script(c)),
        None => Err(arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The runbook '{}' has no draft content.", rb.name),
        )),
    }
}

/// `PUT .../draft/content` with the script as the raw body.
fn put_draft_content(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runbook(ctx, data)?;
    if let Some(ct) = &ctx.req.content_type {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !mime.starts_with("text/") && mime != "application/octet-stream" {
            return Err(arm_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "The content type '{ct}' is not supported: send the script as the raw body (text/powershell, text/plain or application/octet-stream)."
                ),
            ));
        }
    }
    if ctx.req.body.is_empty() {
        return Err(bad_request("The runbook draft content is empty."));
    }
    let content = Content::new(&ctx.req.body);
    let etag = data.etag();
    let now = now_rfc3339();
    let rb = runbook_mut(ctx, data)?;
    rb.draft = Some(content);
    rb.in_edit = true;
    rb.draft_modified = now.clone();
    rb.modified = now;
    rb.etag = etag;
    let key = rb.name.to_ascii_lowercase();
    let id = uuid::Uuid::new_v4().to_string();
    data.ops.insert(
        id.clone(),
        Op {
            kind: OpKind::Draft,
            runbook: key,
            polls_left: ctx.lro.polls,
            not_before: Instant::now(),
            outcome: None,
        },
    );
    Ok(accepted(
        &ctx.operation_url("draft/content", &id),
        ctx.lro.retry_after,
    ))
}

/// `POST .../draft/undoEdit`: the draft goes back to the published content.
fn undo_edit(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let etag = data.etag();
    let rb = runbook_mut(ctx, data)?;
    let Some(published) = rb.published.clone() else {
        return Err(bad_request(format!(
            "The runbook '{}' has never been published: there is no published version to return to.",
            rb.name
        )));
    };
    rb.draft = Some(published);
    rb.in_edit = false;
    rb.draft_modified = now_rfc3339();
    rb.etag = etag;
    Ok(json(
        StatusCode::OK,
        json!({"statusCode": "OK", "requestId": uuid::Uuid::new_v4().to_string()}),
    ))
}

/// `POST .../publish` (no body): 202 + Location.
fn publish(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    let Some(content) = rb.draft.clone() else {
        return Err(bad_request(format!(
            "The runbook '{}' has no draft content to publish: replace its draft content (PUT .../draft/content) first.",
            rb.name
        )));
    };
    let (name, key) = (rb.name.clone(), rb.name.to_ascii_lowercase());
    let injected = data.take_failure(&name);
    let polls = data.settings.publish_polls.unwrap_or(ctx.lro.polls);
    let duration = Duration::from_millis(data.settings.publish_duration_ms);
    let id = uuid::Uuid::new_v4().to_string();
    data.ops.insert(
        id.clone(),
        Op {
            kind: OpKind::Publish {
                content,
                injected,
                resource: format!(
                    "{ACCOUNT_TYPE}/{}/runbooks/{name}",
                    ctx.cfg.automation_account
                ),
                group: ctx.req.segs[3].clone(),
            },
            runbook: key,
            polls_left: polls,
            not_before: Instant::now() + duration,
            outcome: None,
        },
    );
    Ok(accepted(
        &ctx.operation_url("publish", &id),
        ctx.lro.retry_after,
    ))
}

/// The `Location` of a draft replace or a publish: 202 while running, then 200 (no body), or
/// the failure's status with an ARM error body.
fn poll(ctx: &Ctx, data: &mut AutomationData, tail: &str) -> Response {
    let id = ctx.req.lower.last().cloned().unwrap_or_default();
    let sent_id = ctx.req.segs.last().cloned().unwrap_or_default();
    let want_publish = tail == "publish";
    let known = data.ops.get(&id).is_some_and(|op| {
        op.runbook == ctx.req.lower[9] && matches!(op.kind, OpKind::Publish { .. }) == want_publish
    });
    if !known {
        return arm_error(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("The operation '{sent_id}' could not be found."),
        );
    }
    match data.observe(&id) {
        Some(None) | None => accepted(&ctx.operation_url(tail, &sent_id), ctx.lro.retry_after),
        Some(Some(Ok(()))) => StatusCode::OK.into_response(),
        Some(Some(Err(f))) => f.response(),
    }
}

/// `GET .../runbooks/{n}/content`: the published script.
fn get_content(ctx: &Ctx, data: &AutomationData) -> Answer {
    let rb = runbook(ctx, data)?;
    match &rb.published {
        Some(c) => Ok(script(c)),
        None => Err(arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "The runbook '{}' has not been published: it has no published content.",
                rb.name
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime environments.

fn list_runtime_environments(ctx: &Ctx, data: &AutomationData) -> Response {
    let items = data
        .runtime_environments
        .values()
        .map(|e| ctx.runtime_environment_json(e))
        .collect();
    ctx.page(items)
}

fn runtime_environment<'d>(
    ctx: &Ctx,
    data: &'d AutomationData,
) -> Result<&'d RuntimeEnvironment, Response> {
    data.runtime_environments
        .get(&ctx.name().to_ascii_lowercase())
        .ok_or_else(|| ctx.not_found("runtimeEnvironments"))
}

fn get_runtime_environment(ctx: &Ctx, data: &AutomationData) -> Answer {
    Ok(json(
        StatusCode::OK,
        ctx.runtime_environment_json(runtime_environment(ctx, data)?),
    ))
}

fn packages(props: &Value) -> Result<Option<Map<String, Value>>, Response> {
    match props.get("defaultPackages") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(p)) if p.values().all(Value::is_string) => Ok(Some(p.clone())),
        Some(_) => Err(bad_request(
            "The property 'properties.defaultPackages' must be an object of package name to version.",
        )),
    }
}

/// `PUT .../runtimeEnvironments/{n}`: 201 created / 200 updated; language and version are
/// immutable.
fn put_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let name = ctx.name();
    let key = name.to_ascii_lowercase();
    let existing = data.runtime_environments.get(&key).cloned();
    // Existing ones (the seeded, system-generated names contain dots) are not re-checked.
    if existing.is_none() && !valid_name(name) {
        return Err(bad_request(format!(
            "The runtime environment name '{name}' is invalid: it must match '^[a-zA-Z][a-zA-Z-_0-9]*$' and be at most 63 characters long."
        )));
    }
    let body = body_object(ctx.req)?;
    let Some(props) = body.get("properties").filter(|p| p.is_object()) else {
        return Err(bad_request(
            "The 'properties' of the runtime environment are required.",
        ));
    };
    let runtime = match props.get("runtime") {
        None | Some(Value::Null) => None,
        Some(r @ Value::Object(_)) => Some((opt_str(r, "language")?, opt_str(r, "version")?)),
        Some(_) => {
            return Err(bad_request(
                "The property 'properties.runtime' must be an object.",
            ))
        }
    };
    let (language, version) = match (&existing, runtime) {
        (None, Some((Some(l), Some(v)))) => {
            let Some(language) = ["PowerShell", "Python"]
                .iter()
                .find(|x| x.eq_ignore_ascii_case(&l))
            else {
                return Err(bad_request(format!(
                    "The runtime language '{l}' is not supported: use PowerShell or Python."
                )));
            };
            if v.is_empty() || !v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                return Err(bad_request(format!("The runtime version '{v}' is invalid.")));
            }
            (language.to_string(), v)
        }
        (None, _) => {
            return Err(bad_request(
                "The properties 'properties.runtime.language' and 'properties.runtime.version' are required.",
            ))
        }
        (Some(e), runtime) => {
            if let Some((l, v)) = runtime {
                let changed = l.is_some_and(|l| !l.eq_ignore_ascii_case(&e.language))
                    || v.is_some_and(|v| v != e.version);
                if changed {
                    return Err(bad_request(format!(
                        "The runtime language and version of runtime environment '{}' cannot be changed (it is {} {}).",
                        e.name, e.language, e.version
                    )));
                }
            }
            (e.language.clone(), e.version.clone())
        }
    };
    let default_packages = packages(props)?.unwrap_or_default();
    let description = opt_str(props, "description")?;
    let tags = opt_tags(&body)?.unwrap_or_else(|| json!({}));
    let location = opt_str(&Value::Object(body.clone()), "location")?
        .unwrap_or_else(|| ctx.cfg.location.clone());
    let env = RuntimeEnvironment {
        name: existing
            .as_ref()
            .map_or(name.to_owned(), |e| e.name.clone()),
        location,
        tags,
        language,
        version,
        default_packages,
        description,
        system: existing.as_ref().is_some_and(|e| e.system),
    };
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = ctx.runtime_environment_json(&env);
    data.runtime_environments.insert(key, env);
    Ok(json(status, body))
}

/// `PATCH .../runtimeEnvironments/{n}`: `defaultPackages`, `description`, `tags`.
fn patch_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    runtime_environment(ctx, data)?;
    let body = body_object(ctx.req)?;
    let empty = json!({});
    let props = body
        .get("properties")
        .filter(|p| p.is_object())
        .unwrap_or(&empty);
    if props.get("runtime").is_some_and(|r| !r.is_null()) {
        return Err(bad_request(
            "The runtime language and version of a runtime environment cannot be changed.",
        ));
    }
    let default_packages = packages(props)?;
    let description = opt_str(props, "description")?;
    let tags = opt_tags(&body)?;
    let env = data
        .runtime_environments
        .get_mut(&ctx.name().to_ascii_lowercase())
        .ok_or_else(|| ctx.not_found("runtimeEnvironments"))?;
    if let Some(p) = default_packages {
        env.default_packages = p;
    }
    if let Some(d) = description {
        env.description = Some(d);
    }
    if let Some(t) = tags {
        env.tags = t;
    }
    let body = ctx.runtime_environment_json(env);
    Ok(json(StatusCode::OK, body))
}

fn delete_runtime_environment(ctx: &Ctx, data: &mut AutomationData) -> Answer {
    let key = ctx.name().to_ascii_lowercase();
    match data.runtime_environments.get(&key) {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(e) if e.system => Err(bad_request(format!(
            "The runtime environment '{}' is system-generated and cannot be deleted.",
            e.name
        ))),
        Some(_) => {
            data.runtime_environments.remove(&key);
            Ok(StatusCode::OK.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hashes() {
        assert!(valid_name("Rotate-Keys"));
        assert!(valid_name("a_1-b"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("bad name"));
        assert!(!valid_name("PowerShell-7.4"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(64)));
        assert_eq!(
            Content::new(b"abc").hash,
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn failures_are_consumed_per_runbook() {
        let cfg_json = r#"{"listen":{"arm":1,"vault":2,"identity":3,"acrAuth":4},
            "tls":{"cert":"c","key":"k"},"tokenSigning":{"cert":"c","key":"k"},
            "tenantId":"t","subscriptionId":"s","resourceGroup":"rg","location":"eastus",
            "identity":{"clientId":"c","principalId":"p","resourceId":"/x/y","header":"h"},
            "customerRegistry":{"name":"r","loginServer":"l","service":"s","issuer":"i"},
            "automation":{"runtimeEnvironments":[{"name":"PowerShell-7.4","language":"PowerShell","version":"7.4"}],
                          "publishPolls":3}}"#;
        let cfg: Config = serde_json::from_str(cfg_json).unwrap();
        assert_eq!(cfg.automation_account, "aa-vibedata-local");
        let st = AutomationState::new(&cfg);
        let mut data = st.lock();
        assert_eq!(data.settings.publish_polls, Some(3));
        assert!(data.runtime_environments.contains_key("powershell-7.4"));
        data.fail_publish.push(FailPublish {
            runbook: "Rotate-Keys".into(),
            count: Some(2),
            status: None,
            code: None,
            message: None,
        });
        assert!(data.take_failure("other").is_none());
        let f = data.take_failure("rotate-keys").unwrap();
        assert_eq!((f.status, f.code.as_str()), (400, "BadRequest"));
        assert!(data.take_failure("Rotate-Keys").is_some());
        assert!(data.take_failure("Rotate-Keys").is_none());
        assert!(data.fail_publish.is_empty());
    }
}
