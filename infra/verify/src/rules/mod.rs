//! The RFC's rules, one named rule each, applied per resource type from [`table`].

pub mod table;

use crate::bicep::{find, Decl, DeclKind, Expr, File};
use crate::finding::{rule, Finding};
use crate::template::{join, Template};
use table::{Diagnostics, Network, Val};

const DIAGNOSTIC_SETTINGS: &str = "Microsoft.Insights/diagnosticSettings";
const PRIVATE_ENDPOINTS: &str = "Microsoft.Network/privateEndpoints";
const ZONE_GROUPS: &str = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups";

pub fn check(t: &Template) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in t.files.values() {
        for d in file.of_kind(DeclKind::Resource).filter(|d| !d.existing) {
            let f = |rule, msg: String| Finding::new(rule, &file.path, d.line, msg);
            let Some(rules) = table::rules_for(d.resource_type()) else {
                out.push(f(
                    rule::RULES_TABLE,
                    format!(
                        "`{}` is a {}, which has no row in the rules table (infra/verify/src/rules/table.rs)",
                        d.name,
                        d.resource_type()
                    ),
                ));
                continue;
            };
            if matches!(rules.diagnostics, Diagnostics::Required) && !has_diagnostics(file, d) {
                out.push(f(
                    rule::DIAGNOSTIC_SETTINGS,
                    format!(
                        "`{}` ({}) has no diagnostic setting to the Log Analytics workspace",
                        d.name,
                        d.resource_type()
                    ),
                ));
            }
            out.extend(network(t, file, d, &rules.network));
            match d.resource_type() {
                "Microsoft.KeyVault/vaults" => out.extend(key_vault(file, d)),
                "Microsoft.Authorization/roleAssignments" => out.extend(role_assignment(file, d)),
                "Microsoft.KeyVault/vaults/secrets" => out.extend(secret_value(file, d)),
                _ => {}
            }
        }
        out.extend(plain_secrets(t, file));
    }
    out
}

fn value_is(e: Option<&Expr>, want: Val) -> Result<(), String> {
    match (e, want) {
        (None, _) => Err("is not set".into()),
        (Some(Expr::Bool(b)), Val::Bool(w)) if *b == w => Ok(()),
        (Some(e), Val::Str(w)) if e.literal().is_some_and(|s| s.eq_ignore_ascii_case(w)) => Ok(()),
        (Some(Expr::Bool(b)), _) => Err(format!("is {b}")),
        (Some(e), _) => Err(e.literal().map_or("is not a literal".into(), |s| format!("is '{s}'"))),
    }
}

fn show(v: Val) -> String {
    match v {
        Val::Str(s) => format!("'{s}'"),
        Val::Bool(b) => b.to_string(),
    }
}

fn network(t: &Template, file: &File, d: &Decl, net: &Network) -> Vec<Finding> {
    let mut out = Vec::new();
    let f = |rule, msg: String| Finding::new(rule, &file.path, d.line, msg);
    let (path, value, endpoint) = match *net {
        Network::None | Network::Public(_) => return out,
        Network::Private { path, value } => (path, value, true),
        Network::PrivateOtherwise { path, value, .. } => (path, value, false),
    };
    match table::exception(rule::PUBLIC_NETWORK_ACCESS, &file.path, &d.name) {
        Some(ex) => {
            if let Some((p, v)) = ex.instead {
                if let Err(why) = value_is(d.path(p), v) {
                    out.push(f(
                        rule::PUBLIC_NETWORK_ACCESS,
                        format!("`{}` is excepted ({}) only with {p} = {}, but it {why}", d.name, ex.why, show(v)),
                    ));
                }
            }
        }
        None => {
            if let Err(why) = value_is(d.path(path), value) {
                out.push(f(
                    rule::PUBLIC_NETWORK_ACCESS,
                    format!("`{}` ({}) must have {path} = {}, but it {why}", d.name, d.resource_type(), show(value)),
                ));
            }
        }
    }
    if endpoint && table::exception(rule::PRIVATE_ENDPOINT, &file.path, &d.name).is_none() {
        match private_endpoint(t, file, &d.name) {
            None => out.push(f(
                rule::PRIVATE_ENDPOINT,
                format!("`{}` ({}) has no private endpoint", d.name, d.resource_type()),
            )),
            Some(false) => out.push(f(
                rule::DNS_ZONE_GROUP,
                format!(
                    "the private endpoint of `{}` has no DNS zone group, so its private name does not resolve",
                    d.name
                ),
            )),
            Some(true) => {}
        }
    }
    out
}

