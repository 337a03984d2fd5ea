//! The provider table: every API the emulator serves, one row each — path pattern, methods,
//! api name (journal and faults), api-versions, whether the call mutates platform state, and
//! the handler. The request middleware looks each request up here once ([`find`]) and hands the
//! row on to the ARM dispatcher in the request's extensions, so the journal's api name, the
//! faults it arms and the handler that answers can never disagree.
//!
//! Patterns are ARM's: segments compared case-insensitively (ARM paths are), `{name}` one
//! segment (read back with `ArmRequest::param`), a trailing `**` any rest. The first row whose
//! pattern and methods match wins, so specific rows come before the per-provider fallbacks
//! (which answer ARM's "no route" 404 but still name the api). Adding an ARM API is one row here
//! plus its handler (emulator/README.md, "Adding an API").
//!
//! The second half of the table is [`types::RESOURCE_TYPES`]: every ARM resource type the
//! emulator serves, with its api-versions. Rows name a type instead of repeating its list
//! ([`Versions::Of`], or [`Versions::Named`] for the generic rows, whose path names the type), and
//! `GET /subscriptions/{s}/providers/{namespace}` answers from the same table, so the
//! api-versions a client discovers are exactly the ones the dispatcher accepts.

use axum::http::Method;
use axum::response::Response;

use crate::arm::aks;
use crate::arm::automation::{self, Route};
use crate::arm::network::{self, Nested};
use crate::arm::projects;
use crate::arm::{deployments, groups, import, operations, platform, resources, subscriptions, ArmRequest};
use crate::state::Shared;

pub mod types;

/// Whether a call changes platform state (what DESIGN §3 counts as `changes`). Token issuance,
/// reads, lists, polls and POST-as-read actions (`appsettings/list`) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
    /// GET and HEAD read, every other method writes (Key Vault, resource CRUD).
    ByMethod,
}

impl Effect {
    pub fn mutating(self, method: &Method) -> bool {
        match self {
            Effect::Read => false,
            Effect::Write => true,
            Effect::ByMethod => !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS),
        }
    }
}

pub type ArmHandler = fn(&Shared, &ArmRequest) -> Response;

#[derive(Clone, Copy)]
pub enum Handler {
    /// An ARM operation: authenticated, subscription-checked and api-version-checked by the
    /// dispatcher (`arm::dispatch`) before the handler runs.
    Arm(ArmHandler),
    /// A data plane served by the listener's own axum routes (Key Vault, identity, ACR token
    /// service, the apps listener's probes): the row only names the api and its effect.
    Router,
    /// ARM's 404 for a path no resource provider serves; the row names the api it belongs to.
    NoRoute,
}

