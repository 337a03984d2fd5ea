//! The platform's service resources as their resource providers' GETs show them: identity, Log
//! Analytics, Key Vault, storage, the customer registry, Postgres, Automation, App Service
//! (plan, two web apps, a Function app), AKS, AI Search and AI Foundry. Plus the one data
//! operation discovery needs beyond GET: a site's `config/appsettings/list`.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::inventory::{guid, hex, resource_id, Names, Resource, REGISTRY_TYPE};
use super::network::{self, SUBNET_AKS, SUBNET_APPS};
use super::{envelope, ArmRequest};
use crate::config::Config;
use crate::http::{arm_error, json};
use crate::state::Shared;

pub const IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
pub const LOG_ANALYTICS: &str = "Microsoft.OperationalInsights/workspaces";
pub const KEY_VAULT: &str = "Microsoft.KeyVault/vaults";
pub const STORAGE: &str = "Microsoft.Storage/storageAccounts";
pub const POSTGRES: &str = "Microsoft.DBforPostgreSQL/flexibleServers";
pub const AUTOMATION: &str = "Microsoft.Automation/automationAccounts";
pub const PLAN: &str = "Microsoft.Web/serverfarms";
pub const SITES: &str = "Microsoft.Web/sites";
pub const AKS: &str = "Microsoft.ContainerService/managedClusters";
pub const SEARCH: &str = "Microsoft.Search/searchServices";
pub const COGNITIVE: &str = "Microsoft.CognitiveServices/accounts";

// api-versions each GET accepts: the specs' and the current SDKs' defaults, newest first.
pub const IDENTITY_API_VERSIONS: &[&str] = &["2025-05-31-preview", "2024-11-30", "2023-01-31", "2018-11-30"];
pub const LOG_API_VERSIONS: &[&str] = &["2025-02-01", "2023-09-01", "2022-10-01", "2021-12-01-preview", "2020-08-01"];
pub const VAULT_API_VERSIONS: &[&str] =
    &["2026-02-01", "2024-11-01", "2024-04-01-preview", "2023-07-01", "2023-02-01", "2022-07-01"];
pub const STORAGE_API_VERSIONS: &[&str] =
    &["2025-08-01", "2025-06-01", "2025-01-01", "2024-01-01", "2023-05-01", "2023-01-01"];
pub const POSTGRES_API_VERSIONS: &[&str] = &["2026-04-01-preview", "2025-08-01", "2024-08-01", "2022-12-01"];
pub const AUTOMATION_API_VERSIONS: &[&str] = &["2024-10-23", "2023-11-01", "2022-08-08"];
pub const WEB_API_VERSIONS: &[&str] =
    &["2025-05-01", "2024-11-01", "2024-04-01", "2023-12-01", "2023-01-01", "2022-09-01", "2022-03-01"];
pub use super::aks::AKS_API_VERSIONS;
pub const SEARCH_API_VERSIONS: &[&str] =
    &["2026-03-01-preview", "2025-05-01", "2024-06-01-preview", "2023-11-01", "2022-09-01", "2020-08-01"];
// 2025-09-01: `azure-mgmt-cognitiveservices` 14.1.0's default (`accounts.get`); 2026-05-15-preview: az 2.91's.
pub const COGNITIVE_API_VERSIONS: &[&str] = &[
    "2026-05-15-preview",
    "2025-09-01",
    "2025-06-01",
    "2025-04-01-preview",
    "2024-10-01",
    "2024-04-01-preview",
    "2023-05-01",
];

/// The user-assigned identity every service runs as, in ARM's `identity` shape.
fn uami(cfg: &Config) -> Value {
    json!({
        "type": "UserAssigned",
        "userAssignedIdentities": {
            cfg.identity.resource_id.clone(): {
                "principalId": cfg.identity.principal_id,
                "clientId": cfg.identity.client_id,
            }
        }
    })
}

fn tagged(mut r: Resource, tags: &Value) -> Resource {
    r.tags = tags.clone();
    r
}

/// The Automation account's id, which its host names carry (`<id>.webhook.<region>...`).
pub fn automation_account_guid(cfg: &Config, n: &Names) -> String {
    guid(&format!("automation:{}:{}", cfg.subscription_id, n.automation))
}

/// The AKS API server's public and private FQDNs (`<dnsPrefix>-<hash>.hcp|privatelink.<region>.azmk8s.io`).
pub fn aks_fqdns(cfg: &Config, n: &Names) -> (String, String) {
    let hash = &guid(&format!("aks:{}", n.aks))[..8];
    let prefix = format!("{}-dns-{hash}", n.aks);
    let loc = cfg.location.to_ascii_lowercase();
    (format!("{prefix}.hcp.{loc}.azmk8s.io"), format!("{prefix}.{}", network::zone::aks(cfg)))
}