fn has_diagnostics(file: &File, d: &Decl) -> bool {
    file.of_kind(DeclKind::Resource).filter(|s| s.resource_type() == DIAGNOSTIC_SETTINGS).any(|s| {
        s.prop("scope").and_then(Expr::root_symbol) == Some(d.name.as_str())
            && s.path("properties.workspaceId").is_some_and(|w| w.literal().is_none_or(|l| !l.is_empty()))
    })
}

/// Whether a private endpoint targets `target` (declared here or through a module that declares
/// one for a parameter), and `Some(true)` when it also has a DNS zone group with zones.
fn private_endpoint(t: &Template, file: &File, target: &str) -> Option<bool> {
    let targets = |pe: &Decl| -> Option<String> {
        let conns = pe.path("properties.privateLinkServiceConnections")?;
        let Expr::Array(items) = conns else { return None };
        items.iter().find_map(|c| {
            let props = find(c.object()?, "properties")?.object()?;
            find(props, "privateLinkServiceId")?.root_symbol().map(str::to_owned)
        })
    };
    for pe in file.of_kind(DeclKind::Resource).filter(|p| p.resource_type() == PRIVATE_ENDPOINTS) {
        if targets(pe).as_deref() == Some(target) {
            return Some(zone_group_for(file, &pe.name).is_some());
        }
    }
    for call in file.of_kind(DeclKind::Module) {
        let Some(callee) = t.resolve(&file.path, &call.target) else { continue };
        let args = call.path("params").and_then(Expr::object).unwrap_or(&[]);
        for pe in callee.of_kind(DeclKind::Resource).filter(|p| p.resource_type() == PRIVATE_ENDPOINTS) {
            let Some(param) = targets(pe).filter(|p| callee.decl(p).is_some_and(|d| d.kind == DeclKind::Param)) else {
                continue;
            };
            if find(args, &param).and_then(Expr::root_symbol) != Some(target) {
                continue;
            }
            let Some(zg) = zone_group_for(callee, &pe.name) else { return Some(false) };
            // Zones from a parameter the caller passes as an empty list are no zones.
            let empty_arg = match zg.path("properties.privateDnsZoneConfigs") {
                Some(Expr::For { source, .. }) => match source.as_ref() {
                    Expr::Ident(p) => matches!(find(args, p), Some(Expr::Array(a)) if a.is_empty()),
                    _ => false,
                },
                _ => false,
            };
            return Some(!empty_arg);
        }
    }
    None
}

fn zone_group_for<'a>(f: &'a File, pe: &str) -> Option<&'a Decl> {
    f.of_kind(DeclKind::Resource).find(|z| {
        z.resource_type() == ZONE_GROUPS
            && z.prop("parent").and_then(Expr::root_symbol) == Some(pe)
            && z.path("properties.privateDnsZoneConfigs").is_some_and(|c| !matches!(c, Expr::Array(a) if a.is_empty()))
    })
}

fn key_vault(file: &File, d: &Decl) -> Vec<Finding> {
    ["properties.enableSoftDelete", "properties.enablePurgeProtection"]
        .into_iter()
        .filter_map(|p| {
            value_is(d.path(p), Val::Bool(true)).err().map(|why| {
                Finding::new(
                    rule::KEY_VAULT_RECOVERY,
                    &file.path,
                    d.line,
                    format!("Key Vault `{}` must have {p} = true, but it {why}", d.name),
                )
            })
        })
        .collect()
}

fn role_assignment(file: &File, d: &Decl) -> Vec<Finding> {
    let mut out = Vec::new();
    if d.path("properties.principalType").is_none() {
        out.push(Finding::new(
            rule::ROLE_ASSIGNMENT,
            &file.path,
            d.line,
            format!(
                "role assignment `{}` does not name its principalType: a fresh identity fails with PrincipalNotFound",
                d.name
            ),
        ));
    }
    if !d.prop("name").is_some_and(|n| matches!(n, Expr::Call { func, .. } if func == "guid")) {
        out.push(Finding::new(
            rule::ROLE_ASSIGNMENT,
            &file.path,
            d.line,
            format!(
                "role assignment `{}` must be named with guid(scope, principal, role) so a redeploy finds it",
                d.name
            ),
        ));
    }
    out
}

