//! Azure RBAC matching, shared by the binary (`plan --permissions` suggests roles) and
//! `infra/verify` (the template's assignments cover every phase): one role-definition shape and
//! one wildcard rule, so the two cannot disagree on what a role grants.

use serde::{Deserialize, Serialize};

/// Azure's wildcard match: `*` is any run of characters, `/` included; case is ignored.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if n.len() < first.len() + last.len() || !n.starts_with(first) || !n.ends_with(last) {
        return false;
    }
    let mut rest = &n[first.len()..n.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a permission is an action or a data action: a role's actions never grant data
/// actions, nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Action,
    DataAction,
}

/// A role definition (`infra/roles/builtin-roles.json`, or a custom role of the template).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
    /// Never suggested; warned about when assigned (Owner, Contributor...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broad: bool,
}

impl Role {
    /// A matching action minus notActions (data actions likewise).
    pub fn grants(&self, kind: Kind, name: &str) -> bool {
        let (allow, deny) = match kind {
            Kind::Action => (&self.actions, &self.not_actions),
            Kind::DataAction => (&self.data_actions, &self.not_data_actions),
        };
        allow.iter().any(|a| wildcard(a, name)) && !deny.iter().any(|d| wildcard(d, name))
    }
}

/// The data file's shape.
#[derive(Debug, Deserialize)]
pub struct RolesFile {
    pub roles: Vec<Role>,
}

/// `Microsoft.X/things` from `Microsoft.X/things/sub/read`: the resource type a permission is
/// checked on.
pub fn provider_type(name: &str) -> Option<String> {
    let mut parts = name.split('/');
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

/// Where an expanded assignment applies, as `infra/roles/bootstrap-grants.json` spells it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// The managed resource group: every resource in it.
    ResourceGroup,
    /// A resource of this type (the stack has one of each).
    ResourceType(String),
}

/// One role assignment of the template to the bootstrap identity, expanded.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Assignment {
    /// `file:line symbol` in infra/.
    pub source: String,
    pub scope: Scope,
    pub role: Role,
}

/// A permission no assignment has to grant (an exception of the coverage check), and why.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Unenforced {
    pub name: String,
    pub why: String,
}

/// What the template grants the bootstrap identity (`vibedata-infra-verify grants`): the
/// emulator's grant table is seeded from it, so the stack authorises exactly what a real
/// install's identity would be.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GrantsFile {
    pub about: String,
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub unenforced: Vec<Unenforced>,
}

impl GrantsFile {
    /// Whether some assignment grants `name` at its resource (by the permission's type), or the
    /// permission is one no assignment has to grant.
    pub fn grants(&self, kind: Kind, name: &str) -> bool {
        if self.unenforced.iter().any(|u| u.name.eq_ignore_ascii_case(name)) {
            return true;
        }
        let ty = provider_type(name);
        self.assignments.iter().any(|a| {
            let reaches = match &a.scope {
                Scope::ResourceGroup => true,
                Scope::ResourceType(t) => ty.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(t)),
            };
            reaches && a.role.grants(kind, name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_span_slashes_and_case_is_ignored() {
        let cases = [
            ("*/read", "Microsoft.ContainerRegistry/registries/pull/read", true),
            ("*", "Microsoft.ContainerRegistry/registries/importImage/action", true),
            (
                "Microsoft.Automation/automationAccounts/*",
                "microsoft.automation/automationaccounts/runbooks/write",
                true,
            ),
            (
                "Microsoft.ContainerService/managedClusters/runcommand/action",
                "Microsoft.ContainerService/managedClusters/runCommand/action",
                true,
            ),
            ("*/read", "Microsoft.Storage/storageAccounts/listKeys/action", false),
            ("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true),
            ("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/read", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("ab*ba", "aba", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(wildcard(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn actions_never_grant_data_actions_and_not_actions_subtract() {
        let r = Role {
            id: "x".into(),
            name: "x".into(),
            source: String::new(),
            actions: vec!["*".into()],
            not_actions: vec!["Microsoft.Authorization/*/Write".into()],
            data_actions: vec![],
            not_data_actions: vec![],
            broad: true,
        };
        assert!(r.grants(Kind::Action, "Microsoft.ContainerRegistry/registries/importImage/action"));
        assert!(!r.grants(Kind::DataAction, "Microsoft.KeyVault/vaults/secrets/getSecret/action"));
        assert!(!r.grants(Kind::Action, "microsoft.authorization/roleAssignments/write"));
    }

    fn role(actions: &[&str], data: &[&str]) -> Role {
        Role {
            id: "r".into(),
            name: "r".into(),
            source: String::new(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            not_actions: vec![],
            data_actions: data.iter().map(|s| s.to_string()).collect(),
            not_data_actions: vec![],
            broad: false,
        }
    }

    #[test]
    fn an_assignment_grants_only_on_its_scope() {
        let f = GrantsFile {
            about: String::new(),
            assignments: vec![
                Assignment { source: "a".into(), scope: Scope::ResourceGroup, role: role(&["*/read"], &[]) },
                Assignment {
                    source: "b".into(),
                    scope: Scope::ResourceType("Microsoft.KeyVault/vaults".into()),
                    role: role(&[], &["Microsoft.KeyVault/vaults/secrets/*"]),
                },
                Assignment {
                    source: "c".into(),
                    scope: Scope::ResourceType("Microsoft.Storage/storageAccounts".into()),
                    role: role(&["Microsoft.KeyVault/vaults/delete"], &[]),
                },
            ],
            unenforced: vec![Unenforced { name: "Microsoft.X/locations/operationResults/read".into(), why: "".into() }],
        };
        let cases = [
            (Kind::Action, "Microsoft.Automation/automationAccounts/runbooks/read", true),
            (Kind::DataAction, "Microsoft.KeyVault/vaults/secrets/getSecret/action", true),
            (Kind::Action, "Microsoft.KeyVault/vaults/secrets/getSecret/action", false),
            // A role on another resource type does not reach this one.
            (Kind::Action, "Microsoft.KeyVault/vaults/delete", false),
            (Kind::Action, "microsoft.x/locations/operationresults/read", true),
            (Kind::Action, "Microsoft.Storage/storageAccounts/listKeys/action", false),
        ];
        for (kind, name, want) in cases {
            assert_eq!(f.grants(kind, name), want, "{kind:?} {name}");
        }
    }
}
