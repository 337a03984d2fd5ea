//! Microsoft.Network and Microsoft.Network private DNS: the VNet and its subnets, NSGs, the
//! private DNS zones and their VNet links, private endpoints (with their NICs and
//! `privateDnsZoneGroups`), and the App Gateway with its public IP and WAF policy. Shapes follow
//! `specs/arm-common.md` §5 (api-version 2024-05-01).
//!
//! Top-level resources are served by [`super::resources::get`]; this module serves what lies
//! below one: `privateEndpoints/{pe}/privateDnsZoneGroups[/{name}]`,
//! `virtualNetworks/{vnet}/subnets[/{name}]` and `privateDnsZones/{zone}/virtualNetworkLinks[/{name}]`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::endpoints::{DnsSource, PeSpec};
use super::inventory::{etag, guid, resource_id, Names, Resource};
use super::{envelope, groups, ArmRequest};
use crate::config::Config;
use crate::http::{arm_error, json};
use crate::state::Shared;

pub const VNET: &str = "Microsoft.Network/virtualNetworks";
pub const NSG: &str = "Microsoft.Network/networkSecurityGroups";
pub const PRIVATE_DNS_ZONE: &str = "Microsoft.Network/privateDnsZones";
pub const VNET_LINK: &str = "Microsoft.Network/privateDnsZones/virtualNetworkLinks";
pub const PRIVATE_ENDPOINT: &str = "Microsoft.Network/privateEndpoints";
pub const NIC: &str = "Microsoft.Network/networkInterfaces";
pub const PUBLIC_IP: &str = "Microsoft.Network/publicIPAddresses";
pub const WAF_POLICY: &str = "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies";
pub const APP_GATEWAY: &str = "Microsoft.Network/applicationGateways";

/// 2024-05-01 is the specs'; 2026-03-01 is `azure-mgmt-network` 33's default.
pub const NETWORK_API_VERSIONS: &[&str] = &[
    "2026-03-01",
    "2026-01-01",
    "2025-09-01",
    "2025-07-01",
    "2025-03-01",
    "2024-07-01",
    "2024-05-01",
    "2024-03-01",
    "2024-01-01",
    "2023-11-01",
    "2023-09-01",
    "2023-06-01",
    "2023-05-01",
    "2023-04-01",
    "2022-01-01",
];
/// Private DNS: 2024-06-01 is `azure-mgmt-privatedns` 2's default; 2020-06-01 the common one.
pub const PRIVATE_DNS_API_VERSIONS: &[&str] = &["2024-06-01", "2020-06-01", "2020-01-01", "2018-09-01"];

/// The private DNS zones of the platform's private endpoints.
pub mod zone {
    use crate::config::Config;

    pub const VAULT: &str = "privatelink.vaultcore.azure.net";
    pub const BLOB: &str = "privatelink.blob.core.windows.net";
    pub const QUEUE: &str = "privatelink.queue.core.windows.net";
    pub const TABLE: &str = "privatelink.table.core.windows.net";
    pub const REGISTRY: &str = "privatelink.azurecr.io";
    pub const POSTGRES: &str = "privatelink.postgres.database.azure.com";
    pub const AUTOMATION: &str = "privatelink.azure-automation.net";
    pub const SITES: &str = "privatelink.azurewebsites.net";
    pub const SEARCH: &str = "privatelink.search.windows.net";
    pub const COGNITIVE: &str = "privatelink.cognitiveservices.azure.com";
    pub const OPENAI: &str = "privatelink.openai.azure.com";

    /// AKS's zone is regional: `privatelink.<region>.azmk8s.io`.
    pub fn aks(cfg: &Config) -> String {
        format!("privatelink.{}.azmk8s.io", cfg.location.to_ascii_lowercase())
    }

    pub fn all(cfg: &Config) -> Vec<String> {
        let mut zones: Vec<String> =
            [VAULT, BLOB, QUEUE, TABLE, REGISTRY, POSTGRES, AUTOMATION, SITES, SEARCH, COGNITIVE, OPENAI]
                .iter()
                .map(|z| (*z).to_owned())
                .collect();
        zones.push(aks(cfg));
        zones
    }
}

