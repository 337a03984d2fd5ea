//! Generic resources: `Resources_List` (subscription) and `Resources_ListByResourceGroup` with
//! `$filter`, the GET of each inventory resource by id (including the customer registry, whose
//! network settings tests can change), and each resource provider's own collection GET of an
//! inventory type, in the group and in the subscription (`az network private-endpoint list`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::inventory::{registry_properties, Resource, REGISTRY_TYPE};
use super::{groups, invalid_resource_type, ArmData, ArmRequest};
use crate::config::Config;
use crate::http::{arm_error, json};
use crate::state::Shared;

/// Small on purpose, so every client's paging is exercised by the seeded inventory.
const DEFAULT_PAGE_SIZE: usize = 5;

/// `GET /subscriptions/{s}[/resourceGroups/{rg}]/resources?api-version=..[&$top=N][&$filter=..]`.
/// Paged with an absolute `nextLink` carrying `$skiptoken` (an offset; opaque to clients).
/// `$filter` takes `and`-joined clauses of [`Clause`]; anything else is refused (400), because
/// ignoring a filter would answer with resources the client did not ask for.
pub fn list(st: &Shared, req: &ArmRequest) -> Response {
    let rg = req.param("resourceGroupName");
    let arm = st.arm.lock();
    if !rg.is_empty() && !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let filter = req.query.get("$filter").filter(|f| !f.trim().is_empty());
    let clauses = match filter.map(|f| parse_filter(f)).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(r) => return r,
    };
    let cfg = &st.config;
    let expand: Vec<String> = req
        .query
        .get("$expand")
        .map(|e| e.split(',').map(|x| x.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let items: Vec<Value> = in_scope(cfg, &arm, rg)
        .filter(|r| clauses.iter().all(|c| c.matches(cfg, r)))
        .map(|r| expanded(r.list_item(cfg), r, &expand))
        .collect();
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
        if let Some(e) = req.query.get("$expand") {
            next.append_pair("$expand", e);
        }
        if req.query.contains_key("$top") {
            next.append_pair("$top", &top.to_string());
        }
        next.append_pair("$skiptoken", &end.to_string());
        body["nextLink"] = json!(format!("{}/{}?{}", req.origin, req.segs.join("/"), next.finish()));
    }
    json(StatusCode::OK, body)
}

/// `$expand=createdTime,changedTime,provisioningState` (what `az resource list` asks for) adds
/// those fields; the inventory has no history, so both times are the platform's creation day.
fn expanded(mut item: Value, r: &Resource, expand: &[String]) -> Value {
    const CREATED: &str = "2026-01-01T00:00:00.0000000Z";
    for field in expand {
        let (key, value) = match field.as_str() {
            "createdtime" => ("createdTime", json!(CREATED)),
            "changedtime" => ("changedTime", json!(CREATED)),
            "provisioningstate" => (
                "provisioningState",
                r.properties.get("provisioningState").cloned().unwrap_or_else(|| json!("Succeeded")),
            ),
            _ => continue,
        };
        item[key] = value;
    }
    item
}

/// The inventory resources of one group (`rg` non-empty) or of the whole subscription. Only the
/// configured group holds any, and only while it exists.
fn in_scope<'a>(cfg: &'a Config, arm: &'a ArmData, rg: &'a str) -> impl Iterator<Item = &'a Resource> {
    let has = arm.groups.contains_key(&cfg.resource_group.to_ascii_lowercase())
        && (rg.is_empty() || rg.eq_ignore_ascii_case(&cfg.resource_group));
    arm.inventory.iter().filter(move |_| has)
}

/// One clause of a `$filter` (`specs/arm-common.md` §4; `az resource list -g` sends
/// `resourceGroup eq '…'`, `--resource-type` adds `and resourceType eq '…'`).
#[derive(Debug, PartialEq)]
enum Clause {
    Eq(Field, String),
    /// `substringof('x', name)`
    NameContains(String),
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Field {
    ResourceType,
    ResourceGroup,
    Name,
    Location,
    TagName,
    TagValue,
}

impl Clause {
    fn matches(&self, cfg: &Config, r: &Resource) -> bool {
        match self {
            Clause::Eq(Field::ResourceType, v) => r.resource_type.eq_ignore_ascii_case(v),
            Clause::Eq(Field::ResourceGroup, v) => cfg.resource_group.eq_ignore_ascii_case(v),
            Clause::Eq(Field::Name, v) => r.name.eq_ignore_ascii_case(v),
            Clause::Eq(Field::Location, v) => r.location(cfg).eq_ignore_ascii_case(v),
            Clause::Eq(Field::TagName, v) => r.tags.as_object().is_some_and(|t| t.contains_key(v)),
            Clause::Eq(Field::TagValue, v) => {
                r.tags.as_object().is_some_and(|t| t.values().any(|x| x.as_str() == Some(v.as_str())))
            }
            Clause::NameContains(v) => r.name.to_ascii_lowercase().contains(&v.to_ascii_lowercase()),
        }
    }
}

fn parse_filter(filter: &str) -> Result<Vec<Clause>, Response> {
    let refuse = || {
        arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidFilterInQueryString",
            format!("Invalid $filter '{filter}' specified in the query string."),
        )
    };
    split_and(filter).iter().map(|c| parse_clause(c).ok_or_else(refuse)).collect()
}