pub fn identity_and_logs(cfg: &Config, n: &Names, tags: &Value) -> Vec<Resource> {
    let mut id = tagged(Resource::new(&n.identity, IDENTITY), tags);
    id.properties = json!({
        "isolationScope": "None",
        "tenantId": cfg.tenant_id,
        "principalId": cfg.identity.principal_id,
        "clientId": cfg.identity.client_id,
    });
    let mut log = tagged(Resource::new(&n.log_analytics, LOG_ANALYTICS), tags);
    log.properties = json!({
        "provisioningState": "Succeeded",
        "customerId": guid(&format!("log:{}", n.log_analytics)),
        "sku": {"name": "PerGB2018"},
        "retentionInDays": 30,
        "features": {"enableLogAccessUsingOnlyResourcePermissions": true},
        "workspaceCapping": {"dailyQuotaGb": -1.0},
        "publicNetworkAccessForIngestion": "Enabled",
        "publicNetworkAccessForQuery": "Enabled",
    });
    vec![id, log]
}

/// Key Vault, storage, registry, Postgres, Automation, the App Service plan and its three sites.
/// Literal secrets put into app settings are pushed to `sensitive`.
pub fn services(cfg: &Config, n: &Names, tags: &Value, sensitive: &mut Vec<String>) -> Vec<Resource> {
    let loc = cfg.location.to_ascii_lowercase();
    let vault_uri = format!("https://{}.vault.azure.net/", n.key_vault);
    let mut kv = tagged(Resource::new(&n.key_vault, KEY_VAULT), tags);
    kv.properties = json!({
        "tenantId": cfg.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [],
        "vaultUri": vault_uri,
        "enabledForDeployment": false,
        "enabledForTemplateDeployment": false,
        "enableRbacAuthorization": true,
        "enableSoftDelete": true,
        "softDeleteRetentionInDays": 90,
        "enablePurgeProtection": true,
        "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []},
        "publicNetworkAccess": "Disabled",
        "provisioningState": "Succeeded",
    });

    let st = &n.storage;
    let mut storage = tagged(Resource::new(st, STORAGE), tags);
    storage.kind = Some("StorageV2");
    storage.sku = Some(json!({"name": "Standard_ZRS", "tier": "Standard"}));
    let endpoints = |suffix: &str| {
        ["blob", "queue", "table", "file", "dfs", "web"]
            .iter()
            .map(|svc| (svc.to_string(), json!(format!("https://{st}{suffix}.{svc}.core.windows.net/"))))
            .collect::<serde_json::Map<_, _>>()
    };
    storage.properties = json!({
        "provisioningState": "Succeeded",
        "creationTime": "2026-01-01T00:00:00.0000000Z",
        "primaryLocation": loc,
        "statusOfPrimary": "available",
        "primaryEndpoints": endpoints(""),
        "accessTier": "Hot",
        "allowBlobPublicAccess": false,
        "allowSharedKeyAccess": false,
        "minimumTlsVersion": "TLS1_2",
        "supportsHttpsTrafficOnly": true,
        "publicNetworkAccess": "Disabled",
        "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []},
        "encryption": {"keySource": "Microsoft.Storage", "services": {"blob": {"enabled": true}, "file": {"enabled": true}}},
    });

    let mut registry = tagged(Resource::new(&n.registry, REGISTRY_TYPE), tags);
    registry.sku = Some(json!({"name": "Premium", "tier": "Premium"}));
    // Filled in at GET time from the login server and the registry network settings.
    registry.properties = Value::Null;

    let mut pg = tagged(Resource::new(&n.postgres, POSTGRES), tags);
    pg.sku = Some(json!({"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}));
    pg.properties = json!({
        "administratorLogin": "vibedata_admin",
        "version": "15",
        "minorVersion": "10",
        "state": "Ready",
        "fullyQualifiedDomainName": format!("{}.postgres.database.azure.com", n.postgres),
        "storage": {"storageSizeGB": 128, "autoGrow": "Enabled", "tier": "P10"},
        "authConfig": {"activeDirectoryAuth": "Enabled", "passwordAuth": "Enabled", "tenantId": cfg.tenant_id},
        "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
        "network": {"publicNetworkAccess": "Disabled"},
        "highAvailability": {"mode": "Disabled"},
        "availabilityZone": "1",
        "replicationRole": "Primary",
    });

    let aa_id = automation_account_guid(cfg, n);
    let rc = super::endpoints::region_code(&cfg.location);
    let mut aa = tagged(Resource::new(&n.automation, AUTOMATION), tags);
    aa.identity = Some(uami(cfg));
    aa.properties = json!({
        "sku": {"name": "Basic"},
        "state": "Ok",
        "creationTime": "2026-01-01T00:00:00+00:00",
        "lastModifiedTime": "2026-01-01T00:00:00+00:00",
        "publicNetworkAccess": false,
        "disableLocalAuth": true,
        "automationHybridServiceUrl": format!("https://{aa_id}.jrds.{rc}.azure-automation.net/automationAccounts/{aa_id}"),
        "encryption": {"keySource": "Microsoft.Automation", "identity": {}},
    });

    let plan_id = resource_id(cfg, PLAN, &n.plan);
    let mut plan = tagged(Resource::new(&n.plan, PLAN), tags);
    plan.kind = Some("linux");
    plan.sku = Some(json!({"name": "P1v3", "tier": "PremiumV3", "size": "P1v3", "family": "Pv3", "capacity": 1}));
    plan.properties = json!({
        "status": "Ready",
        "provisioningState": "Succeeded",
        "reserved": true,
        "numberOfSites": 3,
        "maximumNumberOfWorkers": 30,
        "geoRegion": cfg.location,
        "zoneRedundant": false,
    });

    let kv_ref = |secret: &str| format!("@Microsoft.KeyVault(SecretUri={vault_uri}secrets/{secret}/)");
    let api_host = format!("{}.azurewebsites.net", n.web_api);
    let pg_fqdn = format!("{}.postgres.database.azure.com", n.postgres);
    let account_key = {
        let a = guid(&format!("storage-key-a:{st}")).replace('-', "");
        let b = guid(&format!("storage-key-b:{st}")).replace('-', "");
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hex_decode(&(a + &b)))
    };
    let storage_connection = format!(
        "DefaultEndpointsProtocol=https;AccountName={st};AccountKey={account_key};EndpointSuffix=core.windows.net"
    );
    sensitive.push(account_key);
    sensitive.push(storage_connection.clone());
    let insights = format!(
        "InstrumentationKey={};IngestionEndpoint=https://{loc}-8.in.applicationinsights.azure.com/",
        guid(&format!("insights:{}", n.base))
    );
    let sites = [
        (
            &n.web_portal,
            "app,linux,container",
            json!({
                "WEBSITES_PORT": "8080",
                "AZURE_CLIENT_ID": cfg.identity.client_id,
                "VIBEDATA_API_URL": format!("https://{api_host}"),
                "APPLICATIONINSIGHTS_CONNECTION_STRING": insights,
            }),
        ),
        (
            &n.web_api,
            "app,linux,container",
            json!({
                "WEBSITES_PORT": "8080",
                "AZURE_CLIENT_ID": cfg.identity.client_id,
                "VIBEDATA_DB_HOST": pg_fqdn,
                "VIBEDATA_DB_PASSWORD": kv_ref("postgres-password"),
                "VIBEDATA_ARTIFACTS_URL": format!("https://{st}.blob.core.windows.net/artifacts"),
                "APPLICATIONINSIGHTS_CONNECTION_STRING": insights,
            }),
        ),
        (
            &n.function_app,
            "functionapp,linux,container",
            json!({
                "FUNCTIONS_EXTENSION_VERSION": "~4",
                "FUNCTIONS_WORKER_RUNTIME": "custom",
                "AZURE_CLIENT_ID": cfg.identity.client_id,
                "AzureWebJobsStorage": storage_connection,
                "VIBEDATA_KEY_VAULT_URI": vault_uri,
                "VIBEDATA_HEALTH_CANARY": kv_ref("health-canary"),
            }),
        ),
    ];
    let mut out = vec![kv, storage, registry, pg, aa, plan];
    for (name, kind, settings) in sites {
        let host = format!("{name}.azurewebsites.net");
        let scm = format!("{name}.scm.azurewebsites.net");
        let mut site = tagged(Resource::new(name, SITES), tags);
        site.kind = Some(kind);
        site.identity = Some(uami(cfg));
        let image = name.rsplit('-').next().unwrap_or(name);
        site.properties = json!({
            "name": name,
            "state": "Running",
            "hostNames": [host],
            "enabledHostNames": [host, scm],
            "defaultHostName": host,
            "hostNameSslStates": [
                {"name": host, "sslState": "Disabled", "hostType": "Standard"},
                {"name": scm, "sslState": "Disabled", "hostType": "Repository"},
            ],
            "serverFarmId": plan_id,
            "sku": "PremiumV3",
            "reserved": true,
            "httpsOnly": true,
            "clientAffinityEnabled": false,
            "publicNetworkAccess": "Disabled",
            "virtualNetworkSubnetId": network::subnet_id(cfg, n, SUBNET_APPS),
            "vnetRouteAllEnabled": true,
            "keyVaultReferenceIdentity": cfg.identity.resource_id,
            "availabilityState": "Normal",
            "usageState": "Normal",
            "siteConfig": {
                "numberOfWorkers": 1,
                "linuxFxVersion": format!("DOCKER|{}.azurecr.io/vibedata/{image}:1.0.0", n.registry),
                "acrUseManagedIdentityCreds": true,
                "acrUserManagedIdentityID": cfg.identity.client_id,
                "healthCheckPath": "/health",
                "http20Enabled": true,
                "minTlsVersion": "1.2",
                "ftpsState": "Disabled",
                "alwaysOn": true,
            },
        });
        site.children.insert("appsettings", settings);
        out.push(site);
    }
    out
}

/// AKS, AI Search and AI Foundry: components the stack does not run.
pub fn compute(cfg: &Config, n: &Names, tags: &Value) -> Vec<Resource> {
    let loc = cfg.location.to_ascii_lowercase();
    let (public, private) = aks_fqdns(cfg, n);
    let mut aks = tagged(Resource::new(&n.aks, AKS), tags);
    aks.sku = Some(json!({"name": "Base", "tier": "Standard"}));
    aks.identity = Some(uami(cfg));
    aks.properties = json!({
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "kubernetesVersion": "1.33.3",
        "currentKubernetesVersion": "1.33.3",
        "dnsPrefix": format!("{}-dns", n.aks),
        "fqdn": public,
        "privateFQDN": private,
        "azurePortalFQDN": format!("{}-portal.{}", n.aks, &private),
        "agentPoolProfiles": [{
            "name": "system", "count": 3, "vmSize": "Standard_D4ds_v5", "osDiskSizeGB": 128, "osDiskType": "Ephemeral",
            "vnetSubnetID": network::subnet_id(cfg, n, SUBNET_AKS), "maxPods": 30, "type": "VirtualMachineScaleSets",
            "mode": "System", "osType": "Linux", "osSKU": "AzureLinux", "provisioningState": "Succeeded",
            "powerState": {"code": "Running"}, "orchestratorVersion": "1.33.3", "enableAutoScaling": false,
        }],
        "nodeResourceGroup": format!("MC_{}_{}_{}", cfg.resource_group, n.aks, loc),
        "enableRBAC": true,
        "aadProfile": {"managed": true, "enableAzureRBAC": true, "tenantID": cfg.tenant_id},
        "networkProfile": {"networkPlugin": "azure", "networkPluginMode": "overlay", "podCidr": "192.168.0.0/16",
                           "serviceCidr": "172.16.0.0/16", "dnsServiceIP": "172.16.0.10", "outboundType": "userDefinedRouting",
                           "loadBalancerSku": "standard"},
        "apiServerAccessProfile": {
            "enablePrivateCluster": true,
            "privateDNSZone": resource_id(cfg, network::PRIVATE_DNS_ZONE, &network::zone::aks(cfg)),
            "enablePrivateClusterPublicFQDN": true,
        },
        "addonProfiles": {"omsagent": {"enabled": true, "config": {
            "logAnalyticsWorkspaceResourceID": resource_id(cfg, LOG_ANALYTICS, &n.log_analytics)}}},
        "disableLocalAccounts": true,
    });

    let mut search = tagged(Resource::new(&n.search, SEARCH), tags);
    search.sku = Some(json!({"name": "standard"}));
    search.identity = Some(uami(cfg));
    search.properties = json!({
        "replicaCount": 1,
        "partitionCount": 1,
        "hostingMode": "default",
        "status": "running",
        "statusDetails": "",
        "provisioningState": "succeeded",
        "publicNetworkAccess": "disabled",
        // The search listener (P+12) serves the data plane; keys and Entra tokens both work,
        // as `authOptions.aadOrApiKey` configures the service (issue notes: Infra).
        "endpoint": crate::search::endpoint(cfg, &n.search),
        "networkRuleSet": {"ipRules": [], "bypass": "None"},
        "disableLocalAuth": false,
        "authOptions": {"aadOrApiKey": {"aadAuthFailureMode": "http401WithBearerChallenge"}},
        "semanticSearch": "free",
    });

    let mut foundry = tagged(Resource::new(&n.foundry, COGNITIVE), tags);
    foundry.kind = Some("AIServices");
    foundry.sku = Some(json!({"name": "S0"}));
    foundry.identity = Some(uami(cfg));
    let f = &n.foundry;
    foundry.properties = json!({
        "provisioningState": "Succeeded",
        "endpoint": format!("https://{f}.cognitiveservices.azure.com/"),
        "endpoints": {
            "AI Foundry API": crate::foundry::account_endpoint(cfg, f),
            "OpenAI Language Model Instance API": format!("https://{f}.openai.azure.com/"),
            "Azure AI Model Inference API": format!("https://{f}.services.ai.azure.com/"),
        },
        "customSubDomainName": f,
        "publicNetworkAccess": "Disabled",
        "disableLocalAuth": true,
        "allowProjectManagement": true,
        "networkAcls": {"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []},
        "internalId": hex(&guid(&format!("foundry:{f}")).as_bytes()[..16]),
    });
    vec![aks, search, foundry]
}

/// `GET .../Microsoft.Web/sites/{name}/config/web`: the site's `siteConfig` as a
/// `SiteConfigResource`; `.../config/slotConfigNames`: no sticky settings (`SlotConfigNamesResource`).
/// `az webapp config appsettings list` reads the second after the settings.
pub fn site_config(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (req.param("resourceGroupName"), req.param("name"));
    let cfg = &st.config;
    let arm = st.arm.lock();
    let Some(site) = find_site(cfg, &arm.inventory, rg, name) else {
        return site_not_found(rg, name);
    };
    let config = req.segs.last().map(String::as_str).unwrap_or_default();
    let properties = if config.eq_ignore_ascii_case("web") {
        site.properties["siteConfig"].clone()
    } else {
        json!({"connectionStringNames": null, "appSettingNames": null, "azureStorageConfigNames": null})
    };
    let name = if config.eq_ignore_ascii_case("web") { "web" } else { "slotConfigNames" };
    let body = envelope::resource(format!("{}/config/{name}", site.id(cfg)), name, "Microsoft.Web/sites/config")
        .location(site.location(cfg))
        .properties(properties)
        .build();
    json(StatusCode::OK, body)
}

fn find_of<'a>(cfg: &Config, inventory: &'a [Resource], kind: &str, rg: &str, name: &str) -> Option<&'a Resource> {
    rg.eq_ignore_ascii_case(&cfg.resource_group)
        .then(|| inventory.iter().find(|r| r.resource_type == kind && r.name.eq_ignore_ascii_case(name)))
        .flatten()
}

fn find_site<'a>(cfg: &Config, inventory: &'a [Resource], rg: &str, name: &str) -> Option<&'a Resource> {
    find_of(cfg, inventory, SITES, rg, name)
}

