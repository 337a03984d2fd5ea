//! The resource types the emulator serves, with the api-versions each accepts: the half of the
//! provider table that `GET /subscriptions/{s}/providers/{namespace}` answers from, and that the
//! rows of [`super::APIS`] name (`Versions::Of`, `Versions::Named`) instead of repeating a list.
//!
//! Each list is newest first, as ARM lists `apiVersions` (az picks the first non-preview one when
//! no `--api-version` is given). Where each version comes from is said next to its list, in the
//! module that serves the type; emulator/README.md ("api-versions accepted, and why") has the table.

use crate::arm::automation::{RUNBOOK_API_VERSIONS, RUNTIME_ENVIRONMENT_API_VERSIONS};
use crate::arm::inventory::REGISTRY_API_VERSIONS;
use crate::arm::network::{NETWORK_API_VERSIONS, PRIVATE_DNS_API_VERSIONS};
use crate::arm::platform as p;
use crate::arm::projects::{CONNECTION, PROJECT, PROJECT_API_VERSIONS};
use crate::arm::subscriptions::{METADATA_API_VERSIONS, SUBSCRIPTIONS_API_VERSIONS};
use crate::arm::{DEPLOYMENTS_API_VERSIONS, RESOURCES_API_VERSIONS};

pub struct ResourceType {
    /// `Namespace/type[/childType...]`, as ARM spells it.
    pub name: &'static str,
    pub versions: &'static [&'static str],
}

const fn t(name: &'static str, versions: &'static [&'static str]) -> ResourceType {
    ResourceType { name, versions }
}

pub const RESOURCE_GROUPS: &str = "Microsoft.Resources/resourceGroups";
pub const RESOURCES: &str = "Microsoft.Resources/resources";
pub const DEPLOYMENTS: &str = "Microsoft.Resources/deployments";
pub const OPERATION_RESULTS: &str = "Microsoft.Resources/operationresults";
pub const SUBSCRIPTIONS: &str = "Microsoft.Resources/subscriptions";
pub const PROVIDERS: &str = "Microsoft.Resources/providers";
pub const REGISTRIES: &str = "Microsoft.ContainerRegistry/registries";
pub const RUNBOOKS: &str = "Microsoft.Automation/automationAccounts/runbooks";
pub const RUNTIME_ENVIRONMENTS: &str = "Microsoft.Automation/automationAccounts/runtimeEnvironments";
pub const ZONE_GROUPS: &str = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups";
pub const SUBNETS: &str = "Microsoft.Network/virtualNetworks/subnets";
pub const VNET_LINKS: &str = "Microsoft.Network/privateDnsZones/virtualNetworkLinks";
pub const SITE_CONFIG: &str = "Microsoft.Web/sites/config";
pub const PROJECTS: &str = PROJECT;
pub const CONNECTIONS: &str = CONNECTION;

#[rustfmt::skip]
pub static RESOURCE_TYPES: &[ResourceType] = &[
    t(RESOURCE_GROUPS, RESOURCES_API_VERSIONS),
    t(RESOURCES, RESOURCES_API_VERSIONS),
    t(PROVIDERS, RESOURCES_API_VERSIONS),
    t(DEPLOYMENTS, DEPLOYMENTS_API_VERSIONS),
    t(OPERATION_RESULTS, DEPLOYMENTS_API_VERSIONS),
    t(SUBSCRIPTIONS, SUBSCRIPTIONS_API_VERSIONS),
    t("Microsoft.Resources/tenants", SUBSCRIPTIONS_API_VERSIONS),
    t("Microsoft.Resources/cloudMetadata", METADATA_API_VERSIONS),
    t(p::IDENTITY, p::IDENTITY_API_VERSIONS),
    t(p::LOG_ANALYTICS, p::LOG_API_VERSIONS),
    t("Microsoft.Network/virtualNetworks", NETWORK_API_VERSIONS),
    t(SUBNETS, NETWORK_API_VERSIONS),
    t("Microsoft.Network/networkSecurityGroups", NETWORK_API_VERSIONS),
    t("Microsoft.Network/privateEndpoints", NETWORK_API_VERSIONS),
    t(ZONE_GROUPS, NETWORK_API_VERSIONS),
    t("Microsoft.Network/networkInterfaces", NETWORK_API_VERSIONS),
    t("Microsoft.Network/publicIPAddresses", NETWORK_API_VERSIONS),
    t("Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies", NETWORK_API_VERSIONS),
    t("Microsoft.Network/applicationGateways", NETWORK_API_VERSIONS),
    t("Microsoft.Network/privateDnsZones", PRIVATE_DNS_API_VERSIONS),
    t(VNET_LINKS, PRIVATE_DNS_API_VERSIONS),
    t(p::KEY_VAULT, p::VAULT_API_VERSIONS),
    t(p::STORAGE, p::STORAGE_API_VERSIONS),
    t(REGISTRIES, REGISTRY_API_VERSIONS),
    t("Microsoft.ContainerRegistry/locations/operationResults", REGISTRY_API_VERSIONS),
    t(p::POSTGRES, p::POSTGRES_API_VERSIONS),
    t(p::AUTOMATION, p::AUTOMATION_API_VERSIONS),
    t(RUNBOOKS, RUNBOOK_API_VERSIONS),
    t(RUNTIME_ENVIRONMENTS, RUNTIME_ENVIRONMENT_API_VERSIONS),
    t(p::PLAN, p::WEB_API_VERSIONS),
    t(p::SITES, p::WEB_API_VERSIONS),
    t(SITE_CONFIG, p::WEB_API_VERSIONS),
    t(p::AKS, p::AKS_API_VERSIONS),
    t(p::SEARCH, p::SEARCH_API_VERSIONS),
    t(p::COGNITIVE, p::COGNITIVE_API_VERSIONS),
    t(PROJECTS, PROJECT_API_VERSIONS),
    t(CONNECTIONS, PROJECT_API_VERSIONS),
];

/// The type named `name` (case-insensitive, as ARM compares them).
pub fn find(name: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// The api-versions of a type the table must have (rows name only listed types; a unit test
/// checks every row).
pub fn versions_of(name: &str) -> &'static [&'static str] {
    find(name).map_or(&[], |t| t.versions)
}

/// `(namespace, type within it)`: `Microsoft.Network/privateDnsZones/virtualNetworkLinks` →
/// `("Microsoft.Network", "privateDnsZones/virtualNetworkLinks")`.
pub fn split(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or((name, ""))
}
