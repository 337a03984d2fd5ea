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

use axum::http::Method;
use axum::response::Response;

use crate::arm::aks::{self, AKS_API_VERSIONS};
use crate::arm::automation::{self, Route, RUNBOOK_API_VERSIONS, RUNTIME_ENVIRONMENT_API_VERSIONS};
use crate::arm::inventory::REGISTRY_API_VERSIONS;
use crate::arm::network::{self, Nested, NETWORK_API_VERSIONS, PRIVATE_DNS_API_VERSIONS};
use crate::arm::{
    deployments, groups, import, operations, platform, resources, ArmRequest, DEPLOYMENTS_API_VERSIONS,
    RESOURCES_API_VERSIONS,
};
use crate::state::Shared;

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

pub struct Api {
    /// `*`, or methods separated by spaces (`GET PUT PATCH DELETE`).
    pub methods: &'static str,
    pub path: &'static str,
    pub api: &'static str,
    /// Checked by the dispatcher (ARM's `InvalidApiVersionParameter`); `None` when the handler
    /// checks it itself (a generic GET, whose versions depend on the resource type).
    pub versions: Option<&'static [&'static str]>,
    pub effect: Effect,
    pub handler: Handler,
}

const fn row(
    methods: &'static str,
    path: &'static str,
    api: &'static str,
    versions: Option<&'static [&'static str]>,
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

const RESOURCES: Option<&[&str]> = Some(RESOURCES_API_VERSIONS);
const DEPLOYMENTS: Option<&[&str]> = Some(DEPLOYMENTS_API_VERSIONS);
const REGISTRY: Option<&[&str]> = Some(REGISTRY_API_VERSIONS);
const RUNBOOKS: Option<&[&str]> = Some(RUNBOOK_API_VERSIONS);
const RUNTIME_ENVS: Option<&[&str]> = Some(RUNTIME_ENVIRONMENT_API_VERSIONS);
const NETWORK: Option<&[&str]> = Some(NETWORK_API_VERSIONS);
const PRIVATE_DNS: Option<&[&str]> = Some(PRIVATE_DNS_API_VERSIONS);
const WEB: Option<&[&str]> = Some(platform::WEB_API_VERSIONS);
const AKS: Option<&[&str]> = Some(AKS_API_VERSIONS);

