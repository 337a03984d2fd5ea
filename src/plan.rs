//! `plan`: the RFC-60 table for people and, with `--json`, for `infra/` and the tests.

use serde_json::{json, Value};

use crate::azure::permission::{Kind, Permission};
use crate::config;
use crate::ledger::Record;
use crate::phases::{self, permissions, permissions::Need};
use crate::roles;
use crate::sequence::{Step, SEQUENCE};

/// The `plan --json` document: an array of the fifteen phases in order (DESIGN §2).
pub fn to_json(statuses: &[(Step, Option<Record>)]) -> Value {
    let phases: Vec<Value> = SEQUENCE
        .iter()
        .map(|p| {
            let status = p.step.and_then(|s| statuses.iter().find(|(x, _)| *x == s)).and_then(|(_, r)| r.as_ref()).map(|r| {
                json!({"status": r.status, "attempt": r.attempt, "startedAt": r.started_at, "endedAt": r.ended_at, "changes": r.changes})
            });
            json!({
                "order": p.order,
                "id": p.id,
                "name": p.name,
                "kind": p.kind,
                "summary": p.summary,
                "command": p.command(),
                "built": p.step.map(phases::built).unwrap_or(false),
                "requiredConfig": p.step.map(config::required_for).unwrap_or_default(),
                "status": status,
            })
        })
        .collect();
    Value::Array(phases)
}

/// The human table.
pub fn to_table(statuses: &[(Step, Option<Record>)], ledger_note: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:>2}  {:<26} {:<12} {:<15} {:<6} {}\n",
        "#", "RFC-60 phase", "kind", "command", "built", "status"
    ));
    for p in &SEQUENCE {
        let kind = format!("{:?}", p.kind).to_lowercase();
        let command = p.command().unwrap_or_else(|| "(Bicep)".into());
        let built = match p.step {
            None => "-",
            Some(s) if phases::built(s) => "yes",
            Some(_) => "no",
        };
        let status = p
            .step
            .and_then(|s| statuses.iter().find(|(x, _)| *x == s))
            .and_then(|(_, r)| r.as_ref())
            .map(|r| {
                format!("{} (attempt {}, {})", r.status, r.attempt, r.ended_at.as_deref().unwrap_or(&r.started_at))
            })
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!("{:>2}  {:<26} {:<12} {:<15} {:<6} {}\n", p.order, p.name, kind, command, built, status));
    }
    if let Some(note) = ledger_note {
        out.push_str(&format!("\nrecorded status unavailable: {note}\n"));
    }
    out
}

/// One phase's permissions, grouped by the resource they apply to, with the roles that cover
/// each group: what `plan --permissions` prints.
struct PhasePermissions {
    phase: &'static str,
    needs: Vec<Need>,
    /// Per resource (configuration key): its resource type, the roles, what no built-in grants.
    groups: Vec<(&'static str, &'static str, Vec<roles::Suggested>, Vec<Permission>)>,
}

fn phase_permissions() -> Vec<PhasePermissions> {
    SEQUENCE
        .iter()
        .filter_map(|p| p.step.filter(|s| phases::built(*s)).map(|s| (p.id, s)))
        .map(|(phase, step)| {
            let needs = permissions::of(step);
            let mut resources: Vec<&'static str> = needs.iter().map(|n| n.resource).collect();
            resources.dedup();
            resources.sort();
            resources.dedup();
            let groups = resources
                .into_iter()
                .map(|r| {
                    let of_r: Vec<Permission> =
                        needs.iter().filter(|n| n.resource == r).map(|n| n.permission).collect();
                    // The type most of the group is checked on (an LRO poll may sit elsewhere).
                    let rbac: Vec<&Permission> = of_r.iter().filter(|p| p.kind != Kind::NoRbac).collect();
                    let scope = rbac
                        .iter()
                        .max_by_key(|p| rbac.iter().filter(|q| q.resource_type == p.resource_type).count())
                        .map_or("-", |p| p.resource_type);
                    let (suggested, left) = roles::suggest(&of_r);
                    (r, scope, suggested, left)
                })
                .collect();
            PhasePermissions { phase, needs, groups }
        })
        .collect()
}

/// `plan --permissions --json`: per built phase, every permission (kind, name, the resource type
/// it is checked on, the configuration key naming the resource, whether the string is confirmed;
/// for the ACR's data plane also the strings of ABAC mode), the roles per resource, and the
/// union of suggested roles.
pub fn permissions_json() -> Value {
    let phases: Vec<Value> = phase_permissions()
        .into_iter()
        .map(|p| {
            let perms: Vec<Value> = p
                .needs
                .iter()
                .map(|n| {
                    let mut v = json!({
                        "kind": n.permission.kind,
                        "name": n.permission.name,
                        "scope": n.permission.resource_type,
                        "resource": n.resource,
                        "confirmed": n.permission.confirmed,
                    });
                    let abac = crate::azure::acr::abac(&n.permission);
                    if abac != [n.permission] {
                        v["abacMode"] =
                            json!(abac.iter().map(|a| json!({"kind": a.kind, "name": a.name})).collect::<Vec<_>>());
                    }
                    v
                })
                .collect();
            let mut all: Vec<roles::Suggested> = Vec::new();
            let assignments: Vec<Value> = p
                .groups
                .iter()
                .map(|(resource, scope, suggested, left)| {
                    for s in suggested {
                        if !all.contains(s) {
                            all.push(s.clone());
                        }
                    }
                    json!({"resource": resource, "scope": scope, "roles": suggested,
                           "noBuiltInRole": left.iter().map(|l| l.name).collect::<Vec<_>>()})
                })
                .collect();
            json!({"phase": p.phase, "permissions": perms, "suggestedRoles": all, "assignments": assignments})
        })
        .collect();
    Value::Array(phases)
}

/// `plan --permissions`: the same for people.
pub fn permissions_table() -> String {
    let mut out = String::new();
    for p in phase_permissions() {
        out.push_str(&format!("{}\n", p.phase));
        for (resource, scope, suggested, left) in &p.groups {
            let roles: Vec<String> = suggested.iter().map(|s| format!("{} ({})", s.name, s.id)).collect();
            let roles = match (roles.is_empty(), left.is_empty()) {
                (true, true) => "no role (not Azure RBAC)".to_owned(),
                (true, false) => "no built-in role: a custom role".to_owned(),
                (false, true) => roles.join(", "),
                (false, false) => format!("{} + a custom role for the rest", roles.join(", ")),
            };
            out.push_str(&format!("  {resource} ({scope}): {roles}\n"));
            for n in p.needs.iter().filter(|n| n.resource == *resource) {
                let kind = match n.permission.kind {
                    Kind::Action => "action",
                    Kind::DataAction => "dataAction",
                    Kind::NoRbac => "no RBAC",
                };
                let mark = if n.permission.confirmed { "" } else { "  (unconfirmed)" };
                out.push_str(&format!("    {kind:<10} {}{mark}\n", n.permission.name));
            }
        }
    }
    out.push_str("\n(unconfirmed): the exact string was inferred, not found in Microsoft's documents.\n");
    out
}