/// The api-versions a row accepts, checked by the dispatcher before the handler runs (ARM's
/// `MissingApiVersionParameter` / `InvalidApiVersionParameter`).
#[derive(Debug, Clone, Copy)]
pub enum Versions {
    /// Not checked here: a data plane checks its own (Key Vault), or it is a fallback.
    Unchecked,
    /// Those of this resource type of [`RESOURCE_TYPES`].
    Of(&'static str),
    /// Those of the resource type the path names (`{resourceProviderNamespace}/{resourceType}`):
    /// the generic rows. A type the table lacks is ARM's `InvalidResourceType`.
    Named,
}

pub struct Api {
    /// `*`, or methods separated by spaces (`GET PUT PATCH DELETE`).
    pub methods: &'static str,
    pub path: &'static str,
    pub api: &'static str,
    pub versions: Versions,
    pub effect: Effect,
    pub handler: Handler,
}

const fn row(
    methods: &'static str,
    path: &'static str,
    api: &'static str,
    versions: Versions,
    effect: Effect,
    handler: Handler,
) -> Api {
    Api { methods, path, api, versions, effect, handler }
}

macro_rules! sub {
    ($tail:literal) => {
        concat!("/subscriptions/{subscriptionId}", $tail)
    };
}
macro_rules! prov {
    ($tail:literal) => {
        concat!("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/", $tail)
    };
}
macro_rules! cognitive {
    ($tail:literal) => {
        concat!(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/",
            "Microsoft.CognitiveServices/accounts/{accountName}",
            $tail
        )
    };
}
macro_rules! account {
    ($tail:literal) => {
        concat!(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/",
            "Microsoft.Automation/automationAccounts/{automationAccountName}",
            $tail
        )
    };
}

use Effect::{ByMethod, Read, Write};
use Handler::{Arm, NoRoute, Router};

use Versions::{Named, Of, Unchecked};

const GROUPS: Versions = Of(types::RESOURCE_GROUPS);
const RESOURCES: Versions = Of(types::RESOURCES);
const DEPLOYMENTS: Versions = Of(types::DEPLOYMENTS);
const OPERATION_RESULTS: Versions = Of(types::OPERATION_RESULTS);
const SUBSCRIPTIONS: Versions = Of(types::SUBSCRIPTIONS);
const PROVIDERS: Versions = Of(types::PROVIDERS);
const REGISTRY: Versions = Of(types::REGISTRIES);
const RUNBOOKS: Versions = Of(types::RUNBOOKS);
const RUNTIME_ENVS: Versions = Of(types::RUNTIME_ENVIRONMENTS);
const ZONE_GROUPS: Versions = Of(types::ZONE_GROUPS);
const SUBNETS: Versions = Of(types::SUBNETS);
const VNET_LINKS: Versions = Of(types::VNET_LINKS);
const SITE_CONFIG: Versions = Of(types::SITE_CONFIG);
const PROJECTS: Versions = Of(types::PROJECTS);
const CONNECTIONS: Versions = Of(types::CONNECTIONS);
const AKS: Versions = Of(platform::AKS);
const STORAGE: Versions = Of(platform::STORAGE);

// One row per line, so the table reads as a table (rustfmt would break every row apart).
#[rustfmt::skip]
pub static APIS: &[Api] = &[
    // Data planes (their own axum routes; api-versions checked there).
    row("*", "/msi/**", "identity", Unchecked, Read, Router),
    // A backup is a POST that only reads (restore, `POST /secrets/restore`, writes).
    row("POST", "/secrets/{secretName}/backup", "keyvault", Unchecked, Read, Router),
    row("*", "/secrets/**", "keyvault", Unchecked, ByMethod, Router),
    row("*", "/deletedsecrets/**", "keyvault", Unchecked, ByMethod, Router),
    row("*", "/oauth2/exchange", "acr.exchange", Unchecked, Read, Router),
    row("*", "/oauth2/token", "acr.token", Unchecked, Read, Router),
    row("*", "/health", "apps.health", Unchecked, Read, Router),
    row("*", "/healthz", "apps.health", Unchecked, Read, Router),
    row("*", "/livez", "apps.health", Unchecked, Read, Router),
    row("*", "/readyz", "apps.health", Unchecked, Read, Router),
    row("*", "/api/health", "apps.health", Unchecked, Read, Router),
    // AI Search and the Foundry project data plane (`search/`, `foundry/`).
    row("*", "/indexes", "search.indexes", Unchecked, ByMethod, Router),
    row("*", "/indexes/{indexName}", "search.indexes", Unchecked, ByMethod, Router),
    row("*", "/indexes/{indexName}/search.stats", "search.indexes", Unchecked, Read, Router),
    row("*", "/indexes/**", "search.indexes", Unchecked, ByMethod, Router),
    row("*", "/api/projects/{projectName}/agents/**", "foundry.agents", Unchecked, ByMethod, Router),
    row("*", "/api/projects/{projectName}/indexes/**", "foundry.indexes", Unchecked, ByMethod, Router),
    row("*", "/api/projects/**", "foundry", Unchecked, ByMethod, Router),
    // The cloud's endpoints (`az cloud register`): unauthenticated, like ARM's own.
    row("GET", "/metadata/endpoints", "arm.metadata", Unchecked, Read, Router),
    // The publisher registry's front (`referrers.rs`): the referrers API it answers itself, and
    // everything else it forwards.
    // The Blob service behind the storageFront listener (Azurite's account, path-style).
    row("*", "/devstoreaccount1/**", "storage.blob", Unchecked, ByMethod, Router),
    row("GET", "/v2/**/referrers/{digest}", "registry.referrers", Unchecked, Read, Router),
    row("*", "/v2/**", "registry.proxy", Unchecked, ByMethod, Router),
    // Subscriptions, tenants and resource providers (`az login`, `az resource show`).
    row("GET", "/subscriptions", "arm.subscriptions", SUBSCRIPTIONS, Read, Arm(subscriptions::list)),
    row("GET", "/tenants", "arm.subscriptions", SUBSCRIPTIONS, Read, Arm(subscriptions::tenants)),
    row("GET", sub!(""), "arm.subscriptions", SUBSCRIPTIONS, Read, Arm(subscriptions::get)),
    row("GET", sub!("/locations"), "arm.subscriptions", SUBSCRIPTIONS, Read, Arm(subscriptions::locations)),
    row("GET", sub!("/providers"), "arm.providers", PROVIDERS, Read, Arm(subscriptions::providers)),
    row("GET", sub!("/providers/{resourceProviderNamespace}"), "arm.providers", PROVIDERS, Read, Arm(subscriptions::provider_get)),
    // Resource groups, generic resources, ARM's own operations.
    row("GET", sub!("/resourcegroups"), "arm.resourceGroups", GROUPS, Read, Arm(groups::list)),
    row("*", sub!("/resourcegroups/{resourceGroupName}"), "arm.resourceGroups", GROUPS, ByMethod, Arm(groups::handle)),
    // Deployment deletes poll here too, at the deployments' api-version: accept those as well.
    row("GET", sub!("/operationresults/{operationId}"), "arm.operations", OPERATION_RESULTS, Read, Arm(operations::poll_location)),
    row("GET", sub!("/resources"), "arm.resources", RESOURCES, Read, Arm(resources::list)),
    row("GET", sub!("/resourcegroups/{resourceGroupName}/resources"), "arm.resources", RESOURCES, Read, Arm(resources::list)),
    // Deployments.
    row("GET", prov!("Microsoft.Resources/deployments"), "arm.deployments", DEPLOYMENTS, Read, Arm(deployments::list)),
    row("*", prov!("Microsoft.Resources/deployments/{deploymentName}"), "arm.deployments", DEPLOYMENTS, ByMethod, Arm(deployments::handle)),
    row("POST", prov!("Microsoft.Resources/deployments/{deploymentName}/validate"), "arm.deployments", DEPLOYMENTS, Read, Arm(deployments::validate)),
    row("GET", prov!("Microsoft.Resources/deployments/{deploymentName}/operationStatuses/{operationId}"), "arm.operations", DEPLOYMENTS, Read, Arm(operations::poll_async)),
    // Container registry: importImage and its operation (both `acr.importImage`, so one fault
    // or journal filter covers a whole import).
    row("POST", prov!("Microsoft.ContainerRegistry/registries/{registryName}/importImage"), "acr.importImage", REGISTRY, Write, Arm(import::start)),
    row("GET", prov!("Microsoft.ContainerRegistry/locations/{location}/operationResults/{operationId}"), "acr.importImage", REGISTRY, Read, Arm(import::poll)),
    row("GET", prov!("Microsoft.ContainerRegistry/locations/{location}/operationResults/operationStatuses/{operationId}"), "acr.importImage", REGISTRY, Read, Arm(import::poll)),
    // Automation: everything under the provider is `automation`, its operation polls included.
    row("GET", account!("/runbooks"), "automation", RUNBOOKS, Read, Arm(|st, r| automation::handle(st, r, Route::ListRunbooks))),
    row("GET PUT PATCH DELETE", account!("/runbooks/{runbookName}"), "automation", RUNBOOKS, ByMethod, Arm(|st, r| automation::handle(st, r, Route::Runbook))),
    row("GET", account!("/runbooks/{runbookName}/draft"), "automation", RUNBOOKS, Read, Arm(|st, r| automation::handle(st, r, Route::Draft))),
    row("GET PUT", account!("/runbooks/{runbookName}/draft/content"), "automation", RUNBOOKS, ByMethod, Arm(|st, r| automation::handle(st, r, Route::DraftContent))),
    row("GET", account!("/runbooks/{runbookName}/draft/content/operationResults/{operationId}"), "automation", RUNBOOKS, Read, Arm(|st, r| automation::handle(st, r, Route::DraftOperation))),
    row("POST", account!("/runbooks/{runbookName}/draft/undoEdit"), "automation", RUNBOOKS, Write, Arm(|st, r| automation::handle(st, r, Route::UndoEdit))),
    row("POST", account!("/runbooks/{runbookName}/publish"), "automation", RUNBOOKS, Write, Arm(|st, r| automation::handle(st, r, Route::Publish))),
    row("GET", account!("/runbooks/{runbookName}/publish/operationResults/{operationId}"), "automation", RUNBOOKS, Read, Arm(|st, r| automation::handle(st, r, Route::PublishOperation))),
    row("GET", account!("/runbooks/{runbookName}/content"), "automation", RUNBOOKS, Read, Arm(|st, r| automation::handle(st, r, Route::Content))),
    row("GET", account!("/runtimeEnvironments"), "automation", RUNTIME_ENVS, Read, Arm(|st, r| automation::handle(st, r, Route::ListRuntimeEnvironments))),
    row("GET PUT PATCH DELETE", account!("/runtimeEnvironments/{runtimeEnvironmentName}"), "automation", RUNTIME_ENVS, ByMethod, Arm(|st, r| automation::handle(st, r, Route::RuntimeEnvironment))),
    // Below a network resource (top-level ones are the generic GET).
    row("GET", prov!("Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups"), "arm.resources", ZONE_GROUPS, Read, Arm(|st, r| network::get_nested(st, r, Nested::ZoneGroups))),
    row("GET", prov!("Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{childName}"), "arm.resources", ZONE_GROUPS, Read, Arm(|st, r| network::get_nested(st, r, Nested::ZoneGroups))),
    row("GET", prov!("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets"), "arm.resources", SUBNETS, Read, Arm(|st, r| network::get_nested(st, r, Nested::Subnets))),
    row("GET", prov!("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{childName}"), "arm.resources", SUBNETS, Read, Arm(|st, r| network::get_nested(st, r, Nested::Subnets))),
    row("GET", prov!("Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks"), "arm.resources", VNET_LINKS, Read, Arm(|st, r| network::get_nested(st, r, Nested::VnetLinks))),
    row("GET", prov!("Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{childName}"), "arm.resources", VNET_LINKS, Read, Arm(|st, r| network::get_nested(st, r, Nested::VnetLinks))),
    // AKS: the cluster GET (what `az aks command invoke` reads first) and runCommand with its
    // result (both `aks.runCommand`, so one fault or journal filter covers a whole command; a
    // command that only reads is journaled `mutating: false` by its handler).
    row("GET", prov!("Microsoft.ContainerService/managedClusters/{resourceName}"), "aks.managedClusters", AKS, Read, Arm(aks::get_cluster)),
    row("POST", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/runCommand"), "aks.runCommand", AKS, Write, Arm(aks::run_command)),
    row("GET", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/commandResults/{commandId}"), "aks.runCommand", AKS, Read, Arm(aks::command_result)),
    // Foundry projects and their connections (AI Foundry's ARM children).
    row("GET", cognitive!("/projects"), "arm.resources", PROJECTS, Read, Arm(projects::get)),
    row("GET", cognitive!("/projects/{projectName}"), "arm.resources", PROJECTS, Read, Arm(projects::get)),
    row("GET", cognitive!("/projects/{projectName}/connections"), "arm.resources", CONNECTIONS, Read, Arm(projects::get)),
    row("GET", cognitive!("/projects/{projectName}/connections/{connectionName}"), "arm.resources", CONNECTIONS, Read, Arm(projects::get)),
    // Storage: the account's keys (an action that reads; Airbyte's chart takes a connection string).
    row("POST", prov!("Microsoft.Storage/storageAccounts/{accountName}/listKeys"), "arm.resources", STORAGE, Read, Arm(platform::storage_keys)),
    // App Service: a POST that reads, and the site's configuration.
    row("POST", prov!("Microsoft.Web/sites/{name}/config/appsettings/list"), "arm.resources", SITE_CONFIG, Read, Arm(platform::app_settings)),
    row("GET", prov!("Microsoft.Web/sites/{name}/config/web"), "arm.resources", SITE_CONFIG, Read, Arm(platform::site_config)),
    row("GET", prov!("Microsoft.Web/sites/{name}/config/slotConfigNames"), "arm.resources", SITE_CONFIG, Read, Arm(platform::site_config)),
    // Effective permissions (`Permissions_ListForResourceGroup`, `Permissions_ListForResource`):
    // from the grant table.
    row("GET", prov!("Microsoft.Authorization/permissions"), "arm.permissions", Unchecked, Read, Arm(crate::grants::effective)),
    row("GET", prov!("{resourceProviderNamespace}/{resourceType}/{resourceName}/providers/Microsoft.Authorization/permissions"), "arm.permissions", Unchecked, Read, Arm(crate::grants::effective)),
    // Any inventory resource by id, and every inventory type's collection in the group and in
    // the subscription (api-versions per resource type).
    row("GET", prov!("Microsoft.ContainerRegistry/{resourceType}/{resourceName}"), "acr.registries", Named, Read, Arm(resources::get)),
    row("GET", prov!("Microsoft.Automation/{resourceType}/{resourceName}"), "automation", Named, Read, Arm(resources::get)),
    row("GET", prov!("{resourceProviderNamespace}/{resourceType}/{resourceName}"), "arm.resources", Named, Read, Arm(resources::get)),
    row("GET", prov!("Microsoft.ContainerRegistry/{resourceType}"), "acr.registries", Named, Read, Arm(resources::list_type)),
    row("GET", prov!("Microsoft.Automation/{resourceType}"), "automation", Named, Read, Arm(resources::list_type)),
    row("GET", prov!("{resourceProviderNamespace}/{resourceType}"), "arm.resources", Named, Read, Arm(resources::list_type)),
    row("GET", sub!("/providers/Microsoft.ContainerRegistry/{resourceType}"), "acr.registries", Named, Read, Arm(resources::list_type)),
    row("GET", sub!("/providers/Microsoft.Automation/{resourceType}"), "automation", Named, Read, Arm(resources::list_type)),
    row("GET", sub!("/providers/{resourceProviderNamespace}/{resourceType}"), "arm.resources", Named, Read, Arm(resources::list_type)),
    // Fallbacks: ARM's 404, under the api of the provider the path belongs to.
    row("*", sub!("/resourcegroups"), "arm.resourceGroups", Unchecked, ByMethod, NoRoute),
    row("*", sub!("/operationresults/**"), "arm.operations", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Resources/deployments/{deploymentName}/operationStatuses/**"), "arm.operations", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Resources/deployments/**"), "arm.deployments", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/registries/{registryName}/importImage"), "acr.importImage", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/locations/{location}/operationResults/**"), "acr.importImage", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/**"), "acr.registries", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Automation/**"), "automation", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/runCommand"), "aks.runCommand", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/commandResults/**"), "aks.runCommand", Unchecked, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/**"), "aks.managedClusters", Unchecked, ByMethod, NoRoute),
    row("*", "/subscriptions/**", "arm.resources", Unchecked, ByMethod, NoRoute),
];

/// The api name of requests no row matches.
pub const UNKNOWN: &str = "unknown";

impl Api {
    fn allows(&self, method: &Method) -> bool {
        self.methods == "*" || self.methods.split(' ').any(|m| m == method.as_str())
    }

    /// The positions of the pattern's `{name}` segments when `segs` matches it.
    fn captures(&self, segs: &[&str]) -> Option<Vec<(&'static str, usize)>> {
        let mut captures = Vec::new();
        let mut pattern = self.path.trim_start_matches('/').split('/');
        for (i, seg) in segs.iter().enumerate() {
            match pattern.next() {
                Some("**") => return Self::tail(pattern.collect(), &segs[i..], i, captures),
                Some(p) if p.starts_with('{') && p.ends_with('}') => captures.push((&p[1..p.len() - 1], i)),
                Some(p) if p.eq_ignore_ascii_case(seg) => {}
                _ => return None,
            }
        }
        match pattern.next() {
            None => Some(captures),
            Some("**") if pattern.next().is_none() => Some(captures),
            Some(_) => None,
        }
    }
}

impl Api {
    /// A `**` in the middle (`/v2/**/referrers/{digest}`: a repository name has any number of
    /// segments): at least one segment for it, then the rest of the pattern matches the path's end.
    fn tail(
        rest: Vec<&'static str>,
        segs: &[&str],
        at: usize,
        mut captures: Vec<(&'static str, usize)>,
    ) -> Option<Vec<(&'static str, usize)>> {
        if rest.is_empty() {
            return Some(captures);
        }
        let start = segs.len().checked_sub(rest.len()).filter(|s| *s >= 1)?;
        for (j, (p, seg)) in rest.iter().zip(&segs[start..]).enumerate() {
            if p.starts_with('{') && p.ends_with('}') {
                captures.push((&p[1..p.len() - 1], at + start + j));
            } else if !p.eq_ignore_ascii_case(seg) {
                return None;
            }
        }
        Some(captures)
    }
}

/// A request's row, and where its `{name}` segments are: what the middleware found, handed to
/// the dispatcher in the request's extensions.
#[derive(Clone)]
pub struct Matched {
    pub api: &'static Api,
    pub captures: Vec<(&'static str, usize)>,
}

/// The first row matching `method` and the path's segments (percent-decoded, as sent).
pub fn find(method: &Method, segs: &[&str]) -> Option<Matched> {
    APIS.iter().filter(|a| a.allows(method)).find_map(|a| a.captures(segs).map(|captures| Matched { api: a, captures }))
}

/// A path's segments, percent-decoded (clients encode e.g. spaces in names). An OData key
/// segment (`indexes('docs')`, what the Search SDKs send) reads as two (`indexes`, `docs`), so
/// one row covers both spellings; ARM paths never contain one.
pub fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty()).map(percent_decode) {
        match odata_key(&seg) {
            Some((set, key)) => {
                out.push(set.to_owned());
                out.push(key);
            }
            None => out.push(seg),
        }
    }
    out
}

/// `name('key')` → `(name, key)`, with OData's doubled quotes undone.
fn odata_key(seg: &str) -> Option<(&str, String)> {
    let open = seg.find("('").filter(|&i| i > 0)?;
    let key = seg[open + 2..].strip_suffix("')")?;
    Some((&seg[..open], key.replace("''", "'")))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// `(api name, mutating)` of a request, as the journal records it.
#[cfg(test)]
pub fn classify(method: &Method, path: &str) -> (&'static str, bool) {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match find(method, &segs) {
        Some(m) => (m.api.api, m.api.effect.mutating(method)),
        None => (UNKNOWN, ByMethod.mutating(method)),
    }
}

#[cfg(test)]
mod tests;
