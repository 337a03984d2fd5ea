//! Resource-group deployments: PUT starts an `Azure-AsyncOperation` LRO, GET shows the
//! deployment's `provisioningState`, DELETE is a `Location` LRO.
//!
//! Templates are not evaluated. A deployment succeeds unless its parameters carry
//! `"fail": {"value": true}`, which makes it end `Failed` with a `DeploymentFailed` error, so
//! failure paths are testable. Literal template outputs are echoed as deployment outputs.
//!
//! `POST .../deployments/{name}/validate` (what `az deployment group create` sends first) checks
//! what can be checked without evaluating expressions: the body, the template's required
//! properties, and that the parameters given and the template's declared ones agree.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::operations::{self, ArmOp};
use super::{envelope, lro};
use super::{groups, ArmRequest};
use crate::http::{arm_error, json, now_rfc3339};
use crate::state::Shared;

#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub group: String,
    pub mode: String,
    /// As the client sent them, with secure values removed (ARM never shows them back).
    pub parameters: Value,
    pub outputs: Value,
    /// `Accepted`, `Running`, `Succeeded` or `Failed`.
    pub provisioning_state: &'static str,
    pub error: Option<Value>,
    pub timestamp: String,
    pub correlation_id: String,
    pub operation: String,
}

impl Deployment {
    pub fn finish(&mut self, error: Option<Value>) {
        self.provisioning_state = if error.is_some() { "Failed" } else { "Succeeded" };
        self.error = error;
        self.timestamp = now_rfc3339();
    }

    pub fn to_json(&self, subscription: &str) -> Value {
        let mut props = json!({
            "provisioningState": self.provisioning_state,
            "timestamp": self.timestamp,
            "duration": "PT1S",
            "correlationId": self.correlation_id,
            "mode": self.mode,
            "parameters": self.parameters,
            "providers": [],
            "dependencies": [],
            "templateHash": "0",
        });
        if self.provisioning_state == "Succeeded" {
            props["outputs"] = self.outputs.clone();
            props["outputResources"] = json!([]);
        }
        if let Some(error) = &self.error {
            props["error"] = error.clone();
        }
        envelope::resource(
            format!(
                "/subscriptions/{subscription}/resourceGroups/{}/providers/Microsoft.Resources/deployments/{}",
                self.group, self.name
            ),
            &self.name,
            "Microsoft.Resources/deployments",
        )
        .properties(props)
        .build()
    }
}

fn not_found(name: &str) -> Response {
    arm_error(StatusCode::NOT_FOUND, "DeploymentNotFound", format!("Deployment '{name}' could not be found."))
}

fn invalid_content(detail: &str) -> Response {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: '{detail}'."),
    )
}

