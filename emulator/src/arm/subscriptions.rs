//! What a client reads before it touches a resource (`emulator/specs/az-cli.md`): the cloud's
//! endpoints (`GET /metadata/endpoints`, what `az cloud register` discovers), the subscription
//! and tenant (`az login` lists them), the locations, and the resource providers with their
//! resource types and api-versions (`az resource show` without `--api-version` picks one from
//! there). Providers answer from the provider table's type half (`providers::types`), so what a
//! client discovers is what the dispatcher accepts.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::ArmRequest;
use crate::config::Config;
use crate::http::{arm_error, json, origin};
use crate::providers::types::{self, RESOURCE_TYPES};
use crate::state::Shared;

/// Microsoft.Resources subscriptions/tenants: 2022-12-01 is what azure-cli 2.91 sends
/// (`MGMT_RESOURCE_SUBSCRIPTIONS` of its profile); the others are the earlier stable versions.
pub const SUBSCRIPTIONS_API_VERSIONS: &[&str] = &["2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2016-06-01"];
/// `/metadata/endpoints`: 2022-09-01 is what `az cloud register` sends (one cloud, an object);
/// 2019-05-01 and 2020-06-01 answer every cloud as an array (what `ARM_CLOUD_METADATA_URL`
/// points at); 2015-01-01 is the original, smaller object.
pub const METADATA_API_VERSIONS: &[&str] = &["2022-09-01", "2020-06-01", "2019-05-01", "2015-01-01"];

/// The public cloud's names: the stack stands in for `AzureCloud` (its DNS suffixes and token
/// audiences are Azure's), only Resource Manager is the stack's own.
const CLOUD_NAME: &str = "AzureCloud";
const LOGIN: &str = "https://login.microsoftonline.com";

/// `GET /metadata/endpoints?api-version=..` (no token needed, as in Azure).
pub async fn metadata_endpoints(
    State(_st): State<Shared>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let resource_manager = format!("{}/", origin(&headers, &uri));
    let version = q.get("api-version").map(String::as_str);
    match version {
        None => arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ),
        Some("2015-01-01") => json(
            StatusCode::OK,
            json!({
                "galleryEndpoint": "https://gallery.azure.com/",
                "graphEndpoint": "https://graph.windows.net/",
                "portalEndpoint": "https://portal.azure.com/",
                "authentication": {"loginEndpoint": LOGIN, "audiences": audiences()},
            }),
        ),
        Some("2019-05-01" | "2020-06-01") => json(StatusCode::OK, json!([cloud(&resource_manager)])),
        Some("2022-09-01") => json(StatusCode::OK, cloud(&resource_manager)),
        Some(v) => arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                METADATA_API_VERSIONS.join(",")
            ),
        ),
    }
}

fn audiences() -> Value {
    json!(["https://management.core.windows.net/", "https://management.azure.com/"])
}