fn not_found_of(kind: &str, rg: &str, name: &str) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
    )
}

fn site_not_found(rg: &str, name: &str) -> Response {
    not_found_of(SITES, rg, name)
}

/// Azurite's one account and its key: published in Azurite's README, the same on every machine.
/// The stack's storage account is Azurite, so its keys are Azurite's.
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `POST .../Microsoft.Storage/storageAccounts/{name}/listKeys`: `StorageAccountListKeysResult`.
/// An action ARM journals as a read (it changes nothing); the caller needs
/// `Microsoft.Storage/storageAccounts/listKeys/action`, which the `rbac` fault can deny.
pub fn storage_keys(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (req.param("resourceGroupName"), req.param("accountName"));
    let arm = st.arm.lock();
    if find_of(&st.config, &arm.inventory, STORAGE, rg, name).is_none() {
        return not_found_of(STORAGE, rg, name);
    }
    let key = |name: &str| json!({"keyName": name, "value": AZURITE_KEY, "permissions": "FULL", "creationTime": "2026-01-01T00:00:00.0000000Z"});
    json(StatusCode::OK, json!({"keys": [key("key1"), key("key2")]}))
}

/// `POST .../Microsoft.Web/sites/{name}/config/appsettings/list`: the site's app settings
/// (`StringDictionary`). Key Vault references stay references, as App Service returns them.
pub fn app_settings(st: &Shared, req: &ArmRequest) -> Response {
    let (rg, name) = (req.param("resourceGroupName"), req.param("name"));
    let cfg = &st.config;
    let arm = st.arm.lock();
    let Some(site) = find_site(cfg, &arm.inventory, rg, name) else {
        return site_not_found(rg, name);
    };
    let settings = site.children.get("appsettings").cloned().unwrap_or_else(|| json!({}));
    let body =
        envelope::resource(format!("{}/config/appsettings", site.id(cfg)), "appsettings", "Microsoft.Web/sites/config")
            .location(site.location(cfg))
            .properties(settings)
            .build();
    json(StatusCode::OK, body)
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}
