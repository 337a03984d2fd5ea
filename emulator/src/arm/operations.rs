//! ARM's own long-running operations (api `arm.operations`), on the generic [`lro::Operation`]:
//!
//! - `Location` (resource-group and deployment deletes): `GET /subscriptions/{s}/operationresults/{id}`
//!   answers 202 while running, then 200 with no body.
//! - `Azure-AsyncOperation` (deployment create): `.../deployments/{n}/operationStatuses/{id}`
//!   answers `{"status":"Running"}` while running, then `Succeeded` or `Failed` with an `error`.
//!
//! An operation runs for `lro.polls` observations (control API `PUT /_emulator/lro`), then
//! completes and applies its effect. Observations are polls of its URL or GETs of the
//! deployment, so a client that only watches `provisioningState` also sees it finish.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::lro::{self, Failure, Operation, Operations, Outcome, Plan};
use super::{ArmData, ArmRequest};
use crate::state::Shared;

#[derive(Debug, Clone)]
pub enum ArmOp {
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

impl lro::Owner for ArmData {
    type Kind = ArmOp;

    fn operations(&mut self) -> &mut Operations<ArmOp> {
        &mut self.operations
    }

    fn running(&mut self, kind: &ArmOp) {
        if let ArmOp::Deployment { group, name, .. } = kind {
            if let Some(d) = self.deployments.get_mut(&(group.clone(), name.clone())) {
                d.provisioning_state = "Running";
            }
        }
    }

    fn complete(&mut self, kind: &ArmOp) -> Outcome {
        match kind {
            ArmOp::DeleteGroup { group } => {
                self.groups.remove(group);
                self.deployments.retain(|(g, _), _| g != group);
            }
            ArmOp::Deployment { group, name, error } => {
                if let Some(d) = self.deployments.get_mut(&(group.clone(), name.clone())) {
                    d.finish(error.clone());
                }
                if let Some(error) = error {
                    return Outcome::Failed(Failure { status: StatusCode::BAD_REQUEST, error: error.clone() });
                }
            }
            ArmOp::DeleteDeployment { group, name } => {
                self.deployments.remove(&(group.clone(), name.clone()));
            }
        }
        Outcome::Succeeded(None)
    }
}

/// Registers an operation for `lro.polls` observations and returns its id.
pub fn start(arm: &mut ArmData, kind: ArmOp) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    arm.operations.insert(&id, Operation::new(kind, Plan { polls: arm.lro.polls, ..Plan::default() }));
    id
}

/// The absolute `Location` of an ARM operation: `https://host/subscriptions/{s}/operationresults/{id}`.
pub fn location_url(req: &ArmRequest, subscription: &str, op_id: &str) -> String {
    format!("{}/subscriptions/{subscription}/operationresults/{op_id}?api-version={}", req.origin, req.api_version())
}

/// `GET /subscriptions/{s}/operationresults/{operationId}` (Location style).
pub fn poll_location(st: &Shared, req: &ArmRequest) -> Response {
    let id = req.param("operationId");
    let mut arm = st.arm.lock();
    let Some(op) = lro::advance(&mut *arm, id) else {
        return lro::not_found(id);
    };
    op.location_answer(&location_url(req, &req.segs[1], id), arm.lro.retry_after)
}

/// `GET .../deployments/{name}/operationStatuses/{operationId}` (Azure-AsyncOperation style).
pub fn poll_async(st: &Shared, req: &ArmRequest) -> Response {
    let id = req.param("operationId");
    let mut arm = st.arm.lock();
    let Some(op) = lro::advance(&mut *arm, id) else {
        return lro::not_found(id);
    };
    op.status_answer(&format!("/{}", req.segs.join("/")), id, arm.lro.retry_after)
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
