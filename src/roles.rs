//! The built-in role definitions the binary's permissions are matched against
//! (`infra/roles/builtin-roles.json`, sources named there), and the narrowest roles that cover a
//! phase's set: what `plan --permissions` suggests. Pure.

use std::sync::OnceLock;

use serde::Serialize;

use crate::azure::permission::{Kind, Permission};

pub use vibedata_rbac::Role;

/// Whether `role` grants `p` (a no-RBAC call is granted by no role).
pub fn grants(role: &Role, p: &Permission) -> bool {
    match p.kind {
        Kind::Action => role.grants(vibedata_rbac::Kind::Action, p.name),
        Kind::DataAction => role.grants(vibedata_rbac::Kind::DataAction, p.name),
        Kind::NoRbac => false,
    }
}

/// How much a role grants, roughly: wildcards count for many. The narrowest cover wins.
fn breadth(role: &Role) -> usize {
    role.actions.iter().chain(&role.data_actions).map(|a| if a.contains('*') { 20 } else { 1 }).sum()
}

/// The roles of the data file.
pub fn builtin() -> &'static [Role] {
    static ROLES: OnceLock<Vec<Role>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let file: vibedata_rbac::RolesFile =
            serde_json::from_str(include_str!("../infra/roles/builtin-roles.json")).expect("the role data file parses");
        file.roles
    })
}

/// The narrowest non-broad built-in role granting `name`, as an action or else as a data action:
/// the role an authorization failure suggests.
pub fn narrowest_for(name: &str) -> Option<Suggested> {
    [vibedata_rbac::Kind::Action, vibedata_rbac::Kind::DataAction].into_iter().find_map(|kind| {
        builtin()
            .iter()
            .filter(|r| !r.broad && r.grants(kind, name))
            .min_by_key(|r| breadth(r))
            .map(|r| Suggested { name: r.name.clone(), id: r.id.clone() })
    })
}

/// A suggested role, as `plan --permissions` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggested {
    pub name: String,
    pub id: String,
}

/// The narrowest non-broad roles that together grant every permission in `needs` (greedy: the
/// role covering most of what is left, narrowest first on ties), and the permissions no role
/// grants (a custom role in `infra/` must).
pub fn suggest(needs: &[Permission]) -> (Vec<Suggested>, Vec<Permission>) {
    let mut left: Vec<Permission> = needs.iter().filter(|p| p.kind != Kind::NoRbac).copied().collect();
    let candidates: Vec<&Role> = builtin().iter().filter(|r| !r.broad).collect();
    let mut chosen = Vec::new();
    loop {
        let best = candidates
            .iter()
            .map(|r| (r, left.iter().filter(|p| grants(r, p)).count()))
            .filter(|(_, n)| *n > 0)
            .max_by(|(a, na), (b, nb)| na.cmp(nb).then(breadth(b).cmp(&breadth(a))));
        let Some((role, _)) = best else { break };
        left.retain(|p| !grants(role, p));
        chosen.push(Suggested { name: role.name.clone(), id: role.id.clone() });
    }
    (chosen, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::{acr, aks, blob, keyvault};

    fn role(name: &str) -> &'static Role {
        builtin().iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} in the data file"))
    }

    #[test]
    fn grants_follow_azure_rules() {
        let cases: &[(&str, &Permission, bool)] = &[
            ("Reader", &acr::PULL, true),
            ("Reader", &acr::IMPORT, false),
            ("Contributor", &acr::IMPORT, true),
            ("Contributor", &blob::BLOB_READ, false),
            ("Owner", &keyvault::GET_SECRET, false),
            ("Key Vault Secrets Officer", &keyvault::RECOVER, true),
            ("Key Vault Secrets User", &keyvault::SET_SECRET, false),
            ("Azure Kubernetes Service Cluster Admin Role", &aks::RUN_COMMAND, true),
            ("Azure Kubernetes Service Cluster Admin Role", &aks::COMMAND_RESULTS, false),
            ("Storage Blob Data Reader", &blob::BLOB_WRITE, false),
        ];
        for (name, p, want) in cases {
            assert_eq!(grants(role(name), p), *want, "{name} grants {}", p.name);
        }
        let guarded =
            Role { not_actions: vec!["Microsoft.Authorization/*/Write".into()], ..role("Contributor").clone() };
        let write = Permission::action("microsoft.authorization/roleAssignments/write", "x");
        assert!(!grants(&guarded, &write), "notActions subtract, in any case");
    }

    #[test]
    fn the_importer_role_is_suggested_for_import_not_contributor() {
        let (roles, left) = suggest(&[acr::READ, acr::IMPORT, acr::PULL]);
        assert_eq!(
            roles,
            [Suggested {
                name: "Container Registry Data Importer and Data Reader".into(),
                id: "577a9874-89fd-4f24-9dbd-b5034d0ad23a".into()
            }]
        );
        assert!(left.is_empty());
    }

    #[test]
    fn what_no_built_in_role_grants_is_left_over() {
        let odd = Permission::action("Microsoft.Example/widgets/spin/action", "Microsoft.Example/widgets");
        let (roles, left) = suggest(&[odd, keyvault::GET_SECRET, acr::CREDENTIALS]);
        assert_eq!(roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["Key Vault Secrets User"]);
        assert_eq!(left, [odd], "a no-RBAC call needs no role");
    }

    #[test]
    fn every_role_of_the_data_file_names_its_source() {
        assert!(builtin().len() >= 20);
        for r in builtin() {
            assert!(!r.source.is_empty() && r.id.len() == 36, "{}", r.name);
        }
    }
}
