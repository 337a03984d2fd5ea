//! The grant table: which RBAC permissions the stack identity lacks, and the permission each
//! request needs.
//!
//! Azure authorises every ARM call by an action derived from its path (`{namespace}/{type}/…/
//! {read|write|delete}`, a POST's last segment + `/action`) and the data planes by data actions.
//! [`required`] derives the same strings, with the irregular ones Microsoft's operations pages
//! list (azure-reference `specs/permissions.md` §1).
//!
//! The table is the stack identity's role assignments: `emulator.json`'s `grants` names the
//! file the local stack seeds it from (`infra/roles/bootstrap-grants.json`, the template's
//! assignments to the bootstrap identity, expanded by `vibedata-infra-verify grants`), so the
//! stack authorises what a real install's identity could do and no more. Without that key
//! everything is granted (a config of a test's own). The table is the bootstrap identity's:
//! the deployer's tokens (`identity.deployer`, the principal that deploys the template and owns
//! the managed resource group) are never refused, so tests set the platform up as a deployment
//! would and only the binary under test is held to the template's grants. On top, a test removes strings
//! (`PUT /_emulator/grants`). The request that needs a permission not granted gets the
//! service's own denial (`crate::faults::denied`); `GET {scope}/providers/Microsoft.Authorization/
//! permissions` answers from the table. Storage is Azurite's, which checks no role: a Blob
//! request is authorised here only when it comes through the `storageFront` listener
//! (`storage_front.rs`), the front the stack's `VIBEDATA_STACK_STORAGE_FRONT` names.

use std::sync::Mutex;

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// Action or data action, as role definitions separate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Action,
    DataAction,
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub kind: Kind,
    pub name: String,
}

impl Permission {
    fn action(name: impl Into<String>) -> Permission {
        Permission { kind: Kind::Action, name: name.into() }
    }

    fn data(name: impl Into<String>) -> Permission {
        Permission { kind: Kind::DataAction, name: name.into() }
    }
}

/// The stack identity's grants: its seeded assignments (none: everything), less what a test
/// denied.
#[derive(Debug, Default)]
pub struct Grants {
    seeded: Option<vibedata_rbac::GrantsFile>,
    denied: Mutex<Vec<Permission>>,
}

