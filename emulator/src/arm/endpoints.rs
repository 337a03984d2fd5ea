//! The platform's endpoints: which private endpoints exist, how each publishes its DNS (zone
//! group, `customDnsConfigs`, or only its NIC), which names and IP discovery must find for each,
//! and where the stack really serves them (`inventory.ports`, the apps listener).

use serde::Serialize;

use super::inventory::{resource_id, Names, REGISTRY_TYPE};
use super::{network, platform};
use crate::config::Config;

/// How discovery finds a private endpoint's names and addresses, in the order it should try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DnsSource {
    /// `privateDnsZoneGroups/default` record sets (and an empty `customDnsConfigs`).
    ZoneGroup,
    /// No zone group; `customDnsConfigs` on the private endpoint.
    CustomDnsConfigs,
    /// Neither; only the NIC's `ipConfigurations[].properties.privateLinkConnectionProperties`.
    Nic,
}

/// One DNS record of a private endpoint: the record set in a private zone, and the public name
/// clients use (which CNAMEs to the private one in Azure).
#[derive(Debug, Clone)]
pub struct Record {
    pub zone: String,
    pub set: String,
    pub public: String,
}

impl Record {
    pub fn private_fqdn(&self) -> String {
        format!("{}.{}", self.set, self.zone)
    }
}

/// A private endpoint to build: what it connects to and how its DNS is published.
#[derive(Debug, Clone)]
pub struct PeSpec {
    pub target_id: String,
    pub target_name: String,
    pub target_type: &'static str,
    pub group_id: &'static str,
    /// The `inventory.ports` key of the service behind it (`apps` = the apps listener).
    pub service: &'static str,
    pub records: Vec<Record>,
    pub dns: DnsSource,
}

impl PeSpec {
    pub fn name(&self) -> String {
        format!("pe-{}-{}", self.target_name, self.group_id.to_ascii_lowercase())
    }
    pub fn nic_name(&self) -> String {
        format!("nic-{}", self.name())
    }
}

/// What discovery should find for one endpoint (a private endpoint, or the App Gateway's
/// public frontend), and where the stack really serves it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The private endpoint's id; `null` for the App Gateway frontend (a public IP).
    pub private_endpoint_id: Option<String>,
    pub name: String,
    pub target_resource_id: String,
    pub target_type: &'static str,
    pub component: String,
    pub group_ids: Vec<&'static str>,
    pub dns_source: Option<DnsSource>,
    /// The FQDNs the resolver finds, from the first source in [`DnsSource`] order that has any.
    pub fqdns: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// Every name the DNS stand-in answers for this endpoint (private and public).
    pub dns_names: Vec<String>,
    pub service: &'static str,
    /// Where the stack serves it: `inventory.ports[service]`, or `listen.apps`.
    pub port: u16,
    /// Azure's port for it: 443, Postgres 5432.
    pub default_port: u16,
    /// `stack` (a real local service) or `emulator` (the apps listener).
    pub served_by: &'static str,
}

/// A component the stack does not run, answered by the apps listener.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    pub resource_id: String,
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// Host names it answers for (Host header / SNI).
    pub hosts: Vec<String>,
    /// The path its health probe uses in Azure too, if it has one; `null` = no service-level
    /// probe (the component is optional and its service check reports Unknown).
    pub probe_path: Option<&'static str>,
}

/// The health path a component's service probe uses, in Azure as locally.
pub fn probe_path(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        // `siteConfig.healthCheckPath` of the sites; the App Gateway's own probe path.
        platform::SITES | network::APP_GATEWAY => Some("/health"),
        // kube-apiserver's readiness endpoint (anonymous by default).
        platform::AKS => Some("/readyz"),
        // Automation: the runbook check goes through ARM. AI Search and AI Foundry have no
        // anonymous health API: network checks only, the service check is optional (Unknown).
        _ => None,
    }
}

pub fn port_of(cfg: &Config, service: &str) -> u16 {
    let default = if service == "postgres" { 5432 } else { 443 };
    if service == "apps" {
        return cfg.listen.port(crate::listeners::APPS.name).unwrap_or(default);
    }
    cfg.inventory.ports.get(service).copied().unwrap_or(default)
}

pub fn endpoint(cfg: &Config, s: &PeSpec) -> Endpoint {
    let ip = cfg.inventory.endpoint_ip.clone();
    let fqdns = match s.dns {
        DnsSource::ZoneGroup => s.records.iter().map(Record::private_fqdn).collect(),
        DnsSource::CustomDnsConfigs | DnsSource::Nic => s.records.iter().map(|r| r.public.clone()).collect(),
    };
    let mut dns_names: Vec<String> = Vec::new();
    for r in &s.records {
        dns_names.push(r.public.clone());
        dns_names.push(r.private_fqdn());
    }
    Endpoint {
        private_endpoint_id: Some(resource_id(cfg, network::PRIVATE_ENDPOINT, &s.name())),
        name: s.name(),
        target_resource_id: s.target_id.clone(),
        target_type: s.target_type,
        component: s.target_name.clone(),
        group_ids: vec![s.group_id],
        dns_source: Some(s.dns),
        fqdns,
        ip_addresses: vec![ip],
        dns_names,
        service: s.service,
        port: port_of(cfg, s.service),
        default_port: if s.service == "postgres" { 5432 } else { 443 },
        served_by: if s.service == "apps" { "emulator" } else { "stack" },
    }
}