// One row per line, so the table reads as a table (rustfmt would break every row apart).
#[rustfmt::skip]
pub static APIS: &[Api] = &[
    // Data planes (their own axum routes; api-versions checked there).
    row("*", "/msi/**", "identity", None, Read, Router),
    row("*", "/secrets/**", "keyvault", None, ByMethod, Router),
    row("*", "/deletedsecrets/**", "keyvault", None, ByMethod, Router),
    row("*", "/oauth2/exchange", "acr.exchange", None, Read, Router),
    row("*", "/oauth2/token", "acr.token", None, Read, Router),
    row("*", "/health", "apps.health", None, Read, Router),
    row("*", "/healthz", "apps.health", None, Read, Router),
    row("*", "/livez", "apps.health", None, Read, Router),
    row("*", "/readyz", "apps.health", None, Read, Router),
    row("*", "/api/health", "apps.health", None, Read, Router),
    // Resource groups, generic resources, ARM's own operations.
    row("GET", sub!("/resourcegroups"), "arm.resourceGroups", RESOURCES, Read, Arm(groups::list)),
    row("*", sub!("/resourcegroups/{resourceGroupName}"), "arm.resourceGroups", RESOURCES, ByMethod, Arm(groups::handle)),
    // Deployment deletes poll here too, at the deployments' api-version: accept those as well.
    row("GET", sub!("/operationresults/{operationId}"), "arm.operations", DEPLOYMENTS, Read, Arm(operations::poll_location)),
    row("GET", sub!("/resourcegroups/{resourceGroupName}/resources"), "arm.resources", RESOURCES, Read, Arm(resources::list)),
    // Deployments.
    row("*", prov!("Microsoft.Resources/deployments/{deploymentName}"), "arm.deployments", DEPLOYMENTS, ByMethod, Arm(deployments::handle)),
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
    row("GET", prov!("Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups"), "arm.resources", NETWORK, Read, Arm(|st, r| network::get_nested(st, r, Nested::ZoneGroups))),
    row("GET", prov!("Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{childName}"), "arm.resources", NETWORK, Read, Arm(|st, r| network::get_nested(st, r, Nested::ZoneGroups))),
    row("GET", prov!("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets"), "arm.resources", NETWORK, Read, Arm(|st, r| network::get_nested(st, r, Nested::Subnets))),
    row("GET", prov!("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{childName}"), "arm.resources", NETWORK, Read, Arm(|st, r| network::get_nested(st, r, Nested::Subnets))),
    row("GET", prov!("Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks"), "arm.resources", PRIVATE_DNS, Read, Arm(|st, r| network::get_nested(st, r, Nested::VnetLinks))),
    row("GET", prov!("Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{childName}"), "arm.resources", PRIVATE_DNS, Read, Arm(|st, r| network::get_nested(st, r, Nested::VnetLinks))),
    // AKS: the cluster GET (what `az aks command invoke` reads first) and runCommand with its
    // result (both `aks.runCommand`, so one fault or journal filter covers a whole command; a
    // command that only reads is journaled `mutating: false` by its handler).
    row("GET", prov!("Microsoft.ContainerService/managedClusters/{resourceName}"), "aks.managedClusters", AKS, Read, Arm(aks::get_cluster)),
    row("POST", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/runCommand"), "aks.runCommand", AKS, Write, Arm(aks::run_command)),
    row("GET", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/commandResults/{commandId}"), "aks.runCommand", AKS, Read, Arm(aks::command_result)),
    // A POST that reads.
    row("POST", prov!("Microsoft.Web/sites/{name}/config/appsettings/list"), "arm.resources", WEB, Read, Arm(platform::app_settings)),
    // The GET of any inventory resource by id (api-versions per resource type).
    row("GET", prov!("Microsoft.ContainerRegistry/{resourceType}/{resourceName}"), "acr.registries", None, Read, Arm(resources::get)),
    row("GET", prov!("Microsoft.Automation/{resourceType}/{resourceName}"), "automation", None, Read, Arm(resources::get)),
    row("GET", prov!("{resourceProviderNamespace}/{resourceType}/{resourceName}"), "arm.resources", None, Read, Arm(resources::get)),
    // Fallbacks: ARM's 404, under the api of the provider the path belongs to.
    row("*", sub!("/resourcegroups"), "arm.resourceGroups", None, ByMethod, NoRoute),
    row("*", sub!("/operationresults/**"), "arm.operations", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Resources/deployments/{deploymentName}/operationStatuses/**"), "arm.operations", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Resources/deployments/**"), "arm.deployments", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/registries/{registryName}/importImage"), "acr.importImage", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/locations/{location}/operationResults/**"), "acr.importImage", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerRegistry/**"), "acr.registries", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.Automation/**"), "automation", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/runCommand"), "aks.runCommand", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/managedClusters/{resourceName}/commandResults/**"), "aks.runCommand", None, ByMethod, NoRoute),
    row("*", prov!("Microsoft.ContainerService/**"), "aks.managedClusters", None, ByMethod, NoRoute),
    row("*", "/subscriptions/**", "arm.resources", None, ByMethod, NoRoute),
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
                Some("**") => return Some(captures),
                Some(p) if p.starts_with('{') && p.ends_with('}') => captures.push((&p[1..p.len() - 1], i)),
                Some(p) if p.eq_ignore_ascii_case(seg) => {}
                _ => return None,
            }
        }
        match pattern.next() {
            None | Some("**") => Some(captures),
            Some(_) => None,
        }
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

/// A path's segments, percent-decoded (clients encode e.g. spaces in names).
pub fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
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
mod tests {
    use super::*;

    #[test]
    fn names_the_contract_apis() {
        let rg = "/subscriptions/s/resourceGroups/rg";
        let cases = [
            ("GET", "/msi/token".to_owned(), "identity"),
            ("GET", "/secrets/x/abc".to_owned(), "keyvault"),
            ("GET", "/secrets".to_owned(), "keyvault"),
            ("GET", "/deletedsecrets/x".to_owned(), "keyvault"),
            ("GET", "/subscriptions/s/resourcegroups/rg".to_owned(), "arm.resourceGroups"),
            ("POST", "/subscriptions/s/resourcegroups".to_owned(), "arm.resourceGroups"),
            ("GET", format!("{rg}/resources"), "arm.resources"),
            ("GET", format!("{rg}/providers/Microsoft.Resources/deployments/d"), "arm.deployments"),
            ("GET", format!("{rg}/providers/Microsoft.Resources/deployments/d/operationStatuses/1"), "arm.operations"),
            ("GET", "/subscriptions/s/operationresults/abc".to_owned(), "arm.operations"),
            ("GET", format!("{rg}/providers/Microsoft.ContainerRegistry/registries/r"), "acr.registries"),
            ("POST", format!("{rg}/providers/Microsoft.ContainerRegistry/registries/r/importImage"), "acr.importImage"),
            (
                "GET",
                format!("{rg}/providers/Microsoft.ContainerRegistry/locations/eastus/operationResults/operationStatuses/registries-1"),
                "acr.importImage",
            ),
            ("PUT", format!("{rg}/providers/Microsoft.Automation/automationAccounts/a/runbooks/r/draft/content"), "automation"),
            (
                "GET",
                format!("{rg}/providers/microsoft.automation/automationAccounts/a/runbooks/r/publish/operationResults/1"),
                "automation",
            ),
            ("GET", format!("{rg}/providers/Microsoft.Automation/automationAccounts/a"), "automation"),
            ("POST", format!("{rg}/providers/Microsoft.Automation/automationAccounts/a/jobs/x"), "automation"),
            ("GET", format!("{rg}/providers/Microsoft.KeyVault/vaults/kv"), "arm.resources"),
            ("GET", format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks"), "aks.managedClusters"),
            ("POST", format!("{rg}/providers/microsoft.containerservice/managedclusters/aks/runCommand"), "aks.runCommand"),
            ("GET", format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks/commandResults/abc"), "aks.runCommand"),
            ("DELETE", format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks/commandResults/abc"), "aks.runCommand"),
            ("GET", "/subscriptions/s/providers/Microsoft.Foo".to_owned(), "arm.resources"),
            ("POST", "/oauth2/exchange".to_owned(), "acr.exchange"),
            ("GET", "/oauth2/token".to_owned(), "acr.token"),
            ("GET", "/readyz".to_owned(), "apps.health"),
            ("GET", "/nothing/here".to_owned(), UNKNOWN),
        ];
        for (method, path, want) in cases {
            assert_eq!(classify(&Method::from_bytes(method.as_bytes()).unwrap(), &path).0, want, "{method} {path}");
        }
    }

    #[test]
    fn marks_what_mutates() {
        let rg = "/subscriptions/s/resourceGroups/rg";
        let p = |tail: &str| format!("{rg}/providers/{tail}");
        let cases = [
            ("GET", rg.to_owned(), false),
            ("HEAD", rg.to_owned(), false),
            ("PUT", rg.to_owned(), true),
            ("DELETE", rg.to_owned(), true),
            ("POST", p("Microsoft.ContainerRegistry/registries/r/importImage"), true),
            ("GET", p("Microsoft.ContainerRegistry/locations/l/operationResults/x"), false),
            ("POST", p("Microsoft.Web/sites/s/config/appsettings/list"), false),
            ("POST", p("Microsoft.Automation/automationAccounts/a/runbooks/r/publish"), true),
            ("POST", p("Microsoft.ContainerService/managedClusters/aks/runCommand"), true),
            ("GET", p("Microsoft.ContainerService/managedClusters/aks/commandResults/x"), false),
            ("GET", p("Microsoft.Automation/automationAccounts/a/runbooks/r/content"), false),
            ("PUT", "/secrets/x".to_owned(), true),
            ("POST", "/deletedsecrets/x/recover".to_owned(), true),
            ("GET", "/secrets/x".to_owned(), false),
            ("POST", "/oauth2/exchange".to_owned(), false),
            ("GET", "/msi/token".to_owned(), false),
            // Unknown calls are taken by their method.
            ("POST", "/nothing/here".to_owned(), true),
        ];
        for (method, path, want) in cases {
            assert_eq!(classify(&Method::from_bytes(method.as_bytes()).unwrap(), &path).1, want, "{method} {path}");
        }
    }

    #[test]
    fn patterns_capture_and_ignore_case() {
        let segs =
            ["SUBSCRIPTIONS", "s", "ResourceGroups", "Rg", "PROVIDERS", "microsoft.resources", "Deployments", "D"];
        let m = find(&Method::PUT, &segs).unwrap();
        assert_eq!(m.api.api, "arm.deployments");
        assert_eq!(m.captures, [("subscriptionId", 1), ("resourceGroupName", 3), ("deploymentName", 7)]);
        assert!(find(&Method::GET, &["secrets"]).is_some(), "`**` matches an empty rest");
        assert!(find(&Method::GET, &["oauth2", "token", "x"]).is_none());
    }

    #[test]
    fn every_arm_row_is_reachable() {
        // A row shadowed by an earlier one would be dead: check each specific row matches its
        // own pattern (with placeholder names) before any other row.
        for (i, row) in APIS.iter().enumerate() {
            if matches!(row.handler, Handler::NoRoute) || row.path.contains("**") {
                continue;
            }
            let segs: Vec<&str> = row.path.trim_start_matches('/').split('/').collect();
            let method =
                Method::from_bytes(row.methods.split(' ').next().unwrap().replace('*', "GET").as_bytes()).unwrap();
            let found = find(&method, &segs).unwrap();
            assert!(std::ptr::eq(found.api, &APIS[i]), "row {i} {} is shadowed", row.path);
        }
    }
}
