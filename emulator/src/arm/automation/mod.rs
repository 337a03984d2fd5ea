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

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{envelope, groups, ArmRequest};
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
const RUNTIME_ENVIRONMENT_TYPE: &str = "Microsoft.Automation/automationAccounts/runtimeEnvironments";
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

mod runbooks;
mod runtime_envs;
mod state;

use runbooks::*;
use runtime_envs::*;
pub use state::*;

// ---------------------------------------------------------------------------------------------
// Requests.

/// Which Automation operation a provider-table row is (`crate::providers`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Route {
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
            &format!("{ACCOUNT_TYPE}/{}/{child}/{}", self.cfg.automation_account, self.name()),
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
        envelope::resource(format!("{}/runbooks/{}", self.account_id(), rb.name), &rb.name, RUNBOOK_TYPE)
            .location(&rb.location)
            .tags(&rb.tags)
            .etag(Some(&rb.etag))
            .properties(props)
            .build()
    }

    fn runtime_environment_json(&self, env: &RuntimeEnvironment) -> Value {
        let mut props = json!({
            "runtime": {"language": env.language, "version": env.version},
            "defaultPackages": env.default_packages,
        });
        if let Some(d) = &env.description {
            props["description"] = json!(d);
        }
        envelope::resource(
            format!("{}/runtimeEnvironments/{}", self.account_id(), env.name),
            &env.name,
            RUNTIME_ENVIRONMENT_TYPE,
        )
        .location(&env.location)
        .tags(&env.tags)
        .properties(props)
        .build()
    }

    /// One page of `items` with an absolute `nextLink` carrying `$skiptoken` (an offset).
    fn page(&self, items: Vec<Value>) -> Response {
        let skip: usize = self.req.query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
        let end = (skip + PAGE_SIZE).min(items.len());
        let page = items.get(skip.min(end)..end).unwrap_or_default().to_vec();
        let mut body = json!({"value": page});
        if end < items.len() {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            next.append_pair("api-version", self.req.api_version());
            next.append_pair("$skiptoken", &end.to_string());
            body["nextLink"] = json!(format!("{}/{}?{}", self.req.origin, self.req.segs.join("/"), next.finish()));
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

fn script(content: &Content) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/powershell")], content.bytes.clone()).into_response()
}

/// `^[a-zA-Z][a-zA-Z-_0-9]*$`, at most 63 characters.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
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
        Some(_) => Err(bad_request(format!("The property '{key}' must be a string."))),
    }
}

fn opt_bool(v: &Value, key: &str) -> Result<Option<bool>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad_request(format!("The property '{key}' must be a boolean."))),
    }
}

fn opt_int(v: &Value, key: &str) -> Result<Option<i64>, Response> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) if n.is_i64() => Ok(n.as_i64()),
        Some(_) => Err(bad_request(format!("The property '{key}' must be an integer."))),
    }
}

fn opt_tags(body: &Map<String, Value>) -> Result<Option<Value>, Response> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(t)) if t.values().all(Value::is_string) => Ok(Some(Value::Object(t.clone()))),
        Some(_) => Err(bad_request("The property 'tags' must be an object of strings.")),
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
fn resolve_runtime(data: &AutomationData, cfg: &Config, env: &str, runbook_type: &str) -> Result<String, Response> {
    let Some(found) = data.runtime_environments.get(&env.to_ascii_lowercase()) else {
        return Err(bad_request(format!(
            "The runtime environment '{env}' was not found in automation account '{}'.",
            cfg.automation_account
        )));
    };
    match type_language(runbook_type) {
        None => Err(bad_request(format!("Runbook type '{runbook_type}' cannot be used with a runtime environment."))),
        Some(lang) if !lang.eq_ignore_ascii_case(&found.language) => Err(bad_request(format!(
            "Runbook type '{runbook_type}' does not match runtime environment '{}' (language {} {}).",
            found.name, found.language, found.version
        ))),
        Some(_) => Ok(found.name.clone()),
    }
}

/// Every Automation operation, once the provider table matched its row (route, methods,
/// api-version): resource group → account → the operation.
pub fn handle(st: &Shared, req: &ArmRequest, route: Route) -> Response {
    let m = &req.method;
    let cfg = &st.config;
    let (rg, account) = (&req.segs[3], &req.segs[7]);
    let lro = {
        let arm = st.arm.lock();
        if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
            return groups::not_found(rg);
        }
        arm.lro
    };
    if !rg.eq_ignore_ascii_case(&cfg.resource_group) || !account.eq_ignore_ascii_case(&cfg.automation_account) {
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
    data.runbooks.get(&ctx.name().to_ascii_lowercase()).ok_or_else(|| ctx.not_found("runbooks"))
}

fn runbook_mut<'d>(ctx: &Ctx, data: &'d mut AutomationData) -> Result<&'d mut Runbook, Response> {
    data.runbooks.get_mut(&ctx.name().to_ascii_lowercase()).ok_or_else(|| ctx.not_found("runbooks"))
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
        assert_eq!(Content::new(b"abc").hash, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
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
        assert_eq!((f.status, f.code()), (StatusCode::BAD_REQUEST, "BadRequest"));
        assert!(data.take_failure("Rotate-Keys").is_some());
        assert!(data.take_failure("Rotate-Keys").is_none());
        assert!(data.fail_publish.is_empty());
    }
}
