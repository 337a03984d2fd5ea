//! The RFC-60 rules by resource type, and the named exceptions. A resource type that is not in
//! [`TYPES`] fails `rules-table`: a new type is classified here before it can be deployed.

use crate::finding::rule;

#[derive(Debug, Clone, Copy)]
pub enum Val {
    /// Compared case-insensitively (`Disabled`, AI Search's `disabled`).
    Str(&'static str),
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
pub enum Diagnostics {
    /// A diagnostic setting to the Log Analytics workspace, in the same file.
    Required,
    Exempt(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub enum Network {
    /// Not a service endpoint of its own.
    None,
    /// PaaS: `path` (below the body, e.g. `properties.publicNetworkAccess`) must be `value`, and a
    /// private endpoint with a DNS zone group must target the resource.
    Private { path: &'static str, value: Val },
    /// Private without a private endpoint of ours: only `path == value` is checked.
    PrivateOtherwise { path: &'static str, value: Val, why: &'static str },
    /// Public by design.
    Public(&'static str),
}

#[derive(Debug)]
pub struct TypeRules {
    pub resource_type: &'static str,
    pub diagnostics: Diagnostics,
    pub network: Network,
}

const fn t(resource_type: &'static str, diagnostics: Diagnostics, network: Network) -> TypeRules {
    TypeRules { resource_type, diagnostics, network }
}

use Diagnostics::{Exempt, Required};
use Network::{None as NotPaas, Private, PrivateOtherwise, Public};

const DISABLED: Val = Val::Str("Disabled");
const PUBLIC_ACCESS: &str = "properties.publicNetworkAccess";
const NO_CATEGORIES: Diagnostics = Exempt("the type has no diagnostic categories");

pub static TYPES: &[TypeRules] = &[
    // Identity and access (RFC-60 phase 1, and every module's role assignments).
    t("Microsoft.ManagedIdentity/userAssignedIdentities", Exempt("an identity emits no diagnostics"), NotPaas),
    t("Microsoft.Authorization/roleAssignments", Exempt("role assignments are in the activity log"), NotPaas),
    t("Microsoft.Authorization/roleDefinitions", Exempt("role definitions are in the activity log"), NotPaas),
    // Observability.
    t(
        "Microsoft.OperationalInsights/workspaces",
        Exempt("the workspace itself: diagnostic settings start after it"),
        Public("ingestion and queries go to Azure Monitor's endpoints; a private link scope is not part of RFC-60"),
    ),
    t("Microsoft.Insights/diagnosticSettings", NO_CATEGORIES, NotPaas),
    // Network and DNS.
    t("Microsoft.Network/virtualNetworks", Required, NotPaas),
    t("Microsoft.Network/virtualNetworks/subnets", Exempt("a subnet is covered by its VNet's setting"), NotPaas),
    t("Microsoft.Network/networkSecurityGroups", Required, NotPaas),
    t("Microsoft.Network/privateDnsZones", Exempt("private DNS zones have no diagnostic settings"), NotPaas),
    t("Microsoft.Network/privateDnsZones/virtualNetworkLinks", NO_CATEGORIES, NotPaas),
    t("Microsoft.Network/privateEndpoints", Exempt("a private endpoint is observed through its target"), NotPaas),
    t("Microsoft.Network/privateEndpoints/privateDnsZoneGroups", NO_CATEGORIES, NotPaas),
    t("Microsoft.Network/publicIPAddresses", Required, Public("the App Gateway front end's address")),
    t(
        "Microsoft.Network/applicationGateways",
        Required,
        Public("the App Gateway front end is the platform's one public entry, behind its WAF"),
    ),
    t(
        "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies",
        Exempt("the gateway logs what its WAF policy does"),
        NotPaas,
    ),
    // Key Vault.
    t("Microsoft.KeyVault/vaults", Required, Private { path: PUBLIC_ACCESS, value: DISABLED }),
    t("Microsoft.KeyVault/vaults/secrets", NO_CATEGORIES, NotPaas),
    // Storage.
    t("Microsoft.Storage/storageAccounts", Required, Private { path: PUBLIC_ACCESS, value: DISABLED }),
    t("Microsoft.Storage/storageAccounts/blobServices", Required, NotPaas),
    t("Microsoft.Storage/storageAccounts/queueServices", Required, NotPaas),
    t("Microsoft.Storage/storageAccounts/tableServices", Required, NotPaas),
    t("Microsoft.Storage/storageAccounts/fileServices", Required, NotPaas),
    t(
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        Exempt("covered by its blob service's setting"),
        NotPaas,
    ),
    // Registry, Automation, scripts.
    t("Microsoft.ContainerRegistry/registries", Required, Private { path: PUBLIC_ACCESS, value: DISABLED }),
    t("Microsoft.Automation/automationAccounts", Required, Private { path: PUBLIC_ACCESS, value: Val::Bool(false) }),
    t(
        "Microsoft.Resources/deploymentScripts",
        Exempt("a deploymentScript keeps its logs on the resource; it has no diagnostic categories"),
        NotPaas,
    ),
    // Postgres.
    t(
        "Microsoft.DBforPostgreSQL/flexibleServers",
        Required,
        Private { path: "properties.network.publicNetworkAccess", value: DISABLED },
    ),
    t("Microsoft.DBforPostgreSQL/flexibleServers/administrators", NO_CATEGORIES, NotPaas),
    t("Microsoft.DBforPostgreSQL/flexibleServers/databases", NO_CATEGORIES, NotPaas),
    // Apps.
    t("Microsoft.Web/serverfarms", Required, NotPaas),
    t("Microsoft.Web/sites", Required, Private { path: PUBLIC_ACCESS, value: DISABLED }),
    // AKS.
    t(
        "Microsoft.ContainerService/managedClusters",
        Required,
        PrivateOtherwise {
            path: "properties.apiServerAccessProfile.enablePrivateCluster",
            value: Val::Bool(true),
            why: "a private cluster: AKS creates the API server's private endpoint and DNS zone itself",
        },
    ),
    // AI.
    t("Microsoft.CognitiveServices/accounts", Required, Private { path: PUBLIC_ACCESS, value: DISABLED }),
    t(
        "Microsoft.CognitiveServices/accounts/projects",
        Exempt("a project is covered by its account's setting"),
        NotPaas,
    ),
    t("Microsoft.CognitiveServices/accounts/projects/connections", NO_CATEGORIES, NotPaas),
    t("Microsoft.Search/searchServices", Required, Private { path: PUBLIC_ACCESS, value: Val::Str("disabled") }),
];

/// A rule that does not apply to one named resource, and what is required instead.
#[derive(Debug)]
pub struct Exception {
    pub rule: &'static str,
    /// Relative to the infra root.
    pub file: &'static str,
    pub symbol: &'static str,
    pub why: &'static str,
    /// What must hold instead: `(path, value)`.
    pub instead: Option<(&'static str, Val)>,
}

const SCRIPTS_STORAGE_WHY: &str =
    "deploymentScripts mount their file share over a service endpoint of the scripts subnet; \
     a private endpoint is not supported for a script's storage (runtime-contracts.md §1.2)";

pub static EXCEPTIONS: &[Exception] = &[
    Exception {
        rule: rule::PUBLIC_NETWORK_ACCESS,
        file: "modules/foundation.bicep",
        symbol: "scriptsStorage",
        why: SCRIPTS_STORAGE_WHY,
        instead: Some(("properties.networkAcls.defaultAction", Val::Str("Deny"))),
    },
    Exception {
        rule: rule::PRIVATE_ENDPOINT,
        file: "modules/foundation.bicep",
        symbol: "scriptsStorage",
        why: SCRIPTS_STORAGE_WHY,
        instead: None,
    },
];

pub fn rules_for(resource_type: &str) -> Option<&'static TypeRules> {
    TYPES.iter().find(|r| r.resource_type.eq_ignore_ascii_case(resource_type))
}

pub fn exception(rule: &str, file: &str, symbol: &str) -> Option<&'static Exception> {
    EXCEPTIONS.iter().find(|e| e.rule == rule && e.file == file && e.symbol == symbol)
}
