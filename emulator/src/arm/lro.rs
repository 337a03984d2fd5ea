//! Long-running operations, both ARM styles:
//!
//! - `Location` (resource-group and deployment deletes): the Location URL answers 202 while
//!   running, then 200 with no body.
//! - `Azure-AsyncOperation` (deployment create): the status URL answers `{"status":"Running"}`
//!   while running, then `Succeeded` or `Failed` with an `error`.
//!
//! An operation runs for `lro.polls` observations (control API `PUT /_emulator/lro`), then
//! completes and applies its effect. Observations are polls of its URL or GETs of the resource,
//! so a client that only watches `provisioningState` also sees it finish.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{ArmData, ArmRequest, DEPLOYMENTS_API_VERSIONS, RESOURCES_API_VERSIONS};
use crate::http::{arm_error, json};
use crate::state::Shared;

#[derive(Debug, Clone)]
pub enum OpKind {
    DeleteGroup {
        group: String,
    },
    /// Create or update: ends `Failed` with `error` when the deployment asked to fail.
    Deployment {
        group: String,
        name: String,
        error: Option<Value>,
    },
    DeleteDeployment {
        group: String,
        name: String,
    },
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: OpKind,
    /// Observations still answered "running".
    pub polls_left: u32,
    pub done: bool,
    pub started: String,
}

/// Registers an operation and returns its id.
pub fn start(arm: &mut ArmData, kind: OpKind) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let op = Operation { kind, polls_left: arm.lro.polls, done: false, started: crate::http::now_rfc3339() };
    arm.operations.insert(id.clone(), op);
    id
}

/// One observation of operation `id`: counts down, completes (applying the effect) at zero.
/// Returns the operation's state after the observation.
pub fn observe(arm: &mut ArmData, id: &str) -> Option<Operation> {
    let op = arm.operations.get_mut(id)?;
    if !op.done {
        if op.polls_left > 0 {
            op.polls_left -= 1;
            if let OpKind::Deployment { group, name, .. } = &op.kind {
                if let Some(d) = arm.deployments.get_mut(&(group.clone(), name.clone())) {
                    d.provisioning_state = "Running";
                }
            }
        } else {
            op.done = true;
            let kind = op.kind.clone();
            complete(arm, &kind);
        }
    }
    arm.operations.get(id).cloned()
}

fn complete(arm: &mut ArmData, kind: &OpKind) {
    match kind {
        OpKind::DeleteGroup { group } => {
            arm.groups.remove(group);
            arm.deployments.retain(|(g, _), _| g != group);
        }
        OpKind::Deployment { group, name, error } => {
            if let Some(d) = arm.deployments.get_mut(&(group.clone(), name.clone())) {
                d.finish(error.clone());
            }
        }
        OpKind::DeleteDeployment { group, name } => {
            arm.deployments.remove(&(group.clone(), name.clone()));
        }
    }
}

fn retry_after(resp: &mut Response, seconds: u32) {
    resp.headers_mut().insert("retry-after", HeaderValue::from(seconds));
}

fn unknown_operation(id: &str) -> Response {
    arm_error(StatusCode::NOT_FOUND, "OperationNotFound", format!("The operation '{id}' could not be found."))
}

/// `GET /subscriptions/{s}/operationresults/{id}` (Location style).
pub fn poll_location(st: &Shared, req: &ArmRequest) -> Response {
    if let Err(r) = req.require_api_version(RESOURCES_API_VERSIONS) {
        return r;
    }
    let id = &req.segs[3];
    let mut arm = st.arm.lock();
    let Some(op) = observe(&mut arm, id) else {
        return unknown_operation(id);
    };
    if op.done {
        return StatusCode::OK.into_response();
    }
    let mut resp = StatusCode::ACCEPTED.into_response();
    let here = format!(
        "{}/subscriptions/{}/operationresults/{}?api-version={}",
        req.origin,
        req.segs[1],
        id,
        req.api_version()
    );
    resp.headers_mut().insert("location", HeaderValue::from_str(&here).unwrap());
    retry_after(&mut resp, arm.lro.retry_after);
    resp
}

/// `GET .../deployments/{name}/operationStatuses/{id}` (Azure-AsyncOperation style).
pub fn poll_async(st: &Shared, req: &ArmRequest) -> Response {
    if let Err(r) = req.require_api_version(DEPLOYMENTS_API_VERSIONS) {
        return r;
    }
    let id = &req.segs[9];
    let mut arm = st.arm.lock();
    let Some(op) = observe(&mut arm, id) else {
        return unknown_operation(id);
    };
    let mut body = json!({"id": format!("/{}", req.segs.join("/")), "name": id, "startTime": op.started});
    match (&op.done, &op.kind) {
        (false, _) => {
            body["status"] = json!("Running");
            let mut resp = json(StatusCode::OK, body);
            retry_after(&mut resp, arm.lro.retry_after);
            return resp;
        }
        (true, OpKind::Deployment { error: Some(error), .. }) => {
            body["status"] = json!("Failed");
            body["error"] = error.clone();
        }
        (true, _) => body["status"] = json!("Succeeded"),
    }
    body["endTime"] = json!(crate::http::now_rfc3339());
    json(StatusCode::OK, body)
}

/// The absolute status URL of a deployment operation.
pub fn async_url(req: &ArmRequest, op_id: &str) -> String {
    format!(
        "{}/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Resources/deployments/{}/operationStatuses/{}?api-version={}",
        req.origin,
        req.segs[1],
        req.segs[3],
        req.segs[7],
        op_id,
        req.api_version()
    )
}
