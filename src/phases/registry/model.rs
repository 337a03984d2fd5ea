//! The registry snapshot: what discovery found, in the shape of the registry tables. Pure, so
//! the rules (which FQDN, which port, which references, never a value) are unit-tested.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::azure::discovery::{self, Discovered, Found};

/// One `registry.resources` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRow {
    pub arm_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub kind: Option<String>,
    pub role: Option<String>,
    pub location: Option<String>,
    pub sku: Option<String>,
    pub provisioning_state: Option<String>,
    pub tags: Value,
    pub properties: Value,
}

/// One `registry.endpoints` row; `resource` is the target's ARM id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    pub resource: String,
    pub group_id: String,
    pub fqdn: String,
    pub private_ip: Option<String>,
    pub port: i32,
    pub protocol: String,
    pub private_endpoint_id: Option<String>,
}

/// One `registry.configuration_references` row: where a value lives, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceRow {
    pub name: String,
    pub kind: String,
    pub uri: String,
    pub resource: Option<String>,
    pub description: Option<String>,
}

/// One `registry.release_objects` row: an object the release deployed inside a resource (a
/// Helm release on a cluster, a Search index, a Foundry index asset or agent), as the service
/// itself reported it. `host` is the holding resource's ARM id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRow {
    pub kind: String,
    pub host: String,
    pub name: String,
    pub version: Option<String>,
    pub digest: Option<String>,
    pub state: Option<String>,
    pub properties: Value,
}

impl ObjectRow {
    pub fn key(&self) -> (String, String, String) {
        (self.kind.clone(), self.host.to_ascii_lowercase(), self.name.clone())
    }
}

/// Everything the registry holds about a deployment, sorted by each table's natural key so the
/// same platform always gives the same snapshot (and digest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub resources: Vec<ResourceRow>,
    pub endpoints: Vec<EndpointRow>,
    pub configuration_references: Vec<ReferenceRow>,
    pub release_objects: Vec<ObjectRow>,
}

impl ResourceRow {
    pub fn key(&self) -> String {
        self.arm_id.to_ascii_lowercase()
    }
}

impl EndpointRow {
    pub fn key(&self) -> (String, String, String, i32) {
        (self.resource.to_ascii_lowercase(), self.group_id.clone(), self.fqdn.to_ascii_lowercase(), self.port)
    }
}

impl Snapshot {
    pub fn sort(&mut self) {
        self.resources.sort_by_key(ResourceRow::key);
        self.endpoints.sort_by_key(EndpointRow::key);
        self.configuration_references.sort_by(|a, b| a.name.cmp(&b.name));
        self.release_objects.sort_by_key(ObjectRow::key);
    }

    /// `sha256:` of the canonical JSON (serde_json maps are sorted).
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(serde_json::to_vec(self).expect("serializes"))))
    }
}

/// What the snapshot needs besides discovery: where artifact storage and the export live, and
/// the Key Vault secrets this binary is configured to read.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    pub artifact_container_url: String,
    pub export_blob: String,
    pub vault_url: String,
    pub vault_suffix: String,
    /// `(reference name, secret name)`.
    pub secrets: Vec<(String, String)>,
}

/// What the platform uses a resource for.
pub fn role(resource_type: &str, kind: Option<&str>) -> Option<&'static str> {
    Some(match resource_type.to_ascii_lowercase().as_str() {
        "microsoft.keyvault/vaults" => "key-vault",
        "microsoft.storage/storageaccounts" => "storage",
        "microsoft.containerregistry/registries" => "container-registry",
        "microsoft.dbforpostgresql/flexibleservers" => "postgres",
        "microsoft.automation/automationaccounts" => "automation",
        discovery::SITE if kind.is_some_and(|k| k.to_ascii_lowercase().contains("functionapp")) => "function-app",
        discovery::SITE => "web-app",
        "microsoft.network/applicationgateways" => "app-gateway",
        "microsoft.containerservice/managedclusters" => "kubernetes",
        "microsoft.search/searchservices" => "search",
        "microsoft.cognitiveservices/accounts" => "ai-foundry",
        "microsoft.cognitiveservices/accounts/projects" => "ai-project",
        discovery::PRIVATE_ENDPOINT => "private-endpoint",
        "microsoft.managedidentity/userassignedidentities" => "identity",
        _ => return None,
    })
}