/// Names that hold secrets; a trailing Name, Id, Uri or Url names where one is, which is not.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let locator = ["name", "id", "uri", "url"].iter().any(|s| n.ends_with(s));
    !locator
        && [
            "password",
            "secret",
            "credential",
            "token",
            "connectionstring",
            "sas",
            "apikey",
            "accountkey",
            "privatekey",
        ]
        .iter()
        .any(|w| n.contains(w))
}

fn secure_params(file: &File) -> Vec<&str> {
    file.of_kind(DeclKind::Param).filter(|p| p.has_decorator("secure")).map(|p| p.name.as_str()).collect()
}

/// The secure parameter an expression carries, seen through the file's variables.
fn carried_secret(file: &File, e: &Expr) -> Option<String> {
    let secure = secure_params(file);
    file.expand(e.references()).into_iter().find(|r| secure.contains(&r.as_str()))
}

fn plain_secrets(t: &Template, file: &File) -> Vec<Finding> {
    let mut out = Vec::new();
    let f = |line, msg: String| Finding::new(rule::NO_PLAIN_SECRET, &file.path, line, msg);
    for p in file.of_kind(DeclKind::Param) {
        if secret_name(&p.name) && !p.has_decorator("secure") {
            out.push(f(
                p.line,
                format!(
                    "parameter `{}` holds a secret but is not @secure(): ARM keeps it in the deployment history",
                    p.name
                ),
            ));
        }
    }
    for o in file.of_kind(DeclKind::Output) {
        let value = o.value.as_ref();
        let lists = value.is_some_and(|v| {
            let mut hit = false;
            v.walk(&mut |e| {
                if let Expr::Call { func, .. } = e {
                    hit |= func.starts_with("list");
                }
            });
            hit
        });
        if secret_name(&o.name) || lists || value.and_then(|v| carried_secret(file, v)).is_some() {
            out.push(f(
                o.line,
                format!("output `{}` returns a secret: outputs are plain text in the deployment", o.name),
            ));
        }
    }
    for call in file.of_kind(DeclKind::Module) {
        let Some(callee) = t.resolve(&file.path, &call.target) else { continue };
        let args = call.path("params").and_then(Expr::object).unwrap_or(&[]);
        for arg in args {
            let Some(source) = carried_secret(file, &arg.value) else { continue };
            let secure = callee.decl(&arg.key).is_some_and(|p| p.kind == DeclKind::Param && p.has_decorator("secure"));
            if !secure {
                out.push(f(
                    arg.line,
                    format!(
                        "`{}` passes the secret `{source}` to parameter `{}` of {}, which is not @secure()",
                        call.name,
                        arg.key,
                        join(&file.path, &call.target)
                    ),
                ));
            }
        }
    }
    out
}

/// A Key Vault secret's value comes from a secure parameter or is generated, never from a plain
/// parameter.
fn secret_value(file: &File, d: &Decl) -> Vec<Finding> {
    let Some(v) = d.path("properties.value") else { return Vec::new() };
    let secure = secure_params(file);
    // What a function such as guid() derives from a parameter is generated, not the parameter.
    let mut direct = Vec::new();
    let mut todo = vec![v];
    while let Some(e) = todo.pop() {
        match e {
            Expr::Call { .. } => {}
            Expr::Ident(n) => direct.push(n.clone()),
            Expr::Member { object, .. } | Expr::Index { object, .. } => todo.push(object),
            Expr::Str(parts) => todo.extend(parts.iter().filter_map(|p| match p {
                crate::bicep::StrPart::Interp(e) => Some(e),
                crate::bicep::StrPart::Text(_) => None,
            })),
            Expr::Other(items) => todo.extend(items),
            _ => {}
        }
    }
    file.expand(direct)
        .into_iter()
        .filter(|r| file.decl(r).is_some_and(|p| p.kind == DeclKind::Param) && !secure.contains(&r.as_str()))
        .map(|r| {
            Finding::new(
                rule::NO_PLAIN_SECRET,
                &file.path,
                d.line,
                format!("secret `{}` takes its value from `{r}`, which is not a @secure() parameter", d.name),
            )
        })
        .collect()
}