pub fn handle(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (&req.segs[3], &req.segs[7]);
    let key = (rg.to_ascii_lowercase(), name.to_ascii_lowercase());
    let sub = st.config.subscription_id.clone();
    let mut arm = st.arm.lock();
    let Some(group) = arm.groups.get(&key.0) else {
        return groups::not_found(rg);
    };
    let group_name = group.name.clone();
    match req.method {
        Method::GET => {
            let op = match arm.deployments.get(&key) {
                Some(d) => d.operation.clone(),
                None => return not_found(name),
            };
            // A GET is an observation too, for clients that watch provisioningState.
            lro::advance(&mut *arm, &op);
            json(StatusCode::OK, arm.deployments[&key].to_json(&sub))
        }
        Method::HEAD => if arm.deployments.contains_key(&key) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
            .into_response(),
        Method::PUT => {
            // Lenient, as ARM reads it (`az deployment group create` sends JSONC).
            let body: Map<String, Value> = match super::jsonc::parse(&req.body).and_then(serde_json::from_value) {
                Ok(b) => b,
                Err(e) => return invalid_content(&e.to_string()),
            };
            let Some(props) = body.get("properties").and_then(Value::as_object) else {
                return invalid_content("Required property 'properties' not found in JSON");
            };
            let Some(mode) = props.get("mode").and_then(Value::as_str) else {
                return invalid_content("Required property 'mode' not found in JSON");
            };
            if let Some(d) = arm.deployments.get(&key) {
                if matches!(d.provisioning_state, "Accepted" | "Running") {
                    return arm_error(
                        StatusCode::CONFLICT,
                        "DeploymentActive",
                        format!("Unable to edit or replace deployment '{name}': previous deployment from '{}' is still active.", d.timestamp),
                    );
                }
            }
            let template = props.get("template").cloned().unwrap_or(Value::Null);
            let parameters = props.get("parameters").cloned().unwrap_or_else(|| json!({}));
            let error = wants_failure(&parameters).then(|| {
                json!({
                    "code": "DeploymentFailed",
                    "message": "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
                    "details": [{"code": "EmulatorRequestedFailure", "message": "The deployment's 'fail' parameter asked the emulator to fail it."}],
                })
            });
            let op =
                operations::start(&mut arm, ArmOp::Deployment { group: key.0.clone(), name: key.1.clone(), error });
            let deployment = Deployment {
                name: name.clone(),
                group: group_name,
                mode: mode.to_owned(),
                parameters: redact(&parameters, &template),
                outputs: literal_outputs(&template),
                provisioning_state: "Accepted",
                error: None,
                timestamp: now_rfc3339(),
                correlation_id: uuid::Uuid::new_v4().to_string(),
                operation: op.clone(),
            };
            let status = if arm.deployments.contains_key(&key) { StatusCode::OK } else { StatusCode::CREATED };
            let body = deployment.to_json(&sub);
            arm.deployments.insert(key, deployment);
            lro::with_async_operation(json(status, body), &operations::async_url(req, &op), arm.lro.retry_after)
        }
        Method::DELETE => {
            if !arm.deployments.contains_key(&key) {
                return StatusCode::NO_CONTENT.into_response();
            }
            let op = operations::start(&mut arm, ArmOp::DeleteDeployment { group: key.0, name: key.1 });
            lro::accepted(&operations::location_url(req, &sub, &op), arm.lro.retry_after)
        }
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The requested resource does not support http method '{}'.", req.method),
        ),
    }
}

/// The failure marker: `parameters.fail.value == true`.
fn wants_failure(parameters: &Value) -> bool {
    parameters.pointer("/fail/value").and_then(Value::as_bool) == Some(true)
}

/// Parameters as ARM shows them back: `{"name": {"type": "String", "value": ...}}`, secure ones
/// without a value.
fn redact(parameters: &Value, template: &Value) -> Value {
    let Some(params) = parameters.as_object() else {
        return json!({});
    };
    let out: Map<String, Value> = params
        .iter()
        .map(|(name, p)| {
            let declared = template.pointer(&format!("/parameters/{name}/type")).and_then(Value::as_str).unwrap_or("");
            let secure = declared.to_ascii_lowercase().starts_with("secure");
            let shown = match (secure, p.get("value")) {
                (true, _) => json!({"type": if declared.eq_ignore_ascii_case("secureObject") { "SecureObject" } else { "SecureString" }}),
                (false, Some(v)) => json!({"type": type_name(v), "value": v}),
                (false, None) => p.clone(),
            };
            (name.clone(), shown)
        })
        .collect();
    Value::Object(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "Bool",
        Value::Number(_) => "Int",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
        _ => "String",
    }
}

/// Template outputs whose value is a literal (not a `[...]` expression), as deployment outputs.
fn literal_outputs(template: &Value) -> Value {
    let Some(outputs) = template.get("outputs").and_then(Value::as_object) else {
        return json!({});
    };
    let out: Map<String, Value> = outputs
        .iter()
        .filter_map(|(name, o)| {
            let value = o.get("value")?;
            if value.as_str().is_some_and(|s| s.starts_with('[')) {
                return None;
            }
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("String");
            Some((name.clone(), json!({"type": ty, "value": value})))
        })
        .collect();
    Value::Object(out)
}