impl Grants {
    /// The table `emulator.json`'s `grants` file seeds (none: everything granted).
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Grants> {
        use anyhow::Context;
        let Some(path) = path else { return Ok(Grants::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading grants {}", path.display()))?;
        let file = serde_json::from_str(&text).with_context(|| format!("parsing grants {}", path.display()))?;
        Ok(Grants { seeded: Some(file), denied: Mutex::default() })
    }

    pub fn set_denied(&self, denied: Vec<Permission>) {
        *self.denied.lock().expect("grants lock") = denied;
    }

    pub fn denied(&self) -> Vec<Permission> {
        self.denied.lock().expect("grants lock").clone()
    }

    /// Whether `p` is missing for the caller whose token names `caller` (its `oid`): no seeded
    /// assignment grants it, or a test denied it (matched as Azure does: `*` spans `/`, case
    /// ignored). The deployer is refused nothing.
    pub fn denies(&self, p: &Permission, caller: Option<&str>, cfg: &crate::config::Config) -> bool {
        let deployer = cfg.identity.deployer.as_ref().map(|d| d.principal_id.as_str());
        let is_deployer = caller.zip(deployer).is_some_and(|(c, d)| c.eq_ignore_ascii_case(d));
        !is_deployer && self.denies_bootstrap(p)
    }

    /// Whether `p` is missing for the bootstrap identity.
    fn denies_bootstrap(&self, p: &Permission) -> bool {
        let kind = match p.kind {
            Kind::Action => vibedata_rbac::Kind::Action,
            Kind::DataAction => vibedata_rbac::Kind::DataAction,
        };
        if self.seeded.as_ref().is_some_and(|f| !f.grants(kind, &p.name)) {
            return true;
        }
        self.denied
            .lock()
            .expect("grants lock")
            .iter()
            .any(|d| d.kind == p.kind && vibedata_rbac::wildcard(&d.name, &p.name))
    }

    /// The role lists ARM's permissions list gives at the resource group: the assignments made
    /// there (those on a single resource are not in it, as in Azure), less what is denied.
    fn at_group(&self) -> Vec<serde_json::Value> {
        let denied = self.denied();
        let names = |k: Kind| denied.iter().filter(|d| d.kind == k).map(|d| d.name.clone()).collect::<Vec<_>>();
        let entry = |actions: &[String], not_actions: &[String], data: &[String], not_data: &[String]| {
            let join = |a: &[String], b: Vec<String>| a.iter().cloned().chain(b).collect::<Vec<_>>();
            serde_json::json!({
                "actions": actions,
                "notActions": join(not_actions, names(Kind::Action)),
                "dataActions": data,
                "notDataActions": join(not_data, names(Kind::DataAction)),
            })
        };
        match &self.seeded {
            None => vec![entry(&["*".into()], &[], &["*".into()], &[])],
            Some(f) => f
                .assignments
                .iter()
                .filter(|a| a.scope == vibedata_rbac::Scope::ResourceGroup)
                .map(|a| entry(&a.role.actions, &a.role.not_actions, &a.role.data_actions, &a.role.not_data_actions))
                .collect(),
        }
    }
}

/// `GET {scope}/providers/Microsoft.Authorization/permissions`: the group's grants.
pub fn effective(st: &crate::state::Shared, _: &crate::arm::ArmRequest) -> axum::response::Response {
    crate::http::json(axum::http::StatusCode::OK, serde_json::json!({"value": st.grants.at_group()}))
}

/// The permission a request needs, or `None` for what RBAC does not guard (token issuance,
/// subscription and provider discovery, the apps' probes, `/_emulator`).
pub fn required(method: &Method, segs: &[&str], query: Option<&str>, api: &str) -> Option<Permission> {
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let read_or_write = if matches!(*method, Method::GET | Method::HEAD) { "read" } else { "write" };
    match api {
        "keyvault" => return Some(Permission::data(format!("Microsoft.KeyVault/vaults/{}", vault_action(method, &l)))),
        "search.indexes" => {
            return Some(Permission::action(format!("Microsoft.Search/searchServices/indexes/{read_or_write}")));
        }
        "foundry.agents" | "foundry.indexes" => {
            let kind = api.trim_start_matches("foundry.");
            let verb = if *method == Method::DELETE { "delete" } else { read_or_write };
            return Some(Permission::data(format!("Microsoft.CognitiveServices/accounts/AIServices/{kind}/{verb}")));
        }
        "storage.blob" => return Some(blob_permission(method, &l[1.min(l.len())..], query)),
        _ => {}
    }
    if l.first() != Some(&"subscriptions") || l.len() < 3 {
        return None;
    }
    // `/subscriptions/{s}/resourcegroups/{rg}` and its resource list.
    match &l[2..] {
        ["resourcegroups", _] => {
            return Some(Permission::action(format!(
                "Microsoft.Resources/subscriptions/resourceGroups/{}",
                verb(method)
            )))
        }
        ["resourcegroups", _, "resources"] => {
            return Some(Permission::action("Microsoft.Resources/subscriptions/resourceGroups/resources/read"))
        }
        _ => {}
    }
    if l.contains(&"microsoft.authorization") {
        return None;
    }
    let p = l.iter().position(|s| *s == "providers")?;
    let namespace = segs.get(p + 1)?;
    let rest = &segs[p + 2..];
    if rest.is_empty() || namespace.eq_ignore_ascii_case("Microsoft.Authorization") {
        return None;
    }
    if let Some(irregular) = irregular(namespace, &l[p + 2..], method) {
        return Some(Permission::action(irregular));
    }
    // Alternating type/name; a trailing odd segment on a POST is the action.
    let mut types: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if i + 1 == rest.len() && *method == Method::POST {
            return Some(Permission::action(format!("{namespace}/{}/{}/action", types.join("/"), rest[i])));
        }
        types.push(rest[i]);
        i += 2;
    }
    Some(Permission::action(format!("{namespace}/{}/{}", types.join("/"), verb(method))))
}

fn verb(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    }
}

