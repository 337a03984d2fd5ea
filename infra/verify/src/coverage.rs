//! The template's role assignments against what the binary needs (`plan --permissions --json`):
//! every permission of every phase must be granted to the bootstrap identity by an assignment at
//! or above the resource it applies to.
//!
//! An assignment is expanded to (role definition, scope): the role from a GUID literal (directly,
//! through a `var`, a `roles.x` map or a `for` over a list) looked up in
//! `infra/roles/builtin-roles.json`, or a custom `Microsoft.Authorization/roleDefinitions` of the
//! template (`x.id`); the scope from `scope:` (a resource of the same file), else the resource
//! group. A permission's resource is its configuration key, resolved through main.bicep's step
//! configuration (`KEY: module.outputs.o` → the output's resource); where that does not resolve,
//! any resource of the permission's type stands in. Only assignments to the bootstrap identity
//! count (`principalId: principalId`, or the identity itself).

use std::collections::BTreeMap;

use crate::bicep::{find, Decl, DeclKind, Expr, File};
use crate::finding::{rule, Finding};
use crate::plan::{Need, Phase};
use crate::template::Template;

pub const ROLES_FILE: &str = "roles/builtin-roles.json";
const ASSIGNMENT: &str = "Microsoft.Authorization/roleAssignments";
const DEFINITION: &str = "Microsoft.Authorization/roleDefinitions";

/// Permissions no assignment has to grant, and why.
pub static EXCEPTIONS: &[(&str, &str)] = &[(
    "Microsoft.ContainerRegistry/locations/operationResults/read",
    "the import's Location poll sits under the subscription's locations, not the registry; whether ARM \
     checks it is untested (specs/permissions.md §1) and no assignment the managed resource group can \
     hold reaches it",
)];

pub use vibedata_rbac::{Role, RolesFile};

/// Whether `role` grants a permission as `plan --permissions --json` spells its kind.
fn grants(role: &Role, kind: &str, name: &str) -> bool {
    match kind {
        "action" => role.grants(vibedata_rbac::Kind::Action, name),
        "dataAction" => role.grants(vibedata_rbac::Kind::DataAction, name),
        _ => false,
    }
}

/// Where an assignment applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    ResourceGroup,
    /// A resource: (file, symbol, type).
    Resource(String, String, String),
}

/// One expanded role assignment to the bootstrap identity.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub file: String,
    pub symbol: String,
    pub line: usize,
    pub role: Role,
    pub scope: Scope,
}

/// Every check: uncovered permissions are findings; broad roles are warnings.
pub fn check(t: &Template, plan: &[Phase]) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    if plan.iter().all(|p| p.permissions.is_empty()) {
        return (findings, vec!["no permissions in the plan (a --plan-json file): coverage not checked".into()]);
    }
    let builtin = match std::fs::read_to_string(t.root.join(ROLES_FILE)).map(|s| serde_json::from_str::<RolesFile>(&s))
    {
        Ok(Ok(f)) => f.roles,
        Ok(Err(e)) => {
            return (vec![Finding::new(rule::ROLE_COVERAGE, ROLES_FILE, 0, format!("does not parse: {e}"))], vec![])
        }
        Err(e) => {
            return (vec![Finding::new(rule::ROLE_COVERAGE, ROLES_FILE, 0, format!("cannot be read: {e}"))], vec![])
        }
    };
    let (assignments, mut problems) = assignments(t, &builtin);
    findings.append(&mut problems);
    let warnings = assignments
        .iter()
        .filter(|a| a.role.broad)
        .map(|a| format!("{}:{}: `{}` assigns {}, broader than any phase needs", a.file, a.line, a.symbol, a.role.name))
        .collect();
    let resources = resolve_keys(t);
    for phase in plan {
        for need in phase.permissions.iter().filter(|n| n.kind != "noRbac") {
            if EXCEPTIONS.iter().any(|(name, _)| name.eq_ignore_ascii_case(&need.name)) {
                continue;
            }
            let covered =
                assignments.iter().any(|a| grants(&a.role, &need.kind, &need.name) && reaches(a, need, &resources));
            if !covered {
                findings.push(Finding::new(
                    rule::ROLE_COVERAGE,
                    crate::template::MAIN,
                    0,
                    format!(
                        "{} `{}` of phase {} on {} is granted by no role assignment to the bootstrap identity{}",
                        need.kind,
                        need.name,
                        phase.id,
                        need.resource,
                        if need.confirmed { "" } else { " (the string is unconfirmed)" }
                    ),
                ));
            }
        }
    }
    (findings, warnings)
}