pub const SUBNET_PE: &str = "snet-private-endpoints";
pub const SUBNET_APPS: &str = "snet-apps";
pub const SUBNET_AGW: &str = "snet-appgateway";
pub const SUBNET_AKS: &str = "snet-aks";
pub const SUBNET_SCRIPTS: &str = "snet-deployment-scripts";

/// (subnet, prefix, NSG suffix, delegation).
const SUBNETS: &[(&str, &str, &str, Option<&str>)] = &[
    (SUBNET_PE, "10.20.1.0/24", "pe", None),
    (SUBNET_APPS, "10.20.2.0/24", "apps", Some("Microsoft.Web/serverFarms")),
    (SUBNET_AGW, "10.20.3.0/24", "agw", None),
    (SUBNET_SCRIPTS, "10.20.4.0/24", "pe", Some("Microsoft.ContainerInstance/containerGroups")),
    (SUBNET_AKS, "10.20.16.0/20", "aks", None),
];

pub fn subnet_id(cfg: &Config, n: &Names, subnet: &str) -> String {
    format!("{}/subnets/{subnet}", resource_id(cfg, VNET, &n.vnet))
}

fn nsg_name(n: &Names, suffix: &str) -> String {
    format!("nsg-{}-{suffix}", n.base)
}

fn net(name: impl Into<String>, rtype: &'static str, tags: &Value) -> Resource {
    let mut r = Resource::new(name, rtype);
    r.tags = tags.clone();
    r.etag = Some(etag(&format!("{rtype}/{}", r.name)));
    r
}

fn sub_ref(parent_id: &str, kind: &str, name: &str, props: Value) -> Value {
    json!({
        "name": name,
        "id": format!("{parent_id}/{kind}/{name}"),
        "etag": etag(&format!("{parent_id}/{kind}/{name}")),
        "properties": props,
    })
}

