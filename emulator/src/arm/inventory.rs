//! What the managed resource group holds: the RFC-60 platform as ARM shows it, built from
//! `emulator.json` (names from `inventory.baseName` and the fixed names the stack configures,
//! ports from `inventory.ports` and `listen.apps`).
//!
//! This is data: [`build`] is deterministic in the config, so the ARM handlers
//! ([`super::resources`], [`super::network`]), the control API's `GET /_emulator/inventory`,
//! `vibedata-emulator --inventory` (which `scripts/stack` reads for the DNS stand-in, the
//! certificate's names and `VIBEDATA_ENDPOINT_PORTS`) and the apps listener all see the same
//! resource group. Builders live in [`super::platform`] (the services) and [`super::network`]
//! (VNet, NSGs, private DNS, private endpoints, App Gateway).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::endpoints::{endpoint, port_of, private_endpoint_specs, probe_path, Component, Endpoint};
use super::envelope::{self, Envelope};
use super::{network, platform};
use crate::config::Config;

/// `emulator.json` → `inventory`. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InventoryConfig {
    /// The workload part of the generated names (`kv-<base>`, `st<base without dashes>`, ...).
    pub base_name: String,
    /// The private IP every private endpoint (and the App Gateway frontend) registers: the
    /// stack's services listen on loopback only.
    pub endpoint_ip: String,
    /// Where the stack really serves an endpoint, by service: `keyVault`, `blob`, `queue`,
    /// `table`, `registry`, `postgres`. A missing service keeps Azure's port (443, Postgres 5432).
    /// Endpoints served by the apps listener use `listen.apps`.
    pub ports: BTreeMap<String, u16>,
    /// Overrides of generated names, keyed like [`NAME_TEMPLATES`] (e.g. `"keyVault": "kv-x"`).
    pub names: BTreeMap<String, String>,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            base_name: "vibedata-local".to_owned(),
            endpoint_ip: "127.0.0.1".to_owned(),
            ports: BTreeMap::new(),
            names: BTreeMap::new(),
        }
    }
}

/// Name templates (Azure CAF abbreviations): `{b}` = the base name, `{B}` = it without dashes.
pub const NAME_TEMPLATES: &[(&str, &str)] = &[
    ("logAnalytics", "log-{b}"),
    ("vnet", "vnet-{b}"),
    ("keyVault", "kv-{b}"),
    ("storageAccount", "st{B}"),
    ("postgres", "psql-{b}"),
    ("appServicePlan", "asp-{b}"),
    ("webPortal", "app-{b}-portal"),
    ("webApi", "app-{b}-api"),
    ("functionApp", "func-{b}"),
    ("appGateway", "agw-{b}"),
    ("appGatewayIp", "pip-agw-{b}"),
    ("wafPolicy", "waf-{b}"),
    ("aks", "aks-{b}"),
    ("search", "srch-{b}"),
    ("foundry", "ais-{b}"),
    ("foundryProject", "proj-{b}"),
];

/// Every resource name of the group. Identity, registry and Automation account come from their
/// own config keys (`identity.resourceId`, `customerRegistry.name`, `automationAccount`).
#[derive(Debug, Clone)]
pub struct Names {
    pub base: String,
    pub identity: String,
    pub registry: String,
    pub automation: String,
    pub log_analytics: String,
    pub vnet: String,
    pub key_vault: String,
    pub storage: String,
    pub postgres: String,
    pub plan: String,
    pub web_portal: String,
    pub web_api: String,
    pub function_app: String,
    pub app_gateway: String,
    pub app_gateway_ip: String,
    pub waf_policy: String,
    pub aks: String,
    pub search: String,
    pub foundry: String,
    pub foundry_project: String,
}

impl Names {
    pub fn new(cfg: &Config) -> Names {
        let inv = &cfg.inventory;
        let pick = |key: &str| -> String {
            if let Some(name) = inv.names.get(key) {
                return name.clone();
            }
            let template = NAME_TEMPLATES.iter().find(|(k, _)| *k == key).map_or("{b}", |(_, t)| t);
            template.replace("{b}", &inv.base_name).replace("{B}", &inv.base_name.replace('-', ""))
        };
        Names {
            base: inv.base_name.clone(),
            identity: cfg.identity_name().to_owned(),
            registry: cfg.customer_registry.name.clone(),
            automation: cfg.automation_account.clone(),
            log_analytics: pick("logAnalytics"),
            vnet: pick("vnet"),
            key_vault: pick("keyVault"),
            storage: pick("storageAccount"),
            postgres: pick("postgres"),
            plan: pick("appServicePlan"),
            web_portal: pick("webPortal"),
            web_api: pick("webApi"),
            function_app: pick("functionApp"),
            app_gateway: pick("appGateway"),
            app_gateway_ip: pick("appGatewayIp"),
            waf_policy: pick("wafPolicy"),
            aks: pick("aks"),
            search: pick("search"),
            foundry: pick("foundry"),
            foundry_project: pick("foundryProject"),
        }
    }

