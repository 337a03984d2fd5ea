//! The provider table's own checks: names, effects, matching, shadowing, and that every row
//! and inventory type is in the type table.

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
        ("GET", "/subscriptions/s/providers/Microsoft.Foo".to_owned(), "arm.providers"),
        ("GET", "/subscriptions/s/providers/Microsoft.Foo/bars/b/bazzes".to_owned(), "arm.resources"),
        ("POST", "/oauth2/exchange".to_owned(), "acr.exchange"),
        ("GET", "/oauth2/token".to_owned(), "acr.token"),
        ("GET", "/readyz".to_owned(), "apps.health"),
        ("PUT", "/indexes('docs')".to_owned(), "search.indexes"),
        ("GET", "/indexes/docs/search.stats".to_owned(), "search.indexes"),
        ("GET", "/indexes".to_owned(), "search.indexes"),
        ("POST", "/api/projects/p/agents/triage/versions".to_owned(), "foundry.agents"),
        ("PUT", "/devstoreaccount1/ledger/runs/a.json".to_owned(), "storage.blob"),
        ("GET", "/devstoreaccount1".to_owned(), "storage.blob"),
        ("PATCH", "/api/projects/p/indexes/docs/versions/1".to_owned(), "foundry.indexes"),
        ("GET", format!("{rg}/providers/Microsoft.CognitiveServices/accounts/a/projects/p"), "arm.resources"),
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
        ("PUT", "/indexes('docs')".to_owned(), true),
        ("DELETE", "/indexes/docs".to_owned(), true),
        ("GET", "/indexes('docs')/search.stats".to_owned(), false),
        ("GET", "/indexes".to_owned(), false),
        ("POST", "/api/projects/p/agents/a/versions".to_owned(), true),
        ("GET", "/api/projects/p/agents".to_owned(), false),
        ("PATCH", "/api/projects/p/indexes/docs/versions/1".to_owned(), true),
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
    let segs = ["SUBSCRIPTIONS", "s", "ResourceGroups", "Rg", "PROVIDERS", "microsoft.resources", "Deployments", "D"];
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
        let method = Method::from_bytes(row.methods.split(' ').next().unwrap().replace('*', "GET").as_bytes()).unwrap();
        let found = find(&method, &segs).unwrap();
        assert!(std::ptr::eq(found.api, &APIS[i]), "row {i} {} is shadowed", row.path);
    }
}

#[test]
fn every_row_names_a_listed_type() {
    for row in APIS {
        if let Versions::Of(name) = row.versions {
            assert!(types::find(name).is_some(), "{} names {name}, which RESOURCE_TYPES lacks", row.path);
        }
    }
}

#[test]
fn every_inventory_type_is_listed() {
    let cfg: crate::config::Config = serde_json::from_str(
        r#"{"listen":{"base":1},"tls":{"cert":"c","key":"k"},"tokenSigning":{"cert":"c","key":"k"},
        "tenantId":"t","subscriptionId":"s","resourceGroup":"rg","location":"eastus",
        "identity":{"clientId":"c","principalId":"p","resourceId":"/x/y/vibedata-uami","header":"h"},
        "customerRegistry":{"name":"vibedatacustomer","loginServer":"l","service":"s","issuer":"i"}}"#,
    )
    .unwrap();
    for r in crate::arm::inventory::build(&cfg).resources {
        assert!(types::find(r.resource_type).is_some(), "{} is not in RESOURCE_TYPES", r.resource_type);
    }
}

#[test]
fn generic_rows_serve_collections_at_both_scopes() {
    let get = |path: &str| classify(&Method::GET, path).0;
    assert_eq!(get("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints"), "arm.resources");
    assert_eq!(get("/subscriptions/s/providers/Microsoft.KeyVault/vaults"), "arm.resources");
    assert_eq!(get("/subscriptions/s/providers/Microsoft.ContainerRegistry/registries"), "acr.registries");
    assert_eq!(
        get("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts"),
        "automation"
    );
    assert_eq!(get("/subscriptions/s/providers/Microsoft.Network"), "arm.providers");
    assert_eq!(get("/subscriptions/s/resources"), "arm.resources");
    assert_eq!(get("/subscriptions"), "arm.subscriptions");
    assert_eq!(get("/metadata/endpoints"), "arm.metadata");
    let validate = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d/validate";
    assert_eq!(classify(&Method::POST, validate), ("arm.deployments", false));
    assert_eq!(classify(&Method::POST, "/secrets/x/backup"), ("keyvault", false));
    assert_eq!(classify(&Method::POST, "/secrets/restore"), ("keyvault", true));
}

#[test]
fn odata_keys_read_as_segments() {
    assert_eq!(segments("/indexes('docs')/search.stats"), ["indexes", "docs", "search.stats"]);
    assert_eq!(segments("/indexes(%27it''s%27)"), ["indexes", "it's"]);
    assert_eq!(segments("/indexes/docs"), ["indexes", "docs"]);
    assert_eq!(segments("/('x')"), ["('x')"]);
}

#[test]
fn the_registry_front_names_referrers_and_the_rest() {
    assert_eq!(classify(&Method::GET, "/v2/org/app/referrers/sha256:ab"), ("registry.referrers", false));
    assert_eq!(classify(&Method::GET, "/v2/app/referrers/sha256:ab"), ("registry.referrers", false));
    assert_eq!(classify(&Method::GET, "/v2/referrers/sha256:ab"), ("registry.proxy", false));
    assert_eq!(classify(&Method::HEAD, "/v2/org/app/manifests/v1"), ("registry.proxy", false));
    assert_eq!(classify(&Method::PUT, "/v2/org/app/manifests/v1"), ("registry.proxy", true));
    assert_eq!(classify(&Method::GET, "/v2/"), ("registry.proxy", false));
}