/// One cloud as `/metadata/endpoints` 2022-09-01 describes it (the public cloud's answer, with
/// `resourceManager` pointing at the stack).
fn cloud(resource_manager: &str) -> Value {
    json!({
        "portal": "https://portal.azure.com",
        "authentication": {
            "loginEndpoint": LOGIN,
            "audiences": audiences(),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "name": CLOUD_NAME,
        "suffixes": {
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": "database.windows.net",
            "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
            "azureFrontDoorEndpointSuffix": "azurefd.net",
            "storageSyncEndpointSuffix": "afs.azure.net",
            "mhsmDns": "managedhsm.azure.net",
            "mysqlServerEndpoint": "mysql.database.azure.com",
            "postgresqlServerEndpoint": "postgres.database.azure.com",
            "sqlServerEndpoint": "database.windows.net",
            "synapseAnalytics": "dev.azuresynapse.net",
            "attestationEndpoint": "attest.azure.net",
        },
        "batch": "https://batch.core.windows.net/",
        "resourceManager": resource_manager,
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
        "attestationResourceId": "https://attest.azure.net",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "ossrDbmsResourceId": "https://ossrdbms-aad.database.windows.net",
    })
}

/// `Subscription` (2022-12-01).
fn subscription(cfg: &Config) -> Value {
    json!({
        "id": format!("/subscriptions/{}", cfg.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": cfg.subscription_id,
        "tenantId": cfg.tenant_id,
        "displayName": "Vibedata local stack",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

/// `GET /subscriptions`: the one subscription the identity sees.
pub fn list(st: &Shared, _req: &ArmRequest) -> Response {
    json(StatusCode::OK, json!({"value": [subscription(&st.config)], "count": {"type": "Total", "value": 1}}))
}

/// `GET /subscriptions/{s}` (the dispatcher already refused any other subscription).
pub fn get(st: &Shared, _req: &ArmRequest) -> Response {
    json(StatusCode::OK, subscription(&st.config))
}

/// `GET /tenants`: the identity's home tenant.
pub fn tenants(st: &Shared, _req: &ArmRequest) -> Response {
    let t = &st.config.tenant_id;
    json(
        StatusCode::OK,
        json!({"value": [{
            "id": format!("/tenants/{t}"),
            "tenantId": t,
            "tenantCategory": "Home",
            "displayName": "Vibedata local stack",
            "domains": ["vibedata.local"],
            "defaultDomain": "vibedata.local",
            "tenantType": "AAD",
        }]}),
    )
}

/// The region's display name, as ARM shows it in `locations` lists.
fn display_name(location: &str) -> String {
    match location.to_ascii_lowercase().as_str() {
        "eastus" => "East US".to_owned(),
        "eastus2" => "East US 2".to_owned(),
        "westeurope" => "West Europe".to_owned(),
        "northeurope" => "North Europe".to_owned(),
        "westus2" => "West US 2".to_owned(),
        _ => location.to_owned(),
    }
}

/// `GET /subscriptions/{s}/locations`: the stack's one region.
pub fn locations(st: &Shared, _req: &ArmRequest) -> Response {
    let cfg = &st.config;
    let name = cfg.location.to_ascii_lowercase();
    json(
        StatusCode::OK,
        json!({"value": [{
            "id": format!("/subscriptions/{}/locations/{name}", cfg.subscription_id),
            "name": name,
            "type": "Region",
            "displayName": display_name(&cfg.location),
            "regionalDisplayName": display_name(&cfg.location),
            "metadata": {"regionType": "Physical", "regionCategory": "Recommended"},
        }]}),
    )
}

/// Every namespace of the type table, with its types in table order.
fn namespaces() -> BTreeMap<String, (&'static str, Vec<&'static types::ResourceType>)> {
    let mut out: BTreeMap<String, (&'static str, Vec<&'static types::ResourceType>)> = BTreeMap::new();
    for t in RESOURCE_TYPES {
        let (ns, _) = types::split(t.name);
        out.entry(ns.to_ascii_lowercase()).or_insert_with(|| (ns, Vec::new())).1.push(t);
    }
    out
}

/// `Provider` (Microsoft.Resources 2024-11-01): its resource types with their api-versions.
fn provider(cfg: &Config, ns: &str, types: &[&types::ResourceType]) -> Value {
    let location = display_name(&cfg.location);
    let resource_types: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "resourceType": types::split(t.name).1,
                "locations": [location],
                "apiVersions": t.versions,
                "defaultApiVersion": t.versions.iter().find(|v| !v.contains("preview")).unwrap_or(&t.versions[0]),
                "capabilities": "None",
            })
        })
        .collect();
    json!({
        "id": format!("/subscriptions/{}/providers/{ns}", cfg.subscription_id),
        "namespace": ns,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": resource_types,
    })
}

/// `GET /subscriptions/{s}/providers`.
pub fn providers(st: &Shared, _req: &ArmRequest) -> Response {
    let value: Vec<Value> = namespaces().values().map(|(ns, types)| provider(&st.config, ns, types)).collect();
    json(StatusCode::OK, json!({"value": value}))
}

/// `GET /subscriptions/{s}/providers/{namespace}`; an unknown namespace is ARM's 404.
pub fn provider_get(st: &Shared, req: &ArmRequest) -> Response {
    let ns = req.param("resourceProviderNamespace");
    match namespaces().get(&ns.to_ascii_lowercase()) {
        Some((canonical, types)) => json(StatusCode::OK, provider(&st.config, canonical, types)),
        None => arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceNamespace",
            format!("The resource namespace '{ns}' is invalid."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_lists_its_types_newest_first() {
        let ns = namespaces();
        let (canonical, network) = &ns["microsoft.network"];
        assert_eq!(*canonical, "Microsoft.Network");
        assert!(network.iter().any(|t| t.name.ends_with("/privateDnsZones/virtualNetworkLinks")));
        for (_, types) in ns.values() {
            for t in types {
                let mut sorted = t.versions.to_vec();
                sorted.sort_by(|a, b| b.cmp(a));
                assert_eq!(sorted, t.versions, "{} lists its versions newest first", t.name);
            }
        }
    }

    #[test]
    fn the_cloud_points_at_the_stack() {
        let c = cloud("https://127.0.0.1:1/");
        assert_eq!(c["resourceManager"], "https://127.0.0.1:1/");
        assert_eq!(c["authentication"]["audiences"][0], "https://management.core.windows.net/");
        assert_eq!(c["suffixes"]["keyVaultDns"], "vault.azure.net");
    }
}
