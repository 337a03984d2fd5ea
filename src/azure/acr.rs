//! The customer registry's management plane: its network rules, and `importImage`.
//!
//! `importImage` is executed by the ACR service itself, so only ARM has to be reachable from
//! here — which is why it is the default way in, and why the registry's network rules matter.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::arm::Arm;
use super::identity::Secret;
use super::permission::{Kind, Permission};
use super::pipeline::Request;
use super::AzureError;

/// The api-version of the 2023-07-01 stable spec that `importImage` is documented in.
pub const API_VERSION: &str = "2023-07-01";

pub const REGISTRY: &str = "Microsoft.ContainerRegistry/registries";

/// [`Acr::get`].
pub const READ: Permission = Permission::action("Microsoft.ContainerRegistry/registries/read", REGISTRY);
/// [`Acr::import`]: the control-plane action, not a data role (`Azure/acr#237`).
pub const IMPORT: Permission =
    Permission::action("Microsoft.ContainerRegistry/registries/importImage/action", REGISTRY);
/// Polling the import's `Location` (`…/providers/Microsoft.ContainerRegistry/locations/{l}/operationResults/…`,
/// a subscription-level path). Not in the Data Importer role; whether ARM demands it is untested.
pub const IMPORT_POLL: Permission = Permission::action(
    "Microsoft.ContainerRegistry/locations/operationResults/read",
    "Microsoft.ContainerRegistry/locations",
)
.unconfirmed();
/// Registry data-plane reads with the managed identity (tag → digest, manifests, blobs), in a
/// registry in *RBAC Registry Permissions* (legacy) mode; see [`abac`] for the other mode.
pub const PULL: Permission = Permission::action("Microsoft.ContainerRegistry/registries/pull/read", REGISTRY);
/// Registry data-plane writes with the managed identity (`vibedata-bootstrap copy --dst-acr`).
pub const PUSH: Permission = Permission::action("Microsoft.ContainerRegistry/registries/push/write", REGISTRY);
/// A registry reached with its own credentials (the publisher's repository token): no Azure
/// role in this tenant authorises it.
pub const CREDENTIALS: Permission = Permission {
    kind: Kind::NoRbac,
    name: "registry credentials (repository-scoped token of the registry itself)",
    resource_type: "container registry",
    confirmed: true,
};

