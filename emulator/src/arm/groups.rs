//! Resource groups: list, GET, HEAD, PUT (create or update), PATCH (tags) and DELETE, which is a
//! `Location`-style long-running operation, as in ARM.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::operations::{self, ArmOp};
use super::ArmRequest;
use super::{envelope, lro};
use crate::http::{arm_error, json};
use crate::state::Shared;

#[derive(Debug, Clone)]
pub struct Group {
    /// As first created (ARM keeps the creator's casing).
    pub name: String,
    pub location: String,
    pub tags: Value,
    /// `Succeeded`, or `Deleting` while its delete operation runs.
    pub provisioning_state: &'static str,
}

impl Group {
    pub fn new(name: &str, location: &str) -> Group {
        Group { name: name.to_owned(), location: location.to_owned(), tags: json!({}), provisioning_state: "Succeeded" }
    }

    fn to_json(&self, subscription: &str) -> Value {
        envelope::resource(
            format!("/subscriptions/{subscription}/resourceGroups/{}", self.name),
            &self.name,
            "Microsoft.Resources/resourceGroups",
        )
        .location(&self.location)
        .tags(&self.tags)
        .properties(json!({"provisioningState": self.provisioning_state}))
        .build()
    }
}

pub fn not_found(rg: &str) -> Response {
    arm_error(StatusCode::NOT_FOUND, "ResourceGroupNotFound", format!("Resource group '{rg}' could not be found."))
}

/// `GET /subscriptions/{s}/resourcegroups` (one page: there are only ever a few).
pub fn list(st: &Shared, _req: &ArmRequest) -> Response {
    let arm = st.arm.lock();
    let value: Vec<Value> = arm.groups.values().map(|g| g.to_json(&st.config.subscription_id)).collect();
    json(StatusCode::OK, json!({"value": value}))
}

pub fn handle(st: &Shared, req: &ArmRequest) -> Response {
    let name = &req.segs[3];
    let key = name.to_ascii_lowercase();
    let sub = &st.config.subscription_id;
    let mut arm = st.arm.lock();
    match req.method {
        Method::GET => match arm.groups.get(&key) {
            Some(g) => json(StatusCode::OK, g.to_json(sub)),
            None => not_found(name),
        },
        // CheckExistence: 204 or 404, no body.
        Method::HEAD => {
            if arm.groups.contains_key(&key) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response()
        }
        Method::PUT => {
            let body: Map<String, Value> = serde_json::from_slice(&req.body).unwrap_or_default();
            let Some(location) = body.get("location").and_then(Value::as_str) else {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "LocationRequired",
                    "The location property is required for this definition.",
                );
            };
            let tags = body.get("tags").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
            match arm.groups.get_mut(&key) {
                Some(g) if g.provisioning_state == "Deleting" => arm_error(
                    StatusCode::CONFLICT,
                    "ResourceGroupBeingDeleted",
                    format!("The resource group '{}' is in deprovisioning state and cannot perform this operation.", g.name),
                ),
                Some(g) if !g.location.eq_ignore_ascii_case(location) => arm_error(
                    StatusCode::CONFLICT,
                    "InvalidResourceGroupLocation",
                    format!(
                        "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                        g.location
                    ),
                ),
                Some(g) => {
                    g.tags = tags;
                    json(StatusCode::OK, g.to_json(sub))
                }
                None => {
                    let mut g = Group::new(name, location);
                    g.tags = tags;
                    let body = g.to_json(sub);
                    arm.groups.insert(key, g);
                    json(StatusCode::CREATED, body)
                }
            }
        }
        Method::PATCH => {
            let body: Map<String, Value> = serde_json::from_slice(&req.body).unwrap_or_default();
            match arm.groups.get_mut(&key) {
                Some(g) => {
                    if let Some(tags) = body.get("tags").filter(|t| t.is_object()) {
                        g.tags = tags.clone();
                    }
                    json(StatusCode::OK, g.to_json(sub))
                }
                None => not_found(name),
            }
        }
        Method::DELETE => {
            let Some(g) = arm.groups.get_mut(&key) else {
                return not_found(name);
            };
            g.provisioning_state = "Deleting";
            let op_id = operations::start(&mut arm, ArmOp::DeleteGroup { group: key });
            lro::accepted(&operations::location_url(req, sub, &op_id), arm.lro.retry_after)
        }
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{}'.", req.method),
        ),
    }
}