/// VNet, NSGs, private DNS zones and their VNet links.
pub fn base(cfg: &Config, n: &Names, tags: &Value, specs: &[PeSpec]) -> Vec<Resource> {
    let vnet_id = resource_id(cfg, VNET, &n.vnet);
    let mut vnet = net(&n.vnet, VNET, tags);
    let subnets: Vec<Value> = SUBNETS
        .iter()
        .map(|(name, prefix, nsg, delegation)| {
            let mut props = json!({
                "provisioningState": "Succeeded",
                "addressPrefix": prefix,
                "networkSecurityGroup": {"id": resource_id(cfg, NSG, &nsg_name(n, nsg))},
                "delegations": delegation.map_or_else(Vec::new, |d| vec![json!({
                    "name": d.replace('/', "."),
                    "id": format!("{vnet_id}/subnets/{name}/delegations/{}", d.replace('/', ".")),
                    "properties": {"serviceName": d, "provisioningState": "Succeeded"},
                    "type": "Microsoft.Network/virtualNetworks/subnets/delegations",
                })]),
                "privateEndpointNetworkPolicies": "Disabled",
                "privateLinkServiceNetworkPolicies": "Enabled",
            });
            if *name == SUBNET_PE {
                props["privateEndpoints"] =
                    specs.iter().map(|s| json!({"id": resource_id(cfg, PRIVATE_ENDPOINT, &s.name())})).collect();
            }
            let mut s = sub_ref(&vnet_id, "subnets", name, props);
            s["type"] = json!("Microsoft.Network/virtualNetworks/subnets");
            s
        })
        .collect();
    vnet.properties = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": guid(&vnet_id),
        "addressSpace": {"addressPrefixes": ["10.20.0.0/16"]},
        "subnets": subnets,
        "virtualNetworkPeerings": [],
        "enableDdosProtection": false,
        "privateEndpointVNetPolicies": "Disabled",
    });
    let mut out = vec![vnet];

    for suffix in ["pe", "apps", "agw", "aks"] {
        let name = nsg_name(n, suffix);
        let id = resource_id(cfg, NSG, &name);
        let mut nsg = net(&name, NSG, tags);
        let rule = |rname: &str, priority: u32, direction: &str, access: &str, port: &str, source: &str| {
            sub_ref(
                &id,
                "securityRules",
                rname,
                json!({
                    "provisioningState": "Succeeded", "protocol": "Tcp", "sourcePortRange": "*",
                    "destinationPortRange": port, "sourceAddressPrefix": source, "destinationAddressPrefix": "*",
                    "access": access, "priority": priority, "direction": direction,
                }),
            )
        };
        let rules = match suffix {
            "agw" => vec![
                rule("AllowGatewayManager", 100, "Inbound", "Allow", "65200-65535", "GatewayManager"),
                rule("AllowHttpsInbound", 110, "Inbound", "Allow", "443", "Internet"),
            ],
            _ => vec![
                rule("AllowVnetHttpsInbound", 100, "Inbound", "Allow", "443", "VirtualNetwork"),
                rule("DenyInternetOutbound", 4000, "Outbound", "Deny", "*", "*"),
            ],
        };
        nsg.properties = json!({
            "provisioningState": "Succeeded",
            "resourceGuid": guid(&id),
            "securityRules": rules,
            "subnets": SUBNETS.iter().filter(|s| s.2 == suffix)
                .map(|s| json!({"id": subnet_id(cfg, n, s.0)})).collect::<Vec<_>>(),
        });
        out.push(nsg);
    }

    let zones = zone::all(cfg);
    for z in &zones {
        let records = specs.iter().flat_map(|s| &s.records).filter(|r| &r.zone == z).count();
        let mut r = Resource::new(z.clone(), PRIVATE_DNS_ZONE);
        r.location = Some("global".to_owned());
        r.tags = tags.clone();
        r.etag = Some(guid(&format!("zone:{z}")));
        r.properties = json!({
            "provisioningState": "Succeeded",
            "internalId": format!("Id={}", guid(&format!("zone-internal:{z}"))),
            "maxNumberOfRecordSets": 25000,
            "numberOfRecordSets": records + 1,
            "maxNumberOfVirtualNetworkLinks": 1000,
            "numberOfVirtualNetworkLinks": 1,
            "maxNumberOfVirtualNetworkLinksWithRegistration": 100,
            "numberOfVirtualNetworkLinksWithRegistration": 0,
        });
        out.push(r);
    }
    for z in &zones {
        let link = format!("{z}/link-{}", n.vnet);
        let mut r = Resource::new(link.clone(), VNET_LINK);
        r.location = Some("global".to_owned());
        r.tags = tags.clone();
        r.etag = Some(guid(&format!("link:{link}")));
        r.properties = json!({
            "provisioningState": "Succeeded",
            "virtualNetwork": {"id": vnet_id},
            "registrationEnabled": false,
            "resolutionPolicy": "Default",
            "virtualNetworkLinkState": "Completed",
        });
        out.push(r);
    }
    out
}

pub fn app_gateway_fqdn(cfg: &Config, n: &Names) -> String {
    format!("{}.{}.cloudapp.azure.com", n.app_gateway, cfg.location.to_ascii_lowercase())
}