/// Azure's short region codes, used in Automation's host names (`<id>.webhook.eus...`).
pub fn region_code(location: &str) -> String {
    const CODES: &[(&str, &str)] = &[
        ("eastus", "eus"),
        ("eastus2", "eus2"),
        ("westus", "wus"),
        ("westus2", "wus2"),
        ("westus3", "wus3"),
        ("centralus", "cus"),
        ("northeurope", "ne"),
        ("westeurope", "we"),
        ("uksouth", "uks"),
        ("swedencentral", "sec"),
    ];
    CODES
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(location))
        .map_or_else(|| location.to_ascii_lowercase(), |(_, c)| (*c).to_owned())
}

/// The private endpoints: one per service, with the DNS shapes discovery must handle. Most
/// publish a zone group; AI Search and AI Foundry only `customDnsConfigs`; the AKS API server
/// only its NIC.
pub fn private_endpoint_specs(cfg: &Config, n: &Names) -> Vec<PeSpec> {
    let loc = cfg.location.to_ascii_lowercase();
    let rec = |zone: &str, set: &str, public: String| Record { zone: zone.to_owned(), set: set.to_owned(), public };
    let pe = |target_type: &'static str,
              target_name: &str,
              group_id: &'static str,
              service: &'static str,
              records: Vec<Record>,
              dns: DnsSource| PeSpec {
        target_id: resource_id(cfg, target_type, target_name),
        target_name: target_name.to_owned(),
        target_type,
        group_id,
        service,
        records,
        dns,
    };
    let zg = DnsSource::ZoneGroup;
    let st = &n.storage;
    let aa_id = platform::automation_account_guid(cfg, n);
    let rc = region_code(&cfg.location);
    let webhook = format!("{aa_id}.webhook.{rc}");
    let mut specs = vec![
        pe(
            platform::KEY_VAULT,
            &n.key_vault,
            "vault",
            "keyVault",
            vec![rec(network::zone::VAULT, &n.key_vault, format!("{}.vault.azure.net", n.key_vault))],
            zg,
        ),
        pe(
            platform::STORAGE,
            st,
            "blob",
            "blob",
            vec![rec(network::zone::BLOB, st, format!("{st}.blob.core.windows.net"))],
            zg,
        ),
        pe(
            platform::STORAGE,
            st,
            "queue",
            "queue",
            vec![rec(network::zone::QUEUE, st, format!("{st}.queue.core.windows.net"))],
            zg,
        ),
        pe(
            platform::STORAGE,
            st,
            "table",
            "table",
            vec![rec(network::zone::TABLE, st, format!("{st}.table.core.windows.net"))],
            zg,
        ),
        pe(
            REGISTRY_TYPE,
            &n.registry,
            "registry",
            "registry",
            vec![
                rec(network::zone::REGISTRY, &n.registry, format!("{}.azurecr.io", n.registry)),
                rec(
                    network::zone::REGISTRY,
                    &format!("{}.{loc}.data", n.registry),
                    format!("{}.{loc}.data.azurecr.io", n.registry),
                ),
            ],
            zg,
        ),
        pe(
            platform::POSTGRES,
            &n.postgres,
            "postgresqlServer",
            "postgres",
            vec![rec(network::zone::POSTGRES, &n.postgres, format!("{}.postgres.database.azure.com", n.postgres))],
            zg,
        ),
        pe(
            platform::AUTOMATION,
            &n.automation,
            "Webhook",
            "apps",
            vec![rec(network::zone::AUTOMATION, &webhook, format!("{webhook}.azure-automation.net"))],
            zg,
        ),
    ];
    for site in [&n.web_portal, &n.web_api, &n.function_app] {
        specs.push(pe(
            platform::SITES,
            site,
            "sites",
            "apps",
            vec![
                rec(network::zone::SITES, site, format!("{site}.azurewebsites.net")),
                rec(network::zone::SITES, &format!("{site}.scm"), format!("{site}.scm.azurewebsites.net")),
            ],
            zg,
        ));
    }
    specs.push(pe(
        platform::SEARCH,
        &n.search,
        "searchService",
        "apps",
        vec![rec(network::zone::SEARCH, &n.search, format!("{}.search.windows.net", n.search))],
        DnsSource::CustomDnsConfigs,
    ));
    specs.push(pe(
        platform::COGNITIVE,
        &n.foundry,
        "account",
        "apps",
        vec![
            rec(network::zone::COGNITIVE, &n.foundry, format!("{}.cognitiveservices.azure.com", n.foundry)),
            rec(network::zone::OPENAI, &n.foundry, format!("{}.openai.azure.com", n.foundry)),
        ],
        DnsSource::CustomDnsConfigs,
    ));
    let (public, private) = platform::aks_fqdns(cfg, n);
    let set = private.trim_end_matches(&format!(".{}", network::zone::aks(cfg))).to_owned();
    specs.push(pe(
        platform::AKS,
        &n.aks,
        "management",
        "apps",
        vec![Record { zone: network::zone::aks(cfg), set, public }],
        DnsSource::Nic,
    ));
    specs
}
