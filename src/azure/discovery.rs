//! Discovery of a deployment's resources through Resource Manager: list the resource group
//! (following `nextLink`), then GET every resource whose type carries endpoints, in parallel
//! within a bound. Resource Graph is not used: it lags ARM by minutes to hours
//! (runtime-contracts §5.2), and the registry must describe what the deployment just created.
//!
//! Private endpoints are resolved here too ([`resolve_private_endpoint`], pure): the zone
//! group's record sets first, then `customDnsConfigs`, then the NIC's IP configurations — the
//! order in which each source is authoritative for what clients inside the network resolve.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::arm::{decode, Arm};
use super::permission::Permission;
use super::pipeline::Request;
use super::AzureError;

/// `Resources_ListByResourceGroup` (runtime-contracts §5.1).
pub const LIST_API: &str = "2021-04-01";

const GROUP: &str = "Microsoft.Resources/resourceGroups";

/// [`Discovery::list`].
pub const LIST: Permission =
    Permission::action("Microsoft.Resources/subscriptions/resourceGroups/resources/read", GROUP);
/// Each endpoint-carrying resource's GET: its type's `read` (the exact string is recorded per call).
pub const READ_ANY: Permission = Permission::action("*/read", GROUP);
/// A private endpoint's DNS zone groups.
pub const ZONE_GROUPS: Permission = Permission::action(
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/read",
    "Microsoft.Network/privateEndpoints",
);
/// The endpoint's NIC, the last source of its private IPs.
pub const NIC_READ: Permission =
    Permission::action("Microsoft.Network/networkInterfaces/read", "Microsoft.Network/networkInterfaces");
/// A web app's settings (`config/appsettings/list`, a POST): not in Reader.
pub const APP_SETTINGS: Permission =
    Permission::action("Microsoft.Web/sites/config/list/action", "Microsoft.Web/sites").unconfirmed();
/// Network RP: private endpoints, their zone groups, NICs, public IPs, application gateways.
pub const NETWORK_API: &str = "2024-05-01";
pub const PRIVATE_ENDPOINT: &str = "microsoft.network/privateendpoints";
pub const NIC: &str = "microsoft.network/networkinterfaces";
pub const PUBLIC_IP: &str = "microsoft.network/publicipaddresses";
pub const SITE: &str = "microsoft.web/sites";
const WEB_API: &str = "2023-12-01";

/// The api-version to GET a type with, for the types whose properties carry endpoints (or that
/// endpoints hang off). Types not listed are recorded from the list alone.
pub fn api_version(resource_type: &str) -> Option<&'static str> {
    Some(match resource_type.to_ascii_lowercase().as_str() {
        PRIVATE_ENDPOINT | PUBLIC_IP | "microsoft.network/applicationgateways" => NETWORK_API,
        "microsoft.keyvault/vaults" => "2023-07-01",
        "microsoft.storage/storageaccounts" => "2023-05-01",
        "microsoft.containerregistry/registries" => "2023-07-01",
        "microsoft.dbforpostgresql/flexibleservers" => "2024-08-01",
        "microsoft.automation/automationaccounts" => "2023-11-01",
        SITE => WEB_API,
        "microsoft.containerservice/managedclusters" => "2024-09-01",
        "microsoft.search/searchservices" => "2023-11-01",
        "microsoft.cognitiveservices/accounts" => "2024-10-01",
        // The project's endpoints["AI Foundry API"] is where its agents and index assets live.
        "microsoft.cognitiveservices/accounts/projects" => "2025-06-01",
        _ => return None,
    })
}

/// One item of the resource group's list (`GenericResourceExpanded`, without `properties`).
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub sku: Option<Value>,
    #[serde(default)]
    pub tags: Option<Map<String, Value>>,
}

impl Listed {
    pub fn is(&self, lower_type: &str) -> bool {
        self.resource_type.eq_ignore_ascii_case(lower_type)
    }
}

/// A listed resource and what its GETs returned.
#[derive(Debug, Clone)]
pub struct Found {
    pub listed: Listed,
    /// The resource's own GET, for endpoint-carrying types.
    pub body: Option<Value>,
    /// Private endpoints: every `privateDnsZoneGroups` item.
    pub zone_groups: Vec<Value>,
    /// Sites: the app settings. Held in memory only, to find where values live; literal values
    /// are never copied out of here (they can be secrets, e.g. a storage connection string).
    pub app_settings: Option<Map<String, Value>>,
}

impl Found {
    pub fn prop(&self, pointer: &str) -> Option<&Value> {
        self.body.as_ref().and_then(|b| b.pointer(&format!("/properties{pointer}")))
    }
}

/// Where a private endpoint's addresses came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsSource {
    ZoneGroup,
    CustomDnsConfigs,
    Nic,
}

impl DnsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsSource::ZoneGroup => "zoneGroup",
            DnsSource::CustomDnsConfigs => "customDnsConfigs",
            DnsSource::Nic => "nic",
        }
    }
}