/// Public IP, WAF policy and the App Gateway in front of the two web apps.
pub fn app_gateway(cfg: &Config, n: &Names, tags: &Value) -> Vec<Resource> {
    let agw_id = resource_id(cfg, APP_GATEWAY, &n.app_gateway);
    let pip_id = resource_id(cfg, PUBLIC_IP, &n.app_gateway_ip);
    let waf_id = resource_id(cfg, WAF_POLICY, &n.waf_policy);
    let fe = format!("{agw_id}/frontendIPConfigurations/appGwPublicFrontendIp");

    let mut pip = net(&n.app_gateway_ip, PUBLIC_IP, tags);
    pip.sku = Some(json!({"name": "Standard", "tier": "Regional"}));
    pip.properties = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": guid(&pip_id),
        // The stack answers for it on loopback, like every private endpoint.
        "ipAddress": cfg.inventory.endpoint_ip,
        "publicIPAddressVersion": "IPv4",
        "publicIPAllocationMethod": "Static",
        "idleTimeoutInMinutes": 4,
        "dnsSettings": {"domainNameLabel": n.app_gateway, "fqdn": app_gateway_fqdn(cfg, n)},
        "ipTags": [],
        "ipConfiguration": {"id": fe},
    });

    let mut waf = net(&n.waf_policy, WAF_POLICY, tags);
    waf.properties = json!({
        "provisioningState": "Succeeded",
        "resourceState": "Enabled",
        "policySettings": {"state": "Enabled", "mode": "Prevention", "requestBodyCheck": true,
                           "maxRequestBodySizeInKb": 128, "fileUploadLimitInMb": 100},
        "customRules": [],
        "managedRules": {"managedRuleSets": [{"ruleSetType": "OWASP", "ruleSetVersion": "3.2", "ruleGroupOverrides": []}],
                         "exclusions": []},
        "applicationGateways": [{"id": agw_id}],
    });

    let mut agw = net(&n.app_gateway, APP_GATEWAY, tags);
    agw.identity = Some(json!({"type": "UserAssigned", "userAssignedIdentities": {
        cfg.identity.resource_id.clone(): {"principalId": cfg.identity.principal_id, "clientId": cfg.identity.client_id}}}));
    let child = |kind: &str, name: &str, props: Value| sub_ref(&agw_id, kind, name, props);
    let id_of = |kind: &str, name: &str| json!({"id": format!("{agw_id}/{kind}/{name}")});
    let backends: Vec<Value> = [&n.web_portal, &n.web_api]
        .iter()
        .map(|site| {
            child(
                "backendAddressPools",
                site,
                json!({
                    "provisioningState": "Succeeded",
                    "backendAddresses": [{"fqdn": format!("{site}.azurewebsites.net")}],
                }),
            )
        })
        .collect();
    agw.properties = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": guid(&agw_id),
        "sku": {"name": "WAF_v2", "tier": "WAF_v2", "family": "Generation_1"},
        "autoscaleConfiguration": {"minCapacity": 1, "maxCapacity": 3},
        "operationalState": "Running",
        "gatewayIPConfigurations": [child("gatewayIPConfigurations", "appGatewayIpConfig",
            json!({"provisioningState": "Succeeded", "subnet": {"id": subnet_id(cfg, n, SUBNET_AGW)}}))],
        "sslCertificates": [child("sslCertificates", "vibedata-tls", json!({
            "provisioningState": "Succeeded",
            "keyVaultSecretId": format!("https://{}.vault.azure.net/secrets/appgateway-tls", n.key_vault),
        }))],
        "frontendIPConfigurations": [child("frontendIPConfigurations", "appGwPublicFrontendIp", json!({
            "provisioningState": "Succeeded", "privateIPAllocationMethod": "Dynamic", "publicIPAddress": {"id": pip_id},
        }))],
        "frontendPorts": [child("frontendPorts", "port_443", json!({"provisioningState": "Succeeded", "port": 443}))],
        "backendAddressPools": backends,
        "backendHttpSettingsCollection": [child("backendHttpSettingsCollection", "https", json!({
            "provisioningState": "Succeeded", "port": 443, "protocol": "Https", "cookieBasedAffinity": "Disabled",
            "pickHostNameFromBackendAddress": true, "requestTimeout": 30, "probe": id_of("probes", "health"),
        }))],
        "httpListeners": [child("httpListeners", "https", json!({
            "provisioningState": "Succeeded", "protocol": "Https", "hostName": app_gateway_fqdn(cfg, n),
            "frontendIPConfiguration": {"id": fe}, "frontendPort": id_of("frontendPorts", "port_443"),
            "sslCertificate": id_of("sslCertificates", "vibedata-tls"), "requireServerNameIndication": false,
        }))],
        "requestRoutingRules": [child("requestRoutingRules", "portal", json!({
            "provisioningState": "Succeeded", "ruleType": "Basic", "priority": 100,
            "httpListener": id_of("httpListeners", "https"),
            "backendAddressPool": id_of("backendAddressPools", &n.web_portal),
            "backendHttpSettings": id_of("backendHttpSettingsCollection", "https"),
        }))],
        "probes": [child("probes", "health", json!({
            "provisioningState": "Succeeded", "protocol": "Https", "path": "/health", "interval": 30, "timeout": 30,
            "unhealthyThreshold": 3, "pickHostNameFromBackendHttpSettings": true, "minServers": 0,
            "match": {"statusCodes": ["200-399"]},
        }))],
        "enableHttp2": true,
        "firewallPolicy": {"id": waf_id},
    });
    vec![pip, waf, agw]
}