/// `GET .../resourceGroups/{rg}/providers/Microsoft.Resources/deployments`: the group's
/// deployments (one page).
pub fn list(st: &Shared, req: &ArmRequest) -> Response {
    let rg = req.param("resourceGroupName");
    let arm = st.arm.lock();
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let mut value: Vec<&Deployment> =
        arm.deployments.iter().filter(|((g, _), _)| g.eq_ignore_ascii_case(rg)).map(|(_, d)| d).collect();
    value.sort_by(|a, b| a.name.cmp(&b.name));
    let value: Vec<Value> = value.iter().map(|d| d.to_json(&st.config.subscription_id)).collect();
    json(StatusCode::OK, json!({"value": value}))
}

fn invalid_template(detail: String) -> Response {
    arm_error(StatusCode::BAD_REQUEST, "InvalidTemplate", format!("Deployment template validation failed: '{detail}'."))
}

/// `POST .../deployments/{name}/validate` (`Deployments_ValidateAtResourceGroupScope`): 200 with
/// `DeploymentValidateResult`, or 400 `InvalidTemplate` naming the first problem. Nothing is
/// stored: a validation is not a deployment.
pub fn validate(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (req.param("resourceGroupName"), req.param("deploymentName"));
    if !st.arm.lock().groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    // Lenient, as ARM reads it (`az deployment group create` sends JSONC).
    let body: Map<String, Value> = match super::jsonc::parse(&req.body).and_then(serde_json::from_value) {
        Ok(b) => b,
        Err(e) => return invalid_content(&e.to_string()),
    };
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return invalid_content("Required property 'properties' not found in JSON");
    };
    let mode = match props.get("mode").and_then(Value::as_str) {
        Some(m) if m.eq_ignore_ascii_case("Incremental") || m.eq_ignore_ascii_case("Complete") => m,
        Some(m) => return invalid_content(&format!("Error converting value \"{m}\" to type 'DeploymentMode'")),
        None => return invalid_content("Required property 'mode' not found in JSON"),
    };
    if props.contains_key("templateLink") {
        return invalid_template(
            "The emulator does not fetch templateLink: send the template inline (properties.template)".to_owned(),
        );
    }
    let Some(template) = props.get("template").and_then(Value::as_object) else {
        return invalid_content("Required property 'template' not found in JSON");
    };
    for required in ["$schema", "contentVersion", "resources"] {
        if !template.contains_key(required) {
            return invalid_template(format!(
                "Required property '{required}' not found in JSON. Path '', line 1, position 1."
            ));
        }
    }
    let declared = template.get("parameters").and_then(Value::as_object).cloned().unwrap_or_default();
    let given = props.get("parameters").and_then(Value::as_object).cloned().unwrap_or_default();
    let unknown: Vec<&String> = given.keys().filter(|k| !declared.keys().any(|d| d.eq_ignore_ascii_case(k))).collect();
    if !unknown.is_empty() {
        return invalid_template(format!(
            "The template parameters '{}' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '{}'. Please see https://aka.ms/arm-pass-parameter-values for usage details.",
            unknown.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
            declared.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some((missing, _)) = declared
        .iter()
        .find(|(k, d)| d.get("defaultValue").is_none() && !given.keys().any(|g| g.eq_ignore_ascii_case(k)))
    {
        return invalid_template(format!(
            "The value for the template parameter '{missing}' at line '1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details."
        ));
    }
    let template = Value::Object(template.clone());
    let props = json!({
        "templateHash": "0",
        "parameters": redact(&Value::Object(given), &template),
        "mode": mode,
        "provisioningState": "Succeeded",
        "timestamp": now_rfc3339(),
        "duration": "PT0S",
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "providers": [],
        "dependencies": [],
        "validatedResources": [],
    });
    let body = envelope::resource(
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}",
            st.config.subscription_id
        ),
        name,
        "Microsoft.Resources/deployments",
    )
    .properties(props)
    .build();
    json(StatusCode::OK, body)
}