/// The strings that replace a legacy registry permission in a registry whose
/// `roleAssignmentMode` is `AbacRepositoryPermissions` (legacy roles are not honoured there).
pub fn abac(legacy: &Permission) -> Vec<Permission> {
    const CONTENT_READ: Permission =
        Permission::data("Microsoft.ContainerRegistry/registries/repositories/content/read", REGISTRY);
    const METADATA_READ: Permission =
        Permission::data("Microsoft.ContainerRegistry/registries/repositories/metadata/read", REGISTRY);
    const CONTENT_WRITE: Permission =
        Permission::data("Microsoft.ContainerRegistry/registries/repositories/content/write", REGISTRY);
    const METADATA_WRITE: Permission =
        Permission::data("Microsoft.ContainerRegistry/registries/repositories/metadata/write", REGISTRY);
    if legacy == &PULL {
        vec![CONTENT_READ, METADATA_READ]
    } else if legacy == &PUSH {
        vec![CONTENT_WRITE, METADATA_WRITE]
    } else {
        vec![*legacy]
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryResource {
    #[serde(default)]
    pub properties: RegistryProperties,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    #[serde(default)]
    pub login_server: Option<String>,
    /// `AbacRepositoryPermissions` or `LegacyRegistryPermissions` (absent: legacy).
    #[serde(default)]
    pub role_assignment_mode: Option<String>,
    #[serde(default)]
    pub public_network_access: Option<String>,
    #[serde(default)]
    pub network_rule_bypass_options: Option<String>,
    #[serde(default)]
    pub network_rule_set: Option<NetworkRuleSet>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRuleSet {
    #[serde(default)]
    pub default_action: Option<String>,
}

impl RegistryProperties {
    /// Public access is off or firewalled.
    pub fn restricted(&self) -> bool {
        self.public_network_access.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("Disabled"))
            || self
                .network_rule_set
                .as_ref()
                .and_then(|n| n.default_action.as_deref())
                .is_some_and(|a| a.eq_ignore_ascii_case("Deny"))
    }

    /// Whether `importImage` can reach a restricted registry: only through the trusted-services
    /// bypass, which is on by default (absent means AzureServices).
    pub fn trusted_services_allowed(&self) -> bool {
        self.network_rule_bypass_options.as_deref().is_none_or(|b| b.eq_ignore_ascii_case("AzureServices"))
    }
}

/// One `importImage` call, from the publisher by login server with credentials (the cross-tenant
/// case), by digest, to explicit target tags.
#[derive(Debug, Clone)]
pub struct Import {
    pub registry_uri: String,
    pub username: Option<String>,
    pub password: Secret,
    /// `repo@sha256:...`
    pub source_image: String,
    pub target_tags: Vec<String>,
    /// Repositories that receive the manifest by digest only (a signature: ACR indexes its
    /// `subject`, so the referrers API finds it).
    pub untagged: Vec<String>,
    pub force: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportBody<'a> {
    source: Source<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    target_tags: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    untagged_target_repositories: &'a [String],
    mode: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Source<'a> {
    registry_uri: &'a str,
    source_image: &'a str,
    credentials: Credentials<'a>,
}

#[derive(Serialize)]
struct Credentials<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    password: &'a str,
}

pub struct Acr {
    arm: Arm,
    id: String,
}

impl Acr {
    pub fn new(arm: Arm, subscription: &str, resource_group: &str, name: &str) -> Acr {
        let id = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerRegistry/registries/{name}");
        Acr { arm, id }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub async fn get(&self) -> Result<RegistryResource, AzureError> {
        self.arm.get(&self.id, API_VERSION, &READ).await
    }

    /// Imports and waits for the operation, at most `deadline`.
    pub async fn import(&self, import: &Import, deadline: Duration) -> Result<(), AzureError> {
        let path = format!("{}/importImage", self.id);
        let body = ImportBody {
            source: Source {
                registry_uri: &import.registry_uri,
                source_image: &import.source_image,
                credentials: Credentials { username: import.username.as_deref(), password: import.password.expose() },
            },
            target_tags: &import.target_tags,
            untagged_target_repositories: &import.untagged,
            mode: if import.force { "Force" } else { "NoForce" },
        };
        let targets = if import.target_tags.is_empty() { &import.untagged } else { &import.target_tags };
        let resource = format!("{} ({} -> {})", self.id, import.source_image, targets.join(","));
        // A POST, but safe to repeat: by digest, and a repeat of a finished NoForce import fails
        // on the existing tag, which the caller checks against the digest.
        let req = Request::new(Method::POST, self.arm.url(&path, API_VERSION), resource, &IMPORT)
            .json(&body)
            .idempotent()
            .polled_with(&IMPORT_POLL);
        self.arm.call(req, deadline).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: serde_json::Value) -> RegistryProperties {
        serde_json::from_value::<RegistryResource>(serde_json::json!({ "properties": v })).unwrap().properties
    }

    #[test]
    fn network_rules() {
        let open = props(serde_json::json!({"publicNetworkAccess": "Enabled"}));
        assert!(!open.restricted());
        let denied = props(
            serde_json::json!({"publicNetworkAccess": "Enabled", "networkRuleSet": {"defaultAction": "Deny"}, "networkRuleBypassOptions": "None"}),
        );
        assert!(denied.restricted() && !denied.trusted_services_allowed());
        let private = props(serde_json::json!({"publicNetworkAccess": "Disabled"}));
        assert!(private.restricted() && private.trusted_services_allowed(), "bypass defaults to AzureServices");
    }

    fn body_of(i: &Import) -> ImportBody<'_> {
        ImportBody {
            source: Source {
                registry_uri: &i.registry_uri,
                source_image: &i.source_image,
                credentials: Credentials { username: Some("u"), password: "p" },
            },
            target_tags: &i.target_tags,
            untagged_target_repositories: &i.untagged,
            mode: "Force",
        }
    }

    #[test]
    fn the_body_follows_the_spec_and_debug_hides_the_password() {
        let i = Import {
            registry_uri: "pub.azurecr.io".into(),
            username: Some("u".into()),
            password: Secret::new("hunter2"),
            source_image: "vibedata/api@sha256:abc".into(),
            target_tags: vec!["vibedata/api:1".into()],
            untagged: vec![],
            force: false,
        };
        assert!(!format!("{i:?}").contains("hunter2"));
        let body = ImportBody { mode: "NoForce", ..body_of(&i) };
        let v = serde_json::to_value(body).unwrap();
        assert_eq!(v["source"]["registryUri"], "pub.azurecr.io");
        assert_eq!(v["source"]["credentials"]["password"], "p");
        assert_eq!(v["targetTags"][0], "vibedata/api:1");
        assert_eq!(v["mode"], "NoForce");
        assert!(v.get("untaggedTargetRepositories").is_none(), "empty lists are left out");
        let untagged = ["vibedata/release-manifest".to_owned()];
        let sig = ImportBody { target_tags: &[], untagged_target_repositories: &untagged, ..body_of(&i) };
        let v = serde_json::to_value(sig).unwrap();
        assert_eq!(
            (v.get("targetTags"), &v["untaggedTargetRepositories"][0]),
            (None, &serde_json::json!("vibedata/release-manifest"))
        );
    }
}