/// What a target resource's `privateEndpointConnections` lists for one private endpoint.
pub fn connection_ref(cfg: &Config, s: &PeSpec) -> Value {
    let pe_id = resource_id(cfg, PRIVATE_ENDPOINT, &s.name());
    let name = format!("{}.{}", s.name(), guid(&pe_id));
    envelope::resource(
        format!("{}/privateEndpointConnections/{name}", s.target_id),
        &name,
        &format!("{}/privateEndpointConnections", s.target_type),
    )
    .properties(json!({
        "provisioningState": "Succeeded",
        "privateEndpoint": {"id": pe_id},
        "groupIds": [s.group_id],
        "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"},
    }))
    .build()
}

/// A private endpoint and its NIC. The zone group (for [`DnsSource::ZoneGroup`]) is kept in the
/// endpoint's `children` and served below it.
pub fn private_endpoint(cfg: &Config, n: &Names, tags: &Value, s: &PeSpec) -> Vec<Resource> {
    let ip = cfg.inventory.endpoint_ip.clone();
    let (pe_name, nic_name) = (s.name(), s.nic_name());
    let pe_id = resource_id(cfg, PRIVATE_ENDPOINT, &pe_name);
    let nic_id = resource_id(cfg, NIC, &nic_name);
    let subnet = json!({"id": subnet_id(cfg, n, SUBNET_PE)});

    let mut pe = net(&pe_name, PRIVATE_ENDPOINT, tags);
    let custom_dns: Vec<Value> = match s.dns {
        DnsSource::CustomDnsConfigs => {
            s.records.iter().map(|r| json!({"fqdn": r.public, "ipAddresses": [ip]})).collect()
        }
        _ => vec![],
    };
    pe.properties = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": guid(&pe_id),
        "privateLinkServiceConnections": [{
            "name": pe_name,
            "id": format!("{pe_id}/privateLinkServiceConnections/{pe_name}"),
            "etag": etag(&format!("{pe_id}/plsc")),
            "type": "Microsoft.Network/privateEndpoints/privateLinkServiceConnections",
            "properties": {
                "provisioningState": "Succeeded",
                "privateLinkServiceId": s.target_id,
                "groupIds": [s.group_id],
                "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"},
            }
        }],
        "manualPrivateLinkServiceConnections": [],
        "customNetworkInterfaceName": nic_name,
        "subnet": subnet,
        "ipConfigurations": [],
        "networkInterfaces": [{"id": nic_id}],
        "customDnsConfigs": custom_dns,
        "applicationSecurityGroups": [],
        "isIPv6EnabledPrivateEndpoint": false,
    });
    if s.dns == DnsSource::ZoneGroup {
        let mut zones: Vec<&str> = Vec::new();
        for r in &s.records {
            if !zones.contains(&r.zone.as_str()) {
                zones.push(&r.zone);
            }
        }
        let configs: Vec<Value> = zones
            .iter()
            .map(|z| {
                json!({
                    "name": z.replace('.', "-"),
                    "properties": {
                        "privateDnsZoneId": resource_id(cfg, PRIVATE_DNS_ZONE, z),
                        "recordSets": s.records.iter().filter(|r| r.zone == *z).map(|r| json!({
                            "recordType": "A",
                            "recordSetName": r.set,
                            "fqdn": r.private_fqdn(),
                            "ttl": 10,
                            "ipAddresses": [ip],
                            "provisioningState": "Succeeded",
                        })).collect::<Vec<_>>(),
                    }
                })
            })
            .collect();
        pe.children.insert(
            "privateDnsZoneGroups",
            json!([{
                "name": "default",
                "id": format!("{pe_id}/privateDnsZoneGroups/default"),
                "etag": etag(&format!("{pe_id}/zonegroup")),
                "properties": {"provisioningState": "Succeeded", "privateDnsZoneConfigs": configs},
            }]),
        );
    }

    let mut nic = net(&nic_name, NIC, tags);
    nic.kind = Some("Regular");
    let ipconf = format!("privateEndpointIpConfig.{}", guid(&format!("{nic_id}/ipconfig")));
    nic.properties = json!({
        "provisioningState": "Succeeded",
        "resourceGuid": guid(&nic_id),
        "ipConfigurations": [{
            "name": ipconf,
            "id": format!("{nic_id}/ipConfigurations/{ipconf}"),
            "etag": etag(&format!("{nic_id}/ipconfig")),
            "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
            "properties": {
                "provisioningState": "Succeeded",
                "privateIPAddress": ip,
                "privateIPAllocationMethod": "Dynamic",
                "subnet": subnet,
                "primary": true,
                "privateIPAddressVersion": "IPv4",
                "privateLinkConnectionProperties": {
                    "groupId": s.group_id,
                    "requiredMemberName": s.group_id,
                    "fqdns": s.records.iter().map(|r| r.public.clone()).collect::<Vec<_>>(),
                },
            }
        }],
        "dnsSettings": {"dnsServers": [], "appliedDnsServers": [],
                        "internalDomainNameSuffix": format!("{}.bx.internal.cloudapp.net", &guid(&nic_id)[..8])},
        "macAddress": "",
        "vnetEncryptionSupported": false,
        "enableIPForwarding": false,
        "disableTcpStateTracking": false,
        "enableAcceleratedNetworking": false,
        "hostedWorkloads": [],
        "tapConfigurations": [],
        "privateEndpoint": {"id": pe_id},
        "nicType": "Standard",
        "allowPort25Out": true,
        "auxiliaryMode": "None",
        "auxiliarySku": "None",
    });
    vec![pe, nic]
}