/// Whether `a` applies at or above the resource `need` names.
fn reaches(a: &Assignment, need: &Need, resources: &BTreeMap<String, Target>) -> bool {
    match (&a.scope, resources.get(&need.resource)) {
        (Scope::ResourceGroup, _) => true,
        (Scope::Resource(..), Some(Target::Group)) => false,
        (Scope::Resource(file, symbol, _), Some(Target::Resource(f, s))) => file == f && symbol == s,
        // Unresolved: a resource of the permission's provider type stands in.
        (Scope::Resource(_, _, ty), _) => provider_type(&need.name).is_some_and(|p| p.eq_ignore_ascii_case(ty)),
    }
}

use vibedata_rbac::provider_type;

/// Where the expanded assignments are kept for the local stack (`vibedata-infra-verify grants`
/// writes it; the emulator seeds its grant table from it; a test keeps it current).
pub const GRANTS_FILE: &str = "roles/bootstrap-grants.json";

/// Every assignment to the bootstrap identity, expanded, with the permissions no assignment has
/// to grant: what the local stack's emulator authorises.
pub fn grants_file(t: &Template) -> Result<vibedata_rbac::GrantsFile, String> {
    let text = std::fs::read_to_string(t.root.join(ROLES_FILE)).map_err(|e| format!("{ROLES_FILE}: {e}"))?;
    let builtin = serde_json::from_str::<RolesFile>(&text).map_err(|e| format!("{ROLES_FILE}: {e}"))?.roles;
    let (mut found, problems) = assignments(t, &builtin);
    if let Some(p) = problems.first() {
        return Err(p.to_string());
    }
    found.sort_by(|a, b| (&a.file, a.line, &a.role.id).cmp(&(&b.file, b.line, &b.role.id)));
    let assignments = found
        .into_iter()
        .map(|a| vibedata_rbac::Assignment {
            source: format!("{}:{} {}", a.file, a.line, a.symbol),
            scope: match a.scope {
                Scope::ResourceGroup => vibedata_rbac::Scope::ResourceGroup,
                Scope::Resource(_, _, ty) => vibedata_rbac::Scope::ResourceType(ty),
            },
            role: a.role,
        })
        .collect();
    Ok(vibedata_rbac::GrantsFile {
        about: "Generated by `vibedata-infra-verify grants` from infra/ (do not edit; the test \
                grants_file_matches_the_template keeps it current): every role assignment of the template to the \
                bootstrap identity, expanded to its role definition and the type of the resource it is scoped to. \
                scripts/stack seeds the emulator's grant table from it."
            .into(),
        assignments,
        unenforced: EXCEPTIONS
            .iter()
            .map(|(n, w)| vibedata_rbac::Unenforced { name: (*n).into(), why: (*w).into() })
            .collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Group,
    /// (file, symbol) of the resource.
    Resource(String, String),
}

/// Configuration keys that name a part of another key's resource.
const PART_OF: &[(&str, &str)] = &[
    ("VIBEDATA_LEDGER_CONTAINER", "VIBEDATA_STORAGE_ACCOUNT"),
    ("VIBEDATA_ARTIFACT_CONTAINER", "VIBEDATA_STORAGE_ACCOUNT"),
];

/// Each configuration key of main.bicep's step configuration that resolves to a resource.
fn resolve_keys(t: &Template) -> BTreeMap<String, Target> {
    let main = t.main();
    let mut out = BTreeMap::new();
    out.insert("VIBEDATA_RESOURCE_GROUP".to_owned(), Target::Group);
    for d in main.decls.iter().filter(|d| d.kind == DeclKind::Var) {
        let Some(props) = d.value.as_ref().and_then(Expr::object) else { continue };
        for p in props.iter().filter(|p| p.key.starts_with("VIBEDATA_")) {
            if let Some(target) = output_resource(t, main, &p.value) {
                out.insert(p.key.clone(), target);
            }
        }
    }
    for (part, whole) in PART_OF {
        if let Some(t) = out.get(*whole).cloned() {
            out.insert((*part).to_owned(), t);
        }
    }
    out
}

/// `module.outputs.o` → the resource the output's value is rooted in.
fn output_resource(t: &Template, main: &File, e: &Expr) -> Option<Target> {
    let Expr::Member { object, property: output } = e else { return None };
    let Expr::Member { object: module, property } = object.as_ref() else { return None };
    let Expr::Ident(module) = module.as_ref() else { return None };
    if property != "outputs" {
        return None;
    }
    let m = main.decl(module).filter(|d| d.kind == DeclKind::Module)?;
    let file = t.resolve(&main.path, m.target.trim_matches('\''))?;
    let out = file.decls.iter().find(|d| d.kind == DeclKind::Output && d.name == *output)?;
    let root = out.value.as_ref()?.root_symbol()?;
    file.decl(root)
        .filter(|d| d.kind == DeclKind::Resource)
        .map(|r| Target::Resource(file.path.clone(), r.name.clone()))
}

/// Every role assignment to the bootstrap identity, expanded; problems for those that cannot be.
pub fn assignments(t: &Template, builtin: &[Role]) -> (Vec<Assignment>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in t.files.values() {
        for d in file.of_kind(DeclKind::Resource).filter(|d| d.resource_type().eq_ignore_ascii_case(ASSIGNMENT)) {
            let Some(principal) = d.path("properties.principalId") else { continue };
            let ours = matches!(principal, Expr::Ident(n) if n == "principalId")
                || principal.root_symbol() == Some("identity");
            if !ours {
                continue;
            }
            let scope = match d.prop("scope") {
                None => Scope::ResourceGroup,
                Some(e) => match e.root_symbol().and_then(|s| file.decl(s)) {
                    Some(r) => Scope::Resource(file.path.clone(), r.name.clone(), r.resource_type().to_owned()),
                    None => {
                        problems.push(Finding::new(
                            rule::ROLE_COVERAGE,
                            &file.path,
                            d.line,
                            format!("`{}`: its scope is not a resource of this file", d.name),
                        ));
                        continue;
                    }
                },
            };
            let Some(role_expr) = d.path("properties.roleDefinitionId") else { continue };
            let roles = match roles_of(file, d, role_expr, builtin) {
                Ok(r) => r,
                Err(why) => {
                    problems.push(Finding::new(
                        rule::ROLE_COVERAGE,
                        &file.path,
                        d.line,
                        format!("`{}`: {why}", d.name),
                    ));
                    continue;
                }
            };
            for role in roles {
                out.push(Assignment {
                    file: file.path.clone(),
                    symbol: d.name.clone(),
                    line: d.line,
                    role,
                    scope: scope.clone(),
                });
            }
        }
    }
    (out, problems)
}

/// The role definitions an assignment's `roleDefinitionId` names (several for a `for`).
fn roles_of(file: &File, d: &Decl, e: &Expr, builtin: &[Role]) -> Result<Vec<Role>, String> {
    // A custom role of this file: `x.id`.
    if let Expr::Member { object, property } = e {
        if let (Expr::Ident(sym), "id") = (object.as_ref(), property.as_str()) {
            let def = file.decl(sym).filter(|x| x.resource_type().eq_ignore_ascii_case(DEFINITION));
            return def
                .map(|x| vec![custom_role(x, &file.path)])
                .ok_or_else(|| format!("`{sym}` is not a role definition of this file"));
        }
    }
    let Expr::Call { func, args, .. } = e else {
        return Err("roleDefinitionId is neither subscriptionResourceId(…) nor a role definition's id".into());
    };
    if !func.eq_ignore_ascii_case("subscriptionResourceId") || args.len() != 2 {
        return Err(format!("roleDefinitionId calls {func}, not subscriptionResourceId(type, guid)"));
    }
    let guids = guids_of(file, d, &args[1])?;
    guids
        .into_iter()
        .map(|g| {
            builtin
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(&g))
                .cloned()
                .ok_or_else(|| format!("role {g} is not in {ROLES_FILE}"))
        })
        .collect()
}

/// The GUID literals an expression stands for: a literal, a `var`, `roles.x`, or the loop
/// variable of the assignment's `for` over a list.
fn guids_of(file: &File, d: &Decl, e: &Expr) -> Result<Vec<String>, String> {
    if let Some(s) = e.literal() {
        return Ok(vec![s]);
    }
    match e {
        Expr::Ident(n) => {
            if let Some(Expr::For { vars, source, .. }) = &d.value {
                if vars.first() == Some(n) {
                    return guids_of(file, d, source);
                }
            }
            let v = file.decl(n).filter(|x| x.kind == DeclKind::Var).and_then(|x| x.value.as_ref());
            match v {
                Some(Expr::Array(items)) => {
                    items.iter().map(|i| guids_of(file, d, i)).collect::<Result<Vec<_>, _>>().map(|v| v.concat())
                }
                Some(v) => guids_of(file, d, v),
                None => Err(format!("`{n}` is not a var of this file")),
            }
        }
        Expr::Member { object, property } => {
            let Expr::Ident(map) = object.as_ref() else { return Err("an unreadable role id".into()) };
            let props = file
                .decl(map)
                .and_then(|x| x.value.as_ref())
                .and_then(Expr::object)
                .ok_or(format!("`{map}` is not an object var"))?;
            find(props, property)
                .and_then(Expr::literal)
                .map(|s| vec![s])
                .ok_or(format!("`{map}.{property}` is not a literal"))
        }
        _ => Err("an unreadable role id".into()),
    }
}

fn strings(e: Option<&Expr>) -> Vec<String> {
    match e {
        Some(Expr::Array(items)) => items.iter().filter_map(Expr::literal).collect(),
        _ => Vec::new(),
    }
}

/// A `Microsoft.Authorization/roleDefinitions` of the template, from its first permissions block.
fn custom_role(d: &Decl, file_path: &str) -> Role {
    let block = match d.path("properties.permissions") {
        Some(Expr::Array(items)) => items.first().and_then(Expr::object).unwrap_or(&[]),
        _ => &[],
    };
    let name = d.path("properties.roleName").and_then(Expr::literal).unwrap_or_else(|| d.name.clone());
    Role {
        id: d.name.clone(),
        name,
        source: file_path.to_owned(),
        actions: strings(find(block, "actions")),
        not_actions: strings(find(block, "notActions")),
        data_actions: strings(find(block, "dataActions")),
        not_data_actions: strings(find(block, "notDataActions")),
        broad: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_as_plan_spells_them() {
        let r = Role {
            id: "x".into(),
            name: "x".into(),
            source: String::new(),
            actions: vec!["*/read".into()],
            not_actions: vec![],
            data_actions: vec![],
            not_data_actions: vec![],
            broad: false,
        };
        assert!(grants(&r, "action", "Microsoft.ContainerRegistry/registries/pull/read"));
        assert!(!grants(&r, "dataAction", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"));
        assert!(!grants(&r, "noRbac", "x/read"));
    }
}