/// A private endpoint resolved to its target, private FQDNs and private IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    pub private_endpoint_id: String,
    pub target_id: String,
    pub group_ids: Vec<String>,
    pub source: Option<DnsSource>,
    /// `(fqdn, ip addresses)`, in the order the source lists them.
    pub records: Vec<(String, Vec<String>)>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Resolves a private endpoint from its GET, its zone groups and (when those two have nothing)
/// its NICs. Pure. `None` when the body names no target resource.
pub fn resolve_private_endpoint(pe: &Value, zone_groups: &[Value], nics: &[Value]) -> Option<ResolvedEndpoint> {
    let props = pe.get("properties")?;
    let connection = ["privateLinkServiceConnections", "manualPrivateLinkServiceConnections"]
        .iter()
        .filter_map(|k| props.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(|c| c.get("properties"))?;
    let target_id = connection.get("privateLinkServiceId")?.as_str()?.to_owned();
    let group_ids = strings(connection.get("groupIds"));
    let from_zones: Vec<(String, Vec<String>)> = zone_groups
        .iter()
        .filter_map(|g| g.pointer("/properties/privateDnsZoneConfigs").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.pointer("/properties/recordSets").and_then(Value::as_array))
        .flatten()
        .filter(|r| r.get("recordType").and_then(Value::as_str).is_none_or(|t| t.eq_ignore_ascii_case("A")))
        .filter_map(|r| {
            Some((r.get("fqdn")?.as_str()?.trim_end_matches('.').to_owned(), strings(r.get("ipAddresses"))))
        })
        .collect();
    let custom: Vec<(String, Vec<String>)> = props
        .get("customDnsConfigs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((c.get("fqdn")?.as_str()?.trim_end_matches('.').to_owned(), strings(c.get("ipAddresses"))))
        })
        .collect();
    let from_nics: Vec<(String, Vec<String>)> = nics
        .iter()
        .filter_map(|n| n.pointer("/properties/ipConfigurations").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("properties"))
        .flat_map(|p| {
            let ip = p.get("privateIPAddress").and_then(Value::as_str).map(str::to_owned);
            strings(p.pointer("/privateLinkConnectionProperties/fqdns"))
                .into_iter()
                .map(move |f| (f, ip.clone().into_iter().collect()))
        })
        .collect();
    let (source, records) =
        [(DnsSource::ZoneGroup, from_zones), (DnsSource::CustomDnsConfigs, custom), (DnsSource::Nic, from_nics)]
            .into_iter()
            .find(|(_, r)| !r.is_empty())
            .map(|(s, r)| (Some(s), r))
            .unwrap_or((None, Vec::new()));
    Some(ResolvedEndpoint {
        private_endpoint_id: pe.get("id")?.as_str()?.to_owned(),
        target_id,
        group_ids,
        source,
        records,
    })
}

/// The deployment as ARM reports it now.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// In list order.
    pub resources: Vec<Found>,
    /// NICs read for private endpoints that had neither zone-group records nor
    /// `customDnsConfigs`.
    pub nics: Vec<Value>,
    pub requests: usize,
}

/// Lists and reads one resource group.
pub struct Discovery {
    arm: Arm,
    group_id: String,
    concurrency: usize,
}

impl Discovery {
    pub fn new(arm: Arm, subscription: &str, resource_group: &str, concurrency: usize) -> Discovery {
        Discovery {
            arm,
            group_id: format!("/subscriptions/{subscription}/resourceGroups/{resource_group}"),
            concurrency: concurrency.max(1),
        }
    }

    /// Every resource of the group, following `nextLink` verbatim.
    pub async fn list(&self) -> Result<Vec<Listed>, AzureError> {
        self.arm.list(&format!("{}/resources", self.group_id), LIST_API, &LIST).await
    }