/// What lies below a network resource, as the provider table's rows name it.
#[derive(Debug, Clone, Copy)]
pub enum Nested {
    ZoneGroups,
    Subnets,
    VnetLinks,
}

/// `GET .../providers/Microsoft.Network/{type}/{name}/{childType}[/{childName}]`.
pub fn get_nested(st: &Shared, req: &ArmRequest, nested: Nested) -> Response {
    let (parent_type, child_kind) = match nested {
        Nested::ZoneGroups => (PRIVATE_ENDPOINT, "privateDnsZoneGroups"),
        Nested::Subnets => (VNET, "subnets"),
        Nested::VnetLinks => (PRIVATE_DNS_ZONE, "virtualNetworkLinks"),
    };
    let (rg, parent_name) = (&req.segs[3], &req.segs[7]);
    let cfg = &st.config;
    let arm = st.arm.lock();
    if !arm.groups.contains_key(&rg.to_ascii_lowercase()) {
        return groups::not_found(rg);
    }
    let in_group = rg.eq_ignore_ascii_case(&cfg.resource_group);
    let find = |rtype: &str, name: &str| {
        arm.inventory.iter().find(|r| in_group && r.resource_type == rtype && r.name.eq_ignore_ascii_case(name))
    };
    let Some(parent) = find(parent_type, parent_name) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The Resource '{parent_type}/{parent_name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
        );
    };
    let children: Vec<Value> = match child_kind {
        "privateDnsZoneGroups" => {
            parent.children.get("privateDnsZoneGroups").and_then(Value::as_array).cloned().unwrap_or_default()
        }
        "subnets" => parent.properties["subnets"].as_array().cloned().unwrap_or_default(),
        _ => arm
            .inventory
            .iter()
            .filter(|r| {
                r.resource_type == VNET_LINK
                    && r.name.split('/').next().is_some_and(|z| z.eq_ignore_ascii_case(&parent.name))
            })
            .map(|r| {
                let mut v = r.full(cfg);
                // A link's own GET names it by its last segment.
                v["name"] = json!(r.name.rsplit('/').next().unwrap_or_default());
                v
            })
            .collect(),
    };
    let child_name = req.param("childName");
    if child_name.is_empty() {
        return json(StatusCode::OK, json!({"value": children}));
    }
    match children.into_iter().find(|c| c["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(child_name))) {
        Some(c) => json(StatusCode::OK, c),
        None => arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Resource {}/{child_kind}/{child_name} not found.", parent.id(cfg)),
        ),
    }
}