/// What a Blob request needs (Microsoft's "Authorize access to blobs" table of data operations):
/// container operations are actions even over the Blob endpoint, listing and blob operations
/// data actions. `l` is the path after the account, lower-cased.
fn blob_permission(method: &Method, l: &[&str], query: Option<&str>) -> Permission {
    let q = crate::http::query_map(query);
    let comp = q.get("comp").map(|c| c.to_ascii_lowercase());
    let container = "Microsoft.Storage/storageAccounts/blobServices/containers";
    let reads = matches!(*method, Method::GET | Method::HEAD);
    match (l.len(), comp.as_deref()) {
        (0, Some("userdelegationkey")) => {
            Permission::action("Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action")
        }
        (0, _) if reads => Permission::action(format!("{container}/read")),
        (0, _) => Permission::action("Microsoft.Storage/storageAccounts/blobServices/write"),
        (1, Some("list")) => Permission::data(format!("{container}/blobs/read")),
        (1, _) if reads => Permission::action(format!("{container}/read")),
        (1, _) if *method == Method::DELETE => Permission::action(format!("{container}/delete")),
        (1, _) => Permission::action(format!("{container}/write")),
        (_, Some("tags")) => {
            Permission::data(format!("{container}/blobs/tags/{}", if reads { "read" } else { "write" }))
        }
        _ if reads => Permission::data(format!("{container}/blobs/read")),
        _ if *method == Method::DELETE => Permission::data(format!("{container}/blobs/delete")),
        _ => Permission::data(format!("{container}/blobs/write")),
    }
}

/// Key Vault's secret data actions (the Key Vault Secrets User / Officer role pages).
fn vault_action(method: &Method, l: &[&str]) -> &'static str {
    match (method, l) {
        (&Method::GET, ["secrets"]) | (&Method::GET, ["secrets", _, "versions"]) => "secrets/readMetadata/action",
        (&Method::GET, ["secrets", ..]) => "secrets/getSecret/action",
        (&Method::POST, ["deletedsecrets", _, "recover"]) => "secrets/recover/action",
        (&Method::DELETE, ["deletedsecrets", ..]) => "secrets/purge/action",
        (&Method::GET, ["deletedsecrets", ..]) => "secrets/readMetadata/action",
        (&Method::DELETE, ["secrets", ..]) => "secrets/delete",
        (&Method::POST, ["secrets", _, "backup"]) => "secrets/backup/action",
        _ => "secrets/setSecret/action",
    }
}