    /// Lists the group, then reads every endpoint-carrying resource, `concurrency` at a time.
    pub async fn discover(&self) -> Result<Discovered, AzureError> {
        let listed = self.list().await?;
        tracing::info!(resources = listed.len(), group = %self.group_id, "listed the resource group");
        let total = listed.iter().filter(|l| api_version(&l.resource_type).is_some()).count();
        let done = AtomicUsize::new(0);
        let reads: Vec<_> = listed.into_iter().map(|l| self.read(l, &done, total)).collect();
        let resources: Vec<Found> = futures::stream::iter(reads).buffered(self.concurrency).try_collect().await?;
        // The NIC is the last resort: only for endpoints whose other two sources are empty.
        let wanted: Vec<String> = resources
            .iter()
            .filter(|f| f.listed.is(PRIVATE_ENDPOINT))
            .filter(|f| {
                f.body
                    .as_ref()
                    .and_then(|b| resolve_private_endpoint(b, &f.zone_groups, &[]))
                    .is_some_and(|r| r.source.is_none())
            })
            .flat_map(|f| f.prop("/networkInterfaces").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let gets: Vec<_> = wanted.iter().map(|id| self.arm.get::<Value>(id, NETWORK_API, &NIC_READ)).collect();
        let nics: Vec<Value> = futures::stream::iter(gets).buffered(self.concurrency).try_collect().await?;
        let requests = resources
            .iter()
            .map(|f| {
                f.body.is_some() as usize + f.listed.is(PRIVATE_ENDPOINT) as usize + f.app_settings.is_some() as usize
            })
            .sum::<usize>()
            + nics.len();
        Ok(Discovered { resources, nics, requests })
    }

    async fn read(&self, listed: Listed, done: &AtomicUsize, total: usize) -> Result<Found, AzureError> {
        let Some(api) = api_version(&listed.resource_type) else {
            return Ok(Found { listed, body: None, zone_groups: Vec::new(), app_settings: None });
        };
        let read = Request::new(Method::GET, self.arm.url(&listed.id, api), &listed.id, &READ_ANY)
            .concrete(format!("{}/read", listed.resource_type));
        let body: Value = self.arm.get_as(read).await?;
        let zone_groups = if listed.is(PRIVATE_ENDPOINT) {
            self.arm.list(&format!("{}/privateDnsZoneGroups", listed.id), NETWORK_API, &ZONE_GROUPS).await?
        } else {
            Vec::new()
        };
        let app_settings = if listed.is(SITE) { Some(self.app_settings(&listed.id).await?) } else { None };
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(resource = %listed.id, "read {n}/{total} resources");
        Ok(Found { listed, body: Some(body), zone_groups, app_settings })
    }

    /// `POST {site}/config/appsettings/list`: a read, though ARM makes it a POST because the
    /// answer holds values; repeating it is harmless.
    async fn app_settings(&self, site_id: &str) -> Result<Map<String, Value>, AzureError> {
        let path = format!("{site_id}/config/appsettings/list");
        let resp = self
            .arm
            .send(Request::new(Method::POST, self.arm.url(&path, WEB_API), site_id, &APP_SETTINGS).idempotent())
            .await?;
        let v: Value = decode(resp, site_id).await?;
        Ok(v.get("properties").and_then(Value::as_object).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pe(custom: Value) -> Value {
        json!({"id": "/s/pe", "properties": {
            "privateLinkServiceConnections": [{"properties": {"privateLinkServiceId": "/s/kv", "groupIds": ["vault"]}}],
            "customDnsConfigs": custom,
            "networkInterfaces": [{"id": "/s/nic"}]}})
    }

    #[test]
    fn zone_group_records_win_over_custom_dns_configs() {
        let groups = [json!({"properties": {"privateDnsZoneConfigs": [{"properties": {"recordSets": [
            {"recordType": "A", "fqdn": "kv.privatelink.vaultcore.azure.net.", "ipAddresses": ["10.0.0.4"]}]}}]}})];
        let r = resolve_private_endpoint(
            &pe(json!([{"fqdn": "kv.vault.azure.net", "ipAddresses": ["10.0.0.5"]}])),
            &groups,
            &[],
        )
        .unwrap();
        assert_eq!(r.source, Some(DnsSource::ZoneGroup));
        assert_eq!(r.records, [("kv.privatelink.vaultcore.azure.net".to_owned(), vec!["10.0.0.4".to_owned()])]);
        assert_eq!((r.target_id.as_str(), r.group_ids.as_slice()), ("/s/kv", ["vault".to_owned()].as_slice()));
    }

    #[test]
    fn custom_dns_configs_then_the_nic() {
        let r = resolve_private_endpoint(
            &pe(json!([{"fqdn": "s.search.windows.net", "ipAddresses": ["10.0.0.5"]}])),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(r.source, Some(DnsSource::CustomDnsConfigs));
        let nic = json!({"properties": {"ipConfigurations": [{"properties": {"privateIPAddress": "10.0.0.6",
            "privateLinkConnectionProperties": {"fqdns": ["aks.hcp.eastus.azmk8s.io"]}}}]}});
        let r = resolve_private_endpoint(&pe(json!([])), &[], &[nic]).unwrap();
        assert_eq!(r.source, Some(DnsSource::Nic));
        assert_eq!(r.records, [("aks.hcp.eastus.azmk8s.io".to_owned(), vec!["10.0.0.6".to_owned()])]);
        let none = resolve_private_endpoint(&pe(json!([])), &[], &[]).unwrap();
        assert_eq!((none.source, none.records.len()), (None, 0));
    }

    #[test]
    fn only_endpoint_carrying_types_are_read() {
        assert_eq!(api_version("Microsoft.Network/privateEndpoints"), Some(NETWORK_API));
        assert_eq!(api_version("microsoft.keyvault/VAULTS"), Some("2023-07-01"));
        assert_eq!(api_version("Microsoft.Network/networkSecurityGroups"), None);
    }
}