    /// `{"keyVault": "kv-...", ...}` for the control API and `scripts/stack`.
    pub fn to_json(&self) -> Value {
        json!({
            "identity": self.identity, "registry": self.registry, "automationAccount": self.automation,
            "logAnalytics": self.log_analytics, "vnet": self.vnet, "keyVault": self.key_vault,
            "storageAccount": self.storage, "postgres": self.postgres, "appServicePlan": self.plan,
            "webPortal": self.web_portal, "webApi": self.web_api, "functionApp": self.function_app,
            "appGateway": self.app_gateway, "appGatewayIp": self.app_gateway_ip, "wafPolicy": self.waf_policy,
            "aks": self.aks, "search": self.search, "foundry": self.foundry,
            "foundryProject": self.foundry_project,
        })
    }
}

/// One resource, as the generic list (`GenericResourceExpanded`) and GET show it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// For a child resource type (`Microsoft.Network/privateDnsZones/virtualNetworkLinks`) the
    /// parent's and its own name joined by `/`, as ARM lists it.
    pub name: String,
    /// `Namespace/type[/childType]`, e.g. `Microsoft.KeyVault/vaults`.
    pub resource_type: &'static str,
    /// `None` = the configured location (private DNS zones say `global`).
    pub location: Option<String>,
    pub kind: Option<&'static str>,
    pub sku: Option<Value>,
    pub identity: Option<Value>,
    pub tags: Value,
    /// The `properties` a GET of the resource shows (the list omits them, as ARM does).
    pub properties: Value,
    /// Network RP resources carry an etag (`W/"guid"`) in GET answers.
    pub etag: Option<String>,
    /// Sub-resources served below the resource, not listed: `privateDnsZoneGroups` (array) of a
    /// private endpoint, `appsettings` (object) of a site.
    pub children: BTreeMap<&'static str, Value>,
}

impl Resource {
    /// Its api-versions are its type's in the provider table (`providers::types`).
    pub fn new(name: impl Into<String>, resource_type: &'static str) -> Resource {
        Resource {
            name: name.into(),
            resource_type,
            location: None,
            kind: None,
            sku: None,
            identity: None,
            tags: json!({}),
            properties: json!({}),
            etag: None,
            children: BTreeMap::new(),
        }
    }

    pub fn id(&self, cfg: &Config) -> String {
        resource_id(cfg, self.resource_type, &self.name)
    }

    pub fn location<'a>(&'a self, cfg: &'a Config) -> &'a str {
        self.location.as_deref().unwrap_or(&cfg.location)
    }

    /// The list form: no `properties`.
    pub fn list_item(&self, cfg: &Config) -> Value {
        self.envelope(cfg).build()
    }

    /// The GET form: the list form plus `properties` (and `etag` where the RP sends one).
    pub fn full(&self, cfg: &Config) -> Value {
        self.envelope(cfg).etag(self.etag.as_deref()).properties(self.properties.clone()).build()
    }

    fn envelope(&self, cfg: &Config) -> Envelope {
        envelope::resource(self.id(cfg), &self.name, self.resource_type)
            .location(self.location(cfg))
            .tags(&self.tags)
            .kind(self.kind)
            .sku(self.sku.as_ref())
            .identity(self.identity.as_ref())
    }
}

/// The ARM id of `name` (`parent/child` for child types) of `resource_type` in the group.
pub fn resource_id(cfg: &Config, resource_type: &str, name: &str) -> String {
    let mut types = resource_type.split('/');
    let mut id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{}",
        cfg.subscription_id,
        cfg.resource_group,
        types.next().unwrap_or_default()
    );
    for (t, n) in types.zip(name.split('/')) {
        id.push('/');
        id.push_str(t);
        id.push('/');
        id.push_str(n);
    }
    id
}

