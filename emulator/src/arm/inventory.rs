//! What the managed resource group holds: the resources the runtime discovers through ARM.
//!
//! This is data on purpose: later phases (private endpoints, Postgres, Functions, ...) grow the
//! list here, and [`super::resources`] serves whatever is in it. Names are derived from the
//! config where the stack fixes them (identity, customer registry) and fixed otherwise.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Config;

/// One resource, as the generic list (`GenericResourceExpanded`) and GET show it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    /// `Namespace/type`, e.g. `Microsoft.KeyVault/vaults`.
    pub resource_type: &'static str,
    pub kind: Option<&'static str>,
    pub sku: Option<Value>,
    pub tags: Value,
    /// The `properties` a GET of the resource shows (the list omits them, as ARM does).
    pub properties: Value,
    /// The api-versions a GET of this resource type accepts.
    pub api_versions: &'static [&'static str],
}

impl Resource {
    pub fn id(&self, cfg: &Config) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}",
            cfg.subscription_id, cfg.resource_group, self.resource_type, self.name
        )
    }

    /// The list form: no `properties`, plus the `$expand`-able times and state.
    pub fn list_item(&self, cfg: &Config) -> Value {
        let mut item = json!({
            "id": self.id(cfg),
            "name": self.name,
            "type": self.resource_type,
            "location": cfg.location,
            "tags": self.tags,
        });
        if let Some(kind) = self.kind {
            item["kind"] = json!(kind);
        }
        if let Some(sku) = &self.sku {
            item["sku"] = sku.clone();
        }
        item
    }

    /// The GET form: the list form plus `properties`.
    pub fn full(&self, cfg: &Config) -> Value {
        let mut item = self.list_item(cfg);
        item["properties"] = self.properties.clone();
        item
    }
}

/// The customer registry's network settings, changeable through `PUT /_emulator/registry-network`
/// so tests can exercise a locked-down registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryNetwork {
    pub public_network_access: String,
    pub network_rule_bypass_options: String,
    pub network_rule_set: Value,
}

impl Default for RegistryNetwork {
    fn default() -> Self {
        RegistryNetwork {
            public_network_access: "Enabled".into(),
            network_rule_bypass_options: "AzureServices".into(),
            network_rule_set: json!({"defaultAction": "Allow", "ipRules": []}),
        }
    }
}

pub const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";
/// 2023-07-01 is the spec's; 2025-04-01 and 2025-11-01 are the later stable ones (the AVM
/// import module uses 2025-11-01).
pub const REGISTRY_API_VERSIONS: &[&str] = &[
    "2025-11-01",
    "2025-04-01",
    "2023-11-01-preview",
    "2023-07-01",
];
const STORAGE_API_VERSIONS: &[&str] = &[
    "2025-06-01",
    "2025-01-01",
    "2024-01-01",
    "2023-05-01",
    "2023-01-01",
];
const VAULT_API_VERSIONS: &[&str] = &[
    "2024-11-01",
    "2024-04-01-preview",
    "2023-07-01",
    "2023-02-01",
    "2022-07-01",
];
const IDENTITY_API_VERSIONS: &[&str] = &["2024-11-30", "2023-01-31", "2018-11-30"];
const AUTOMATION_API_VERSIONS: &[&str] = &["2024-10-23", "2023-11-01", "2022-08-08"];
const POSTGRES_API_VERSIONS: &[&str] = &["2025-08-01", "2024-08-01", "2022-12-01"];

pub fn key_vault_name(_cfg: &Config) -> String {
    "vibedata-local-kv".to_owned()
}

pub fn storage_account_name(_cfg: &Config) -> String {
    "vibedatalocalst".to_owned()
}

pub fn seed(cfg: &Config) -> Vec<Resource> {
    let tags = json!({"vibedata-deployment": "local"});
    let registry = &cfg.customer_registry;
    vec![
        Resource {
            name: cfg.identity_name().to_owned(),
            resource_type: "Microsoft.ManagedIdentity/userAssignedIdentities",
            kind: None,
            sku: None,
            tags: tags.clone(),
            properties: json!({
                "tenantId": cfg.tenant_id,
                "principalId": cfg.identity.principal_id,
                "clientId": cfg.identity.client_id,
            }),
            api_versions: IDENTITY_API_VERSIONS,
        },
        Resource {
            name: storage_account_name(cfg),
            resource_type: "Microsoft.Storage/storageAccounts",
            kind: Some("StorageV2"),
            sku: Some(json!({"name": "Standard_LRS", "tier": "Standard"})),
            tags: tags.clone(),
            properties: json!({
                "provisioningState": "Succeeded",
                "primaryEndpoints": {"blob": format!("https://{}.blob.core.windows.net/", storage_account_name(cfg))},
                "publicNetworkAccess": "Disabled",
                "allowSharedKeyAccess": false,
            }),
            api_versions: STORAGE_API_VERSIONS,
        },
        Resource {
            name: key_vault_name(cfg),
            resource_type: "Microsoft.KeyVault/vaults",
            kind: None,
            sku: None,
            tags: tags.clone(),
            properties: json!({
                "tenantId": cfg.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "vaultUri": format!("https://{}.vault.azure.net/", key_vault_name(cfg)),
                "enableRbacAuthorization": true,
                "enableSoftDelete": true,
                "softDeleteRetentionInDays": 90,
                "provisioningState": "Succeeded",
                "publicNetworkAccess": "Disabled",
            }),
            api_versions: VAULT_API_VERSIONS,
        },
        Resource {
            name: registry.name.clone(),
            resource_type: REGISTRY_TYPE,
            kind: None,
            sku: Some(json!({"name": "Premium", "tier": "Premium"})),
            tags: tags.clone(),
            // Filled in at GET time from the login server and [`RegistryNetwork`].
            properties: Value::Null,
            api_versions: REGISTRY_API_VERSIONS,
        },
        Resource {
            name: "vibedata-local-aa".to_owned(),
            resource_type: "Microsoft.Automation/automationAccounts",
            kind: None,
            sku: None,
            tags: tags.clone(),
            properties: json!({"sku": {"name": "Basic"}, "state": "Ok", "publicNetworkAccess": false}),
            api_versions: AUTOMATION_API_VERSIONS,
        },
        Resource {
            name: "vibedata-local-pg".to_owned(),
            resource_type: "Microsoft.DBforPostgreSQL/flexibleServers",
            kind: None,
            sku: Some(json!({"name": "Standard_B1ms", "tier": "Burstable"})),
            tags,
            properties: json!({
                "version": "15",
                "state": "Ready",
                "fullyQualifiedDomainName": "vibedata-local-pg.postgres.database.azure.com",
                "network": {"publicNetworkAccess": "Disabled"},
            }),
            api_versions: POSTGRES_API_VERSIONS,
        },
    ]
}

/// The registry's `properties` as ACR's GET shows them (api-version 2023-07-01 shape).
pub fn registry_properties(cfg: &Config, net: &RegistryNetwork) -> Value {
    json!({
        "loginServer": cfg.customer_registry.login_server,
        "creationDate": "2026-01-01T00:00:00.0000000Z",
        "provisioningState": "Succeeded",
        "adminUserEnabled": false,
        "networkRuleSet": net.network_rule_set,
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
        },
        "encryption": {"status": "disabled"},
        "dataEndpointEnabled": false,
        "dataEndpointHostNames": [],
        "privateEndpointConnections": [],
        "publicNetworkAccess": net.public_network_access,
        "networkRuleBypassOptions": net.network_rule_bypass_options,
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": false,
    })
}