/// Splits on ` and ` outside quoted strings.
fn split_and(filter: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let words: Vec<&str> = filter.split(' ').collect();
    for w in words {
        if !quoted && w.eq_ignore_ascii_case("and") {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
        quoted ^= w.matches('\'').count() % 2 == 1;
    }
    parts.push(cur);
    parts.into_iter().map(|p| p.trim().to_owned()).collect()
}

/// `'it''s'` → `it's`.
fn literal(s: &str) -> Option<String> {
    let inner = s.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn parse_clause(clause: &str) -> Option<Clause> {
    if let Some(args) = clause.strip_prefix("substringof(").and_then(|r| r.strip_suffix(')')) {
        let (needle, field) = args.rsplit_once(',')?;
        return field.trim().eq_ignore_ascii_case("name").then_some(Clause::NameContains(literal(needle)?));
    }
    let (field, rest) = clause.split_once(' ')?;
    let value = rest.trim_start().strip_prefix("eq ")?;
    let field = match field.to_ascii_lowercase().as_str() {
        "resourcetype" => Field::ResourceType,
        "resourcegroup" => Field::ResourceGroup,
        "name" => Field::Name,
        "location" => Field::Location,
        "tagname" => Field::TagName,
        "tagvalue" => Field::TagValue,
        _ => return None,
    };
    Some(Clause::Eq(field, literal(value)?))
}

/// The resource's GET answer (the registry's properties are live: tests change its network).
fn shown(cfg: &Config, arm: &ArmData, r: &Resource) -> Value {
    let mut body = r.full(cfg);
    if r.resource_type == REGISTRY_TYPE {
        body["properties"] = registry_properties(cfg, &arm.registry_network);
    }
    body
}

/// The named type, when the inventory has resources of it (the dispatcher already checked it
/// is a type of the provider table and the api-version).
fn inventory_type(arm: &ArmData, req: &ArmRequest) -> Result<&'static str, Response> {
    let (ns, rtype, _) = req.named_type().unwrap_or_default();
    let full = format!("{ns}/{rtype}");
    arm.inventory
        .iter()
        .find(|r| r.resource_type.eq_ignore_ascii_case(&full))
        .map(|r| r.resource_type)
        .ok_or_else(|| invalid_resource_type(ns, rtype, req.api_version()))
}

/// `GET /subscriptions/{s}[/resourceGroups/{rg}]/providers/{ns}/{type}`: the resource
/// provider's list, with `properties` (one page: the group holds at most 13 of a type).
pub fn list_type(st: &Shared, req: &ArmRequest) -> Response {
    let rg = req.param("resourceGroupName");
    let cfg = &st.config;
    let arm = st.arm.lock();
    let rtype = match inventory_type(&arm, req) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !rg.is_empty() && !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let value: Vec<Value> =
        in_scope(cfg, &arm, rg).filter(|r| r.resource_type == rtype).map(|r| shown(cfg, &arm, r)).collect();
    json(StatusCode::OK, json!({"value": value}))
}

/// `GET /subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`.
pub fn get(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (req.param("resourceGroupName"), req.param("resourceName"));
    let cfg = &st.config;
    let arm = st.arm.lock();
    let rtype = match inventory_type(&arm, req) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let found = in_scope(cfg, &arm, rg).find(|r| r.resource_type == rtype && r.name.eq_ignore_ascii_case(name));
    match found.map(|r| shown(cfg, &arm, r)) {
        Some(body) => json(StatusCode::OK, body),
        None => arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_the_clauses_az_sends() {
        let c = parse_filter("resourceGroup eq 'mrg-x' and resourceType eq 'Microsoft.KeyVault/vaults'").unwrap();
        assert_eq!(
            c,
            [
                Clause::Eq(Field::ResourceGroup, "mrg-x".into()),
                Clause::Eq(Field::ResourceType, "Microsoft.KeyVault/vaults".into())
            ]
        );
        assert_eq!(parse_filter("substringof('kv', name)").unwrap(), [Clause::NameContains("kv".into())]);
        assert_eq!(parse_filter("name eq 'a and b''s'").unwrap(), [Clause::Eq(Field::Name, "a and b's".into())]);
        assert_eq!(
            parse_filter("tagName eq 'k' and tagValue eq 'v'").unwrap(),
            [Clause::Eq(Field::TagName, "k".into()), Clause::Eq(Field::TagValue, "v".into())]
        );
        for bad in ["resourceType ne 'x'", "provisioningState eq 'Succeeded'", "resourceType eq x"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