/// A stable GUID from a seed, so ids, etags and hashes do not change between runs.
pub fn guid(seed: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let h = hex(&d.as_ref()[..16]);
    format!("{}-{}-5{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Network RP's weak etag for a resource.
pub fn etag(seed: &str) -> String {
    format!("W/\"{}\"", guid(&format!("etag:{seed}")))
}

/// The whole resource group.
pub struct Inventory {
    pub names: Names,
    pub resources: Vec<Resource>,
    pub endpoints: Vec<Endpoint>,
    pub components: Vec<Component>,
    /// Literal secrets the inventory shows (an app setting's storage key): a registry must never
    /// record them.
    pub sensitive_values: Vec<String>,
}

impl Inventory {
    /// `GET /_emulator/inventory` and `vibedata-emulator --inventory`.
    pub fn view(&self, cfg: &Config) -> Value {
        let mut dns: BTreeMap<String, (String, u16)> = BTreeMap::new();
        for e in &self.endpoints {
            for n in &e.dns_names {
                dns.insert(n.clone(), (e.ip_addresses[0].clone(), e.port));
            }
        }
        let endpoint_ports = dns.iter().map(|(name, (_, port))| format!("{name}={port}")).collect::<Vec<_>>().join(",");
        json!({
            "subscriptionId": cfg.subscription_id,
            "resourceGroup": cfg.resource_group,
            "location": cfg.location,
            "endpointIp": cfg.inventory.endpoint_ip,
            "names": self.names.to_json(),
            "resources": self.resources.iter().map(|r| json!({
                "id": r.id(cfg), "name": r.name, "type": r.resource_type, "location": r.location(cfg),
                "kind": r.kind,
            })).collect::<Vec<_>>(),
            "privateEndpoints": self.endpoints.iter().filter(|e| e.private_endpoint_id.is_some()).collect::<Vec<_>>(),
            "endpoints": self.endpoints,
            "dns": dns.iter().map(|(name, (ip, port))| json!({"name": name, "ip": ip, "port": port})).collect::<Vec<_>>(),
            "endpointPorts": endpoint_ports,
            "components": self.components,
            "sensitiveValues": self.sensitive_values,
        })
    }
}

pub fn seed(cfg: &Config) -> Vec<Resource> {
    build(cfg).resources
}

/// The resource group, in creation order (the order the list pages through).
pub fn build(cfg: &Config) -> Inventory {
    let names = Names::new(cfg);
    let tags = json!({"vibedata-deployment": names.base, "vibedata-component": "platform"});
    let specs = private_endpoint_specs(cfg, &names);
    let mut resources = Vec::new();
    resources.extend(platform::identity_and_logs(cfg, &names, &tags));
    resources.extend(network::base(cfg, &names, &tags, &specs));
    let mut sensitive = Vec::new();
    resources.extend(platform::services(cfg, &names, &tags, &mut sensitive));
    resources.extend(network::app_gateway(cfg, &names, &tags));
    resources.extend(platform::compute(cfg, &names, &tags));
    resources.extend(super::projects::resources(cfg, &names, &tags));
    for spec in &specs {
        resources.extend(network::private_endpoint(cfg, &names, &tags, spec));
        // The target shows the connection, as each RP does (the registry's GET builds its own).
        if let Some(target) = resources.iter_mut().find(|r| r.id(cfg) == spec.target_id) {
            if let Some(props) = target.properties.as_object_mut() {
                let list = props.entry("privateEndpointConnections").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(network::connection_ref(cfg, spec));
                }
            }
        }
    }

    let mut endpoints: Vec<Endpoint> = specs.iter().map(|s| endpoint(cfg, s)).collect();
    let agw_fqdn = network::app_gateway_fqdn(cfg, &names);
    endpoints.push(Endpoint {
        private_endpoint_id: None,
        name: names.app_gateway_ip.clone(),
        target_resource_id: resource_id(cfg, network::APP_GATEWAY, &names.app_gateway),
        target_type: network::APP_GATEWAY,
        component: names.app_gateway.clone(),
        group_ids: vec![],
        dns_source: None,
        fqdns: vec![agw_fqdn.clone()],
        ip_addresses: vec![cfg.inventory.endpoint_ip.clone()],
        dns_names: vec![agw_fqdn.clone()],
        service: "apps",
        port: port_of(cfg, "apps"),
        default_port: 443,
        served_by: "emulator",
    });

    let mut components: Vec<Component> = Vec::new();
    for e in endpoints.iter().filter(|e| e.served_by == "emulator") {
        if let Some(c) = components.iter_mut().find(|c| c.name == e.component) {
            c.hosts.extend(e.dns_names.iter().cloned());
            continue;
        }
        components.push(Component {
            name: e.component.clone(),
            resource_id: e.target_resource_id.clone(),
            resource_type: e.target_type,
            hosts: e.dns_names.clone(),
            probe_path: probe_path(e.target_type),
        });
    }
    Inventory { names, resources, endpoints, components, sensitive_values: sensitive }
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
pub const REGISTRY_API_VERSIONS: &[&str] =
    &["2026-09-01-preview", "2025-11-01", "2025-04-01", "2023-11-01-preview", "2023-07-01"];

pub fn key_vault_name(cfg: &Config) -> String {
    Names::new(cfg).key_vault
}

/// The registry's `properties` as ACR's GET shows them (api-version 2023-07-01 shape).
pub fn registry_properties(cfg: &Config, net: &RegistryNetwork) -> Value {
    let names = Names::new(cfg);
    let connections: Vec<Value> = private_endpoint_specs(cfg, &names)
        .iter()
        .filter(|s| s.target_type == REGISTRY_TYPE)
        .map(|s| network::connection_ref(cfg, s))
        .collect();
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
        "dataEndpointEnabled": true,
        "dataEndpointHostNames": [format!("{}.{}.data.azurecr.io", names.registry, cfg.location.to_ascii_lowercase())],
        "privateEndpointConnections": connections,
        "publicNetworkAccess": net.public_network_access,
        "networkRuleBypassOptions": net.network_rule_bypass_options,
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::endpoints::DnsSource;

    fn cfg() -> Config {
        serde_json::from_str(
            r#"{"listen":{"arm":1,"vault":2,"identity":3,"acrAuth":4,"apps":12},
            "tls":{"cert":"c","key":"k"},"tokenSigning":{"cert":"c","key":"k"},
            "tenantId":"t","subscriptionId":"s","resourceGroup":"rg","location":"eastus",
            "identity":{"clientId":"c","principalId":"p","resourceId":"/x/y/vibedata-uami","header":"h"},
            "customerRegistry":{"name":"vibedatacustomer","loginServer":"l","service":"s","issuer":"i"},
            "inventory":{"ports":{"keyVault":2,"postgres":10},"names":{"search":"srch-custom"}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_group_is_realistic_and_consistent() {
        let cfg = cfg();
        let inv = build(&cfg);
        assert!(inv.resources.len() >= 40);
        let mut ids: Vec<String> = inv.resources.iter().map(|r| r.id(&cfg).to_lowercase()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), inv.resources.len(), "ids are unique");
        // Every private endpoint's target and NIC are in the group.
        for e in inv.endpoints.iter().filter(|e| e.private_endpoint_id.is_some()) {
            assert!(ids.contains(&e.target_resource_id.to_lowercase()), "{}", e.name);
            assert!(ids.contains(&resource_id(&cfg, network::NIC, &format!("nic-{}", e.name)).to_lowercase()));
        }
        let sources: Vec<_> = inv.endpoints.iter().filter_map(|e| e.dns_source).collect();
        for s in [DnsSource::ZoneGroup, DnsSource::CustomDnsConfigs, DnsSource::Nic] {
            assert!(sources.contains(&s), "{s:?}");
        }
        assert!(inv.resources.iter().any(|r| r.name == "srch-custom"));
        assert_eq!(inv.names.automation, "aa-vibedata-local");
    }

    #[test]
    fn ports_follow_the_config() {
        let cfg = cfg();
        let inv = build(&cfg);
        let port = |name: &str| inv.endpoints.iter().find(|e| e.dns_names.iter().any(|n| n == name)).unwrap().port;
        assert_eq!(port("kv-vibedata-local.vault.azure.net"), 2);
        assert_eq!(port("psql-vibedata-local.privatelink.postgres.database.azure.com"), 10);
        assert_eq!(port("stvibedatalocal.blob.core.windows.net"), 443, "no override: Azure's port");
        assert_eq!(port("app-vibedata-local-api.azurewebsites.net"), 12, "apps listener");
        let view = inv.view(&cfg);
        assert!(view["endpointPorts"].as_str().unwrap().contains("kv-vibedata-local.vault.azure.net=2"));
    }

    #[test]
    fn child_ids_interleave_types_and_names() {
        let cfg = cfg();
        assert_eq!(
            resource_id(&cfg, network::VNET_LINK, "privatelink.azurecr.io/link-v"),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/privatelink.azurecr.io/virtualNetworkLinks/link-v"
        );
        assert_eq!(guid("x"), guid("x"));
        assert_eq!(guid("x").len(), 36);
    }
}
