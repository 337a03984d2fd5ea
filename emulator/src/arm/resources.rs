//! Generic resources: `Resources_ListByResourceGroup` and a GET of each inventory resource
//! (including the customer registry, whose network settings tests can change).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::inventory::{registry_properties, REGISTRY_TYPE};
use super::{groups, ArmRequest};
use crate::http::{arm_error, json};
use crate::state::Shared;

/// Small on purpose, so every client's paging is exercised by the seeded inventory.
const DEFAULT_PAGE_SIZE: usize = 5;

/// `GET /subscriptions/{s}/resourceGroups/{rg}/resources?api-version=..[&$top=N][&$filter=..]`.
/// Paged with an absolute `nextLink` carrying `$skiptoken` (an offset; opaque to clients).
/// `$filter` understands `resourceType eq '<type>'`; other filters are ignored.
pub fn list(st: &Shared, req: &ArmRequest) -> Response {
    let rg = &req.segs[3];
    let arm = st.arm.lock();
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let cfg = &st.config;
    let type_filter = req.query.get("$filter").and_then(|f| parse_type_filter(f));
    let items: Vec<Value> = if rg.eq_ignore_ascii_case(&cfg.resource_group) {
        arm.inventory
            .iter()
            .filter(|r| type_filter.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(r.resource_type)))
            .map(|r| r.list_item(cfg))
            .collect()
    } else {
        Vec::new()
    };
    let top = match req.query.get("$top").map(|t| t.parse::<usize>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "The value of '$top' must be a positive integer.",
            )
        }
    };
    let skip: usize = req.query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let end = (skip + top).min(items.len());
    let page = items.get(skip.min(end)..end).unwrap_or_default().to_vec();
    let mut body = json!({"value": page});
    if end < items.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("api-version", req.api_version());
        if let Some(f) = req.query.get("$filter") {
            next.append_pair("$filter", f);
        }
        if req.query.contains_key("$top") {
            next.append_pair("$top", &top.to_string());
        }
        next.append_pair("$skiptoken", &end.to_string());
        body["nextLink"] = json!(format!(
            "{}/subscriptions/{}/resourceGroups/{}/resources?{}",
            req.origin,
            req.segs[1],
            rg,
            next.finish()
        ));
    }
    json(StatusCode::OK, body)
}

/// `resourceType eq 'Microsoft.X/y'` → `Microsoft.X/y`.
fn parse_type_filter(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("resourceType")?.trim_start();
    let rest = rest.strip_prefix("eq")?.trim();
    Some(rest.trim_matches('\'').to_owned())
}

/// `GET /subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`.
pub fn get(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, ns, rtype, name) = (&req.segs[3], &req.segs[5], &req.segs[6], &req.segs[7]);
    let full_type = format!("{ns}/{rtype}");
    let cfg = &st.config;
    let arm = st.arm.lock();
    let Some(sample) = arm.inventory.iter().find(|r| r.resource_type.eq_ignore_ascii_case(&full_type)) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            format!(
                "The resource type '{rtype}' could not be found in the namespace '{ns}' for api version '{}'.",
                req.api_version()
            ),
        );
    };
    if let Err(r) = req.require_api_version(sample.api_versions) {
        return r;
    }
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let found = rg
        .eq_ignore_ascii_case(&cfg.resource_group)
        .then(|| {
            arm.inventory
                .iter()
                .find(|r| r.resource_type.eq_ignore_ascii_case(&full_type) && r.name.eq_ignore_ascii_case(name))
        })
        .flatten();
    let Some(resource) = found else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{}/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                sample.resource_type, name, rg
            ),
        );
    };
    let mut body = resource.full(cfg);
    if resource.resource_type == REGISTRY_TYPE {
        body["properties"] = registry_properties(cfg, &arm.registry_network);
    }
    json(StatusCode::OK, body)
}