/// The ARM properties worth keeping per type: endpoints and the paths the health checks probe.
/// A chosen subset, so nothing bulky (or secret) is copied by accident.
const KEPT: &[(&str, &[&str])] = &[
    ("microsoft.keyvault/vaults", &["/vaultUri"]),
    ("microsoft.storage/storageaccounts", &["/primaryEndpoints"]),
    ("microsoft.containerregistry/registries", &["/loginServer", "/dataEndpointHostNames"]),
    ("microsoft.dbforpostgresql/flexibleservers", &["/fullyQualifiedDomainName", "/version"]),
    ("microsoft.automation/automationaccounts", &["/automationHybridServiceUrl"]),
    ("microsoft.web/sites", &["/defaultHostName", "/enabledHostNames", "/siteConfig/healthCheckPath"]),
    ("microsoft.containerservice/managedclusters", &["/fqdn", "/privateFQDN"]),
    ("microsoft.search/searchservices", &["/endpoint"]),
    ("microsoft.cognitiveservices/accounts", &["/endpoint", "/endpoints"]),
    ("microsoft.cognitiveservices/accounts/projects", &["/endpoints"]),
    ("microsoft.network/publicipaddresses", &["/dnsSettings/fqdn", "/ipAddress"]),
];

fn kept_properties(f: &Found) -> Map<String, Value> {
    let t = f.listed.resource_type.to_ascii_lowercase();
    let mut out = Map::new();
    for (_, pointers) in KEPT.iter().filter(|(k, _)| *k == t) {
        for p in *pointers {
            if let Some(v) = f.prop(p) {
                out.insert(p.rsplit('/').next().unwrap_or(p).to_owned(), v.clone());
            }
        }
    }
    if t == "microsoft.network/applicationgateways" {
        let paths: Vec<Value> = f
            .prop("/probes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.pointer("/properties/path").cloned())
            .collect();
        out.insert("probePaths".into(), Value::Array(paths));
    }
    out
}

fn port_for(group_id: &str) -> (i32, &'static str) {
    if group_id.eq_ignore_ascii_case("postgresqlServer") {
        (5432, "postgres")
    } else {
        (443, "https")
    }
}

/// Builds the snapshot from what ARM returned. Endpoints whose target is not in the resource
/// group are left out (the registry describes this deployment); they are logged.
pub fn build(d: &Discovered, loc: &Locations) -> Snapshot {
    let mut s = Snapshot::default();
    let by_id: BTreeMap<String, &Found> = d.resources.iter().map(|f| (f.listed.id.to_ascii_lowercase(), f)).collect();
    for f in &d.resources {
        let l = &f.listed;
        let mut properties = kept_properties(f);
        let mut endpoint = |resource: &str, group_id: &str, fqdn: &str, ip: Option<&String>, pe: Option<&str>| {
            if !by_id.contains_key(&resource.to_ascii_lowercase()) {
                tracing::warn!(
                    target_resource = resource,
                    fqdn,
                    "an endpoint's target is outside the resource group; not recorded"
                );
                return;
            }
            let (port, protocol) = port_for(group_id);
            s.endpoints.push(EndpointRow {
                resource: resource.to_owned(),
                group_id: group_id.to_owned(),
                fqdn: fqdn.to_ascii_lowercase(),
                private_ip: ip.cloned(),
                port,
                protocol: protocol.into(),
                private_endpoint_id: pe.map(str::to_owned),
            });
        };
        if l.is(discovery::PRIVATE_ENDPOINT) {
            if let Some(r) =
                f.body.as_ref().and_then(|b| discovery::resolve_private_endpoint(b, &f.zone_groups, &d.nics))
            {
                let group = r.group_ids.first().cloned().unwrap_or_default();
                // One row per name: a record set with several addresses keeps the first, which
                // is the one Azure's own DNS integration answers first.
                for (fqdn, ips) in &r.records {
                    endpoint(&r.target_id, &group, fqdn, ips.first(), Some(&r.private_endpoint_id));
                }
                properties.insert("privateLinkServiceId".into(), json!(r.target_id));
                properties.insert("groupIds".into(), json!(r.group_ids));
                properties.insert("dnsSource".into(), json!(r.source.map(|x| x.as_str())));
            }
        }
        if l.is("microsoft.network/applicationgateways") {
            // A gateway has no private endpoint: its endpoint is the frontend public IP's name.
            for ip_id in f
                .prop("/frontendIPConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.pointer("/properties/publicIPAddress/id"))
                .filter_map(Value::as_str)
            {
                if let Some(pip) = by_id.get(&ip_id.to_ascii_lowercase()) {
                    if let (Some(fqdn), ip) = (
                        pip.prop("/dnsSettings/fqdn").and_then(Value::as_str),
                        pip.prop("/ipAddress").and_then(Value::as_str).map(str::to_owned),
                    ) {
                        endpoint(&l.id, "frontend", fqdn, ip.as_ref(), None);
                        properties.insert("frontendFqdn".into(), json!(fqdn.to_ascii_lowercase()));
                    }
                }
            }
        }
        if let Some(settings) = &f.app_settings {
            s.configuration_references.extend(app_setting_references(
                &l.id,
                &l.name,
                settings,
                &d.resources,
                &loc.vault_suffix,
            ));
        }
        s.resources.push(ResourceRow {
            arm_id: l.id.clone(),
            name: l.name.clone(),
            resource_type: l.resource_type.clone(),
            kind: l
                .kind
                .clone()
                .or_else(|| f.body.as_ref().and_then(|b| b.get("kind")).and_then(Value::as_str).map(str::to_owned)),
            role: role(
                &l.resource_type,
                l.kind.as_deref().or_else(|| f.body.as_ref().and_then(|b| b.get("kind")).and_then(Value::as_str)),
            )
            .map(str::to_owned),
            location: l.location.clone(),
            sku: l
                .sku
                .as_ref()
                .or_else(|| f.body.as_ref().and_then(|b| b.get("sku")))
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            provisioning_state: f.prop("/provisioningState").and_then(Value::as_str).map(str::to_owned),
            tags: Value::Object(l.tags.clone().unwrap_or_default()),
            properties: Value::Object(properties),
        });
    }
    let vault = d.resources.iter().find(|f| f.listed.is("microsoft.keyvault/vaults"));
    let vault_base = vault
        .and_then(|v| v.prop("/vaultUri"))
        .and_then(Value::as_str)
        .unwrap_or(&loc.vault_url)
        .trim_end_matches('/')
        .to_owned();
    for (name, secret) in &loc.secrets {
        s.configuration_references.push(ReferenceRow {
            name: name.clone(),
            kind: "keyVaultSecret".into(),
            uri: format!("{vault_base}/secrets/{secret}"),
            resource: vault.map(|v| v.listed.id.clone()),
            description: Some("read by vibedata-bootstrap".into()),
        });
    }
    for (name, uri, what) in [
        ("artifact-storage", loc.artifact_container_url.clone(), "artifact storage container"),
        (
            "artifact-storage/release-pointer",
            format!("{}/releases/latest.json", loc.artifact_container_url),
            "the current release",
        ),
        (
            "artifact-storage/registry-export",
            format!("{}/{}", loc.artifact_container_url, loc.export_blob),
            "this registry as JSON",
        ),
    ] {
        s.configuration_references.push(ReferenceRow {
            name: name.into(),
            kind: "blobLocation".into(),
            uri,
            resource: storage_for(&d.resources, &loc.artifact_container_url),
            description: Some(what.into()),
        });
    }
    s.sort();
    s
}

/// The storage account whose blob endpoint serves `url`, when it is in the group.
fn storage_for(resources: &[Found], url: &str) -> Option<String> {
    resources
        .iter()
        .filter(|f| f.listed.is("microsoft.storage/storageaccounts"))
        .find(|f| {
            f.prop("/primaryEndpoints/blob")
                .and_then(Value::as_str)
                .is_some_and(|b| url.starts_with(b.trim_end_matches('/')))
        })
        .map(|f| f.listed.id.clone())
}

/// References for a site's app settings: a Key Vault reference becomes its secret URI; any
/// other setting is recorded by name only. No value is ever copied.
fn app_setting_references(
    site_id: &str,
    site: &str,
    settings: &Map<String, Value>,
    resources: &[Found],
    vault_suffix: &str,
) -> Vec<ReferenceRow> {
    settings
        .iter()
        .map(|(key, value)| {
            let name = format!("{site}/{key}");
            match value.as_str().and_then(|v| key_vault_reference(v, vault_suffix)) {
                Some(uri) => {
                    let host =
                        url::Url::parse(&uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
                    let vault = resources
                        .iter()
                        .filter(|f| f.listed.is("microsoft.keyvault/vaults"))
                        .find(|f| f.prop("/vaultUri").and_then(Value::as_str).is_some_and(|v| v.contains(&host)))
                        .map(|f| f.listed.id.clone());
                    ReferenceRow {
                        name,
                        kind: "keyVaultSecret".into(),
                        uri,
                        resource: vault,
                        description: Some(format!("app setting {key} of {site}")),
                    }
                }
                None => ReferenceRow {
                    name,
                    kind: "appSetting".into(),
                    uri: format!("{site_id}/config/appsettings/{key}"),
                    resource: Some(site_id.to_owned()),
                    description: Some(format!("app setting {key} of {site}")),
                },
            }
        })
        .collect()
}

/// `@Microsoft.KeyVault(SecretUri=…)` or `@Microsoft.KeyVault(VaultName=…;SecretName=…[;SecretVersion=…])`
/// → the secret URI without a trailing slash (the registry schema's form).
pub fn key_vault_reference(value: &str, vault_suffix: &str) -> Option<String> {
    let inner = value.trim().strip_prefix("@Microsoft.KeyVault(")?.strip_suffix(')')?;
    let parts: BTreeMap<String, &str> = inner
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    if let Some(uri) = parts.get("secreturi") {
        return Some(uri.trim_end_matches('/').to_owned());
    }
    let (vault, secret) = (parts.get("vaultname")?, parts.get("secretname")?);
    let version = parts.get("secretversion").map(|v| format!("/{v}")).unwrap_or_default();
    Some(format!("https://{vault}.{vault_suffix}/secrets/{secret}{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::discovery::Listed;

    fn found(id: &str, t: &str, body: Value) -> Found {
        let listed: Listed = serde_json::from_value(
            json!({"id": id, "name": id.rsplit('/').next().unwrap(), "type": t, "location": "eastus"}),
        )
        .unwrap();
        Found { listed, body: Some(body), zone_groups: Vec::new(), app_settings: None }
    }

    #[test]
    fn key_vault_references_in_both_syntaxes() {
        assert_eq!(
            key_vault_reference(
                "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/a/)",
                "vault.azure.net"
            )
            .as_deref(),
            Some("https://kv.vault.azure.net/secrets/a")
        );
        assert_eq!(
            key_vault_reference("@Microsoft.KeyVault(VaultName=kv;SecretName=a)", "vault.azure.net").as_deref(),
            Some("https://kv.vault.azure.net/secrets/a")
        );
        assert_eq!(key_vault_reference("DefaultEndpointsProtocol=https;AccountKey=x", "vault.azure.net"), None);
    }

    #[test]
    fn app_settings_become_references_without_values() {
        let mut site = found("/s/sites/app", "Microsoft.Web/sites", json!({"properties": {}}));
        let secret = "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=c2VjcmV0";
        site.app_settings = Some(
            serde_json::from_value(json!({
            "AzureWebJobsStorage": secret,
            "CANARY": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/health-canary/)"}))
            .unwrap(),
        );
        let kv = found(
            "/s/vaults/kv",
            "Microsoft.KeyVault/vaults",
            json!({"properties": {"vaultUri": "https://kv.vault.azure.net/"}}),
        );
        let d = Discovered { resources: vec![site, kv], nics: vec![], requests: 0 };
        let s = build(
            &d,
            &Locations {
                artifact_container_url: "https://st/artifacts".into(),
                export_blob: "registry/x.json".into(),
                ..Default::default()
            },
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("c2VjcmV0"), "no app setting value is recorded: {text}");
        let canary = s.configuration_references.iter().find(|r| r.name == "app/CANARY").unwrap();
        assert_eq!(
            (canary.kind.as_str(), canary.uri.as_str(), canary.resource.as_deref()),
            ("keyVaultSecret", "https://kv.vault.azure.net/secrets/health-canary", Some("/s/vaults/kv"))
        );
        let storage = s.configuration_references.iter().find(|r| r.name == "app/AzureWebJobsStorage").unwrap();
        assert_eq!(
            (storage.kind.as_str(), storage.uri.as_str()),
            ("appSetting", "/s/sites/app/config/appsettings/AzureWebJobsStorage")
        );
    }

    #[test]
    fn private_endpoints_give_endpoints_of_their_target_with_the_service_port() {
        let pg = found(
            "/s/flexibleServers/pg",
            "Microsoft.DBforPostgreSQL/flexibleServers",
            json!({"properties": {"fullyQualifiedDomainName": "pg.postgres.database.azure.com"}}),
        );
        let mut pe = found(
            "/s/privateEndpoints/pe",
            "Microsoft.Network/privateEndpoints",
            json!({"id": "/s/privateEndpoints/pe", "properties": {
            "privateLinkServiceConnections": [{"properties": {"privateLinkServiceId": "/S/flexibleServers/pg", "groupIds": ["postgresqlServer"]}}],
            "customDnsConfigs": []}}),
        );
        pe.zone_groups = vec![
            json!({"properties": {"privateDnsZoneConfigs": [{"properties": {"recordSets": [{"fqdn": "PG.privatelink.postgres.database.azure.com", "ipAddresses": ["10.0.0.7"]}]}}]}}),
        ];
        let d = Discovered { resources: vec![pe, pg], nics: vec![], requests: 0 };
        let s = build(&d, &Locations::default());
        assert_eq!(s.endpoints.len(), 1);
        let e = &s.endpoints[0];
        assert_eq!(
            (e.fqdn.as_str(), e.private_ip.as_deref(), e.port, e.protocol.as_str()),
            ("pg.privatelink.postgres.database.azure.com", Some("10.0.0.7"), 5432, "postgres")
        );
        assert_eq!(s.resources.iter().find(|r| r.name == "pg").unwrap().role.as_deref(), Some("postgres"));
        // The same platform gives the same digest; another one does not.
        let again = build(&d.clone(), &Locations::default());
        assert_eq!(s.digest(), again.digest());
        assert_ne!(s.digest(), Snapshot::default().digest());
    }
}