/// The strings that do not follow the type/name rule (specs/permissions.md §1 [P]).
fn irregular(namespace: &str, l: &[&str], method: &Method) -> Option<String> {
    if !namespace.eq_ignore_ascii_case("Microsoft.Automation") {
        return None;
    }
    let base = "Microsoft.Automation/automationAccounts/runbooks";
    Some(match l {
        ["automationaccounts", _, "runbooks", _, "draft", "content"] => {
            format!("{base}/draft/content/{}", verb(method))
        }
        ["automationaccounts", _, "runbooks", _, "publish", "operationresults", ..] => {
            format!("{base}/operationResults/read")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path: &str, api: &str) -> Option<String> {
        let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        required(&method, &segs, query, api).map(|p| p.name)
    }

    #[test]
    fn arm_actions_follow_the_path() {
        let rg = "/subscriptions/s/resourceGroups/rg";
        let p = |t: &str| format!("{rg}/providers/{t}");
        let cases = [
            (Method::GET, rg.to_owned(), "Microsoft.Resources/subscriptions/resourceGroups/read"),
            (Method::GET, format!("{rg}/resources"), "Microsoft.Resources/subscriptions/resourceGroups/resources/read"),
            (
                Method::POST,
                p("Microsoft.ContainerRegistry/registries/r/importImage"),
                "Microsoft.ContainerRegistry/registries/importImage/action",
            ),
            (
                Method::GET,
                p("Microsoft.ContainerRegistry/locations/l/operationResults/x"),
                "Microsoft.ContainerRegistry/locations/operationResults/read",
            ),
            (
                Method::GET,
                p("Microsoft.Automation/automationAccounts/a/runbooks/r"),
                "Microsoft.Automation/automationAccounts/runbooks/read",
            ),
            (
                Method::PUT,
                p("Microsoft.Automation/automationAccounts/a/runbooks/r/draft/content"),
                "Microsoft.Automation/automationAccounts/runbooks/draft/content/write",
            ),
            (
                Method::GET,
                p("Microsoft.Automation/automationAccounts/a/runbooks/r/draft/content/operationResults/x"),
                "Microsoft.Automation/automationAccounts/runbooks/draft/operationResults/read",
            ),
            (
                Method::POST,
                p("Microsoft.Automation/automationAccounts/a/runbooks/r/publish"),
                "Microsoft.Automation/automationAccounts/runbooks/publish/action",
            ),
            (
                Method::GET,
                p("Microsoft.Automation/automationAccounts/a/runbooks/r/publish/operationResults/x"),
                "Microsoft.Automation/automationAccounts/runbooks/operationResults/read",
            ),
            (
                Method::POST,
                p("Microsoft.ContainerService/managedClusters/c/runCommand"),
                "Microsoft.ContainerService/managedClusters/runCommand/action",
            ),
            (
                Method::GET,
                p("Microsoft.ContainerService/managedClusters/c/commandResults/x"),
                "Microsoft.ContainerService/managedClusters/commandResults/read",
            ),
            (
                Method::POST,
                p("Microsoft.Storage/storageAccounts/s/listKeys"),
                "Microsoft.Storage/storageAccounts/listKeys/action",
            ),
            (
                Method::POST,
                p("Microsoft.Web/sites/w/config/appsettings/list"),
                "Microsoft.Web/sites/config/list/action",
            ),
            (
                Method::GET,
                p("Microsoft.Network/privateEndpoints/e/privateDnsZoneGroups"),
                "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
            ),
        ];
        for (m, path, want) in cases {
            assert_eq!(need(m.clone(), &path, "arm").as_deref(), Some(want), "{m} {path}");
        }
        assert_eq!(need(Method::GET, "/subscriptions/s/providers/Microsoft.Web", "arm"), None);
        assert_eq!(need(Method::GET, &format!("{rg}/providers/Microsoft.Authorization/permissions"), "arm"), None);
    }

    #[test]
    fn vault_data_actions() {
        assert_eq!(
            need(Method::GET, "/secrets/pw", "keyvault").as_deref(),
            Some("Microsoft.KeyVault/vaults/secrets/getSecret/action")
        );
        assert_eq!(
            need(Method::GET, "/secrets", "keyvault").as_deref(),
            Some("Microsoft.KeyVault/vaults/secrets/readMetadata/action")
        );
        assert_eq!(
            need(Method::PUT, "/secrets/pw", "keyvault").as_deref(),
            Some("Microsoft.KeyVault/vaults/secrets/setSecret/action")
        );
        assert_eq!(
            need(Method::POST, "/deletedsecrets/pw/recover", "keyvault").as_deref(),
            Some("Microsoft.KeyVault/vaults/secrets/recover/action")
        );
    }

    #[test]
    fn blob_operations_follow_the_data_operations_table() {
        let c = "Microsoft.Storage/storageAccounts/blobServices/containers";
        let cases = [
            (Method::PUT, "/devstoreaccount1/ledger?restype=container", format!("{c}/write")),
            (Method::GET, "/devstoreaccount1/ledger?restype=container", format!("{c}/read")),
            (Method::DELETE, "/devstoreaccount1/ledger?restype=container", format!("{c}/delete")),
            (Method::GET, "/devstoreaccount1/ledger?restype=container&comp=list", format!("{c}/blobs/read")),
            (Method::GET, "/devstoreaccount1?comp=list", format!("{c}/read")),
            (Method::HEAD, "/devstoreaccount1/ledger/runs/a.json", format!("{c}/blobs/read")),
            (Method::GET, "/devstoreaccount1/ledger/runs/a.json", format!("{c}/blobs/read")),
            (Method::PUT, "/devstoreaccount1/ledger/runs/a.json", format!("{c}/blobs/write")),
            (Method::PUT, "/devstoreaccount1/ledger/lock?comp=lease", format!("{c}/blobs/write")),
            (Method::DELETE, "/devstoreaccount1/ledger/runs/a.json", format!("{c}/blobs/delete")),
            (Method::GET, "/devstoreaccount1/ledger/a?comp=tags", format!("{c}/blobs/tags/read")),
            (
                Method::POST,
                "/devstoreaccount1?restype=service&comp=userdelegationkey",
                "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action".to_owned(),
            ),
        ];
        for (m, path, want) in cases {
            assert_eq!(need(m.clone(), path, "storage.blob").as_deref(), Some(want.as_str()), "{m} {path}");
        }
    }

    #[test]
    fn foundry_data_actions() {
        let base = "Microsoft.CognitiveServices/accounts/AIServices";
        let cases = [
            (Method::GET, "/api/projects/p/agents/triage", "foundry.agents", format!("{base}/agents/read")),
            (Method::POST, "/api/projects/p/agents/triage/versions", "foundry.agents", format!("{base}/agents/write")),
            (
                Method::PATCH,
                "/api/projects/p/indexes/docs/versions/1",
                "foundry.indexes",
                format!("{base}/indexes/write"),
            ),
            (Method::GET, "/api/projects/p/indexes", "foundry.indexes", format!("{base}/indexes/read")),
        ];
        for (m, path, api, want) in cases {
            assert_eq!(need(m.clone(), path, api).as_deref(), Some(want.as_str()), "{m} {path}");
        }
    }

    #[test]
    fn a_denied_pattern_matches_as_azure_does() {
        let g = Grants::default();
        g.set_denied(vec![Permission::action("microsoft.automation/automationAccounts/runbooks/*")]);
        assert!(
            g.denies_bootstrap(&Permission::action("Microsoft.Automation/automationAccounts/runbooks/publish/action"))
        );
        assert!(
            !g.denies_bootstrap(&Permission::data("Microsoft.Automation/automationAccounts/runbooks/publish/action"))
        );
        assert!(!g.denies_bootstrap(&Permission::action("Microsoft.Automation/automationAccounts/read")));
    }

    #[test]
    fn a_seeded_table_grants_only_what_its_assignments_do() {
        let dir = std::env::temp_dir().join(format!("grants-{}.json", std::process::id()));
        let file = serde_json::json!({"about": "", "assignments": [
            {"source": "a", "scope": "resourceGroup", "role": {"id": "r", "name": "Reader", "actions": ["*/read"]}},
            {"source": "b", "scope": {"resourceType": "Microsoft.KeyVault/vaults"},
             "role": {"id": "k", "name": "Secrets User", "dataActions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]}},
        ]});
        std::fs::write(&dir, file.to_string()).unwrap();
        let g = Grants::load(Some(&dir)).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert!(!g.denies_bootstrap(&Permission::action("Microsoft.Automation/automationAccounts/runbooks/read")));
        assert!(!g.denies_bootstrap(&Permission::data("Microsoft.KeyVault/vaults/secrets/getSecret/action")));
        assert!(g.denies_bootstrap(&Permission::data("Microsoft.KeyVault/vaults/secrets/setSecret/action")));
        assert!(
            g.denies_bootstrap(&Permission::action("Microsoft.Automation/automationAccounts/runbooks/publish/action"))
        );
        // A test's denial applies on top of the seed.
        g.set_denied(vec![Permission::action("*/read")]);
        assert!(g.denies_bootstrap(&Permission::action("Microsoft.Automation/automationAccounts/runbooks/read")));
    }
}
