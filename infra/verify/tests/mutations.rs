//! Each check fails when the template is broken: a copy of infra/ is mutated and the named
//! finding must appear (and the unmutated copy has none, see `the_copy_is_clean`).

mod common;

use common::{assert_finds, Copy};
use vibedata_infra_verify::plan::Phase;
use vibedata_infra_verify::rule;

const MAIN: &str = "main.bicep";

fn check(copy: &Copy) -> Vec<vibedata_infra_verify::Finding> {
    copy.check(&common::plan())
}

#[test]
fn the_copy_is_clean() {
    let findings = check(&Copy::new());
    assert!(findings.is_empty(), "{findings:?}");
}

// --- order ---------------------------------------------------------------------------------

#[test]
fn a_step_moved_before_its_predecessor_is_an_order_failure() {
    let c = Copy::new();
    // Health waits for AI instead of Registry Bootstrap: both could run at once.
    c.edit(MAIN, "  dependsOn: [\n    registry\n  ]\n", "  dependsOn: [\n    ai\n  ]\n");
    assert_finds(&check(&c), rule::ORDER, MAIN, &["`health` (phase 15) does not depend on `registry` (phase 14)"]);
}

#[test]
fn an_implicit_reference_counts_as_a_dependency() {
    let c = Copy::new();
    // Without the explicit edge, apps still waits for the database through databaseConfig;
    // dropping both the reference and dependsOn breaks it.
    c.edit(MAIN, "  dependsOn: [\n    runbooks\n  ]\n", "");
    assert_finds(&check(&c), rule::ORDER, MAIN, &["`database` (phase 9) does not depend on `runbooks` (phase 8)"]);
}

#[test]
fn depending_on_a_later_phase_is_an_order_failure() {
    let c = Copy::new();
    c.edit(MAIN, "  dependsOn: [\n    runbooks\n  ]\n", "  dependsOn: [\n    runbooks\n    airbyte\n  ]\n");
    assert_finds(&check(&c), rule::ORDER, MAIN, &["`database` (phase 9) depends on `airbyte` (phase 11)"]);
}

#[test]
fn a_reordered_plan_is_an_order_failure() {
    // The binary's order is the source: swapping two phases there breaks the template.
    let mut plan: Vec<Phase> = common::plan();
    let (a, b) =
        (plan.iter().position(|p| p.id == "runbooks").unwrap(), plan.iter().position(|p| p.id == "database").unwrap());
    plan.swap(a, b);
    let findings = Copy::new().check(&plan);
    assert_finds(&findings, rule::ORDER, MAIN, &["`runbooks`", "does not depend on `database`"]);
}

#[test]
fn a_resource_outside_the_phase_modules_is_an_order_failure() {
    let c = Copy::new();
    c.edit(
        MAIN,
        "// 1. Prereqs and Identity\n",
        "resource stray 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {\n  name: 'x'\n  location: location\n}\n\n// 1. Prereqs and Identity\n",
    );
    assert_finds(&check(&c), rule::ORDER, MAIN, &["`stray` is not a phase module"]);
}

#[test]
fn a_step_that_does_not_wait_for_its_resources_is_an_order_failure() {
    let c = Copy::new();
    c.edit(
        "modules/database.bicep",
        "  dependsOn: [\n    serverEndpoint\n    serverDiagnostics\n  ]\n",
        "  dependsOn: [\n    serverDiagnostics\n  ]\n",
    );
    assert_finds(
        &check(&c),
        rule::ORDER,
        "modules/database.bicep",
        &["step `step` does not depend on `serverEndpoint`"],
    );
}

// --- steps ---------------------------------------------------------------------------------

#[test]
fn a_dropped_required_key_is_a_step_config_failure() {
    let c = Copy::new();
    c.edit(MAIN, "  VIBEDATA_IMAGES: join(images, ',')\n", "");
    assert_finds(&check(&c), rule::STEP_CONFIG, MAIN, &["step `artifacts` does not pass VIBEDATA_IMAGES"]);
}

#[test]
fn a_key_dropped_inside_a_mixed_module_is_a_step_config_failure() {
    let c = Copy::new();
    c.edit("modules/database.bicep", "  VIBEDATA_POSTGRES_USER: entraAdmin.properties.principalName\n", "");
    assert_finds(
        &check(&c),
        rule::STEP_CONFIG,
        "modules/database.bicep",
        &["step `database` does not pass VIBEDATA_POSTGRES_USER"],
    );
}

#[test]
fn a_key_the_plan_adds_fails_until_infra_passes_it() {
    // When a phase comes to require a new key, the template must follow.
    let mut plan = common::plan();
    plan.iter_mut().find(|p| p.id == "airbyte").unwrap().required_config.push("VIBEDATA_AIRBYTE_FUTURE_KEY".into());
    let findings = Copy::new().check(&plan);
    assert_finds(
        &findings,
        rule::STEP_CONFIG,
        "modules/airbyte.bicep",
        &["step `airbyte` does not pass VIBEDATA_AIRBYTE_FUTURE_KEY"],
    );
}

#[test]
fn an_unknown_phase_is_a_step_phase_failure() {
    let c = Copy::new();
    c.edit(MAIN, "    phase: 'registry'\n", "    phase: 'registery'\n");
    assert_finds(
        &check(&c),
        rule::STEP_PHASE,
        MAIN,
        &["step `registry` runs `registery`, which the binary does not know"],
    );
}

#[test]
fn a_step_in_the_wrong_phase_module_is_a_step_phase_failure() {
    let c = Copy::new();
    c.edit(MAIN, "    phase: 'health'\n", "    phase: 'registry'\n");
    assert_finds(&check(&c), rule::STEP_PHASE, MAIN, &["step `registry` is run inside phase module `health`"]);
}

#[test]
fn a_phase_without_its_step_is_a_step_phase_failure() {
    let c = Copy::new();
    c.edit("modules/ai.bicep", "module step 'bootstrap-step.bicep'", "module step 'ai-step.bicep'");
    assert_finds(
        &check(&c),
        rule::STEP_PHASE,
        MAIN,
        &["phase `ai` runs `run ai`, but its module calls no bootstrap-step.bicep"],
    );
}

#[test]
fn an_old_az_cli_image_is_a_step_script_failure() {
    let c = Copy::new();
    c.edit("modules/bootstrap-step.bicep", "var azCliVersion = '2.84.0'", "var azCliVersion = '2.63.0'");
    assert_finds(
        &check(&c),
        rule::STEP_SCRIPT,
        "modules/bootstrap-step.bicep",
        &["azCliVersion 2.63.0 is older than 2.65.0", "musl"],
    );
}

#[test]
fn a_force_update_tag_from_the_clock_is_a_step_script_failure() {
    let c = Copy::new();
    c.edit(
        "modules/bootstrap-step.bicep",
        "var forceUpdateTag = uniqueString(phase, string(config), platform.binarySha256, string(retryAttempt))",
        "var forceUpdateTag = uniqueString(phase, utcNow())",
    );
    let findings = check(&c);
    assert_finds(&findings, rule::STEP_SCRIPT, "modules/bootstrap-step.bicep", &["must not use utcNow()"]);
    assert_finds(
        &findings,
        rule::STEP_SCRIPT,
        "modules/bootstrap-step.bicep",
        &["not derived from the binary's digest"],
    );
    assert_finds(&findings, rule::STEP_SCRIPT, "modules/bootstrap-step.bicep", &["not derived from retryAttempt"]);
}

#[test]
fn a_shared_container_group_is_a_step_script_failure() {
    let c = Copy::new();
    c.edit(
        "modules/bootstrap-step.bicep",
        "containerGroupName: 'bootstrap-${phase}-${uniqueString(resourceGroup().id)}'",
        "containerGroupName: 'bootstrap-${uniqueString(resourceGroup().id)}'",
    );
    assert_finds(
        &check(&c),
        rule::STEP_SCRIPT,
        "modules/bootstrap-step.bicep",
        &["containerGroupName must be derived from the phase"],
    );
}

// --- the RFC's rules -----------------------------------------------------------------------

#[test]
fn opened_public_access_is_a_public_network_access_failure() {
    let c = Copy::new();
    c.edit("modules/key-vault.bicep", "publicNetworkAccess: 'Disabled'", "publicNetworkAccess: 'Enabled'");
    c.edit("modules/ai.bicep", "publicNetworkAccess: 'disabled'", "publicNetworkAccess: 'enabled'");
    c.edit("modules/foundation.bicep", "    publicNetworkAccess: false\n", "    publicNetworkAccess: true\n");
    let findings = check(&c);
    assert_finds(&findings, rule::PUBLIC_NETWORK_ACCESS, "modules/key-vault.bicep", &["`vault`", "is 'Enabled'"]);
    assert_finds(&findings, rule::PUBLIC_NETWORK_ACCESS, "modules/ai.bicep", &["`search`", "is 'enabled'"]);
    assert_finds(&findings, rule::PUBLIC_NETWORK_ACCESS, "modules/foundation.bicep", &["`automation`", "is true"]);
}

#[test]
fn a_public_cluster_is_a_public_network_access_failure() {
    let c = Copy::new();
    c.edit("modules/airbyte.bicep", "enablePrivateCluster: true", "enablePrivateCluster: false");
    assert_finds(
        &check(&c),
        rule::PUBLIC_NETWORK_ACCESS,
        "modules/airbyte.bicep",
        &["`cluster`", "enablePrivateCluster"],
    );
}

#[test]
fn an_excepted_resource_still_needs_what_replaces_the_rule() {
    let c = Copy::new();
    c.edit(
        "modules/foundation.bicep",
        "    networkAcls: {\n      defaultAction: 'Deny'\n      bypass: 'AzureServices'\n      virtualNetworkRules",
        "    networkAcls: {\n      defaultAction: 'Allow'\n      bypass: 'AzureServices'\n      virtualNetworkRules",
    );
    assert_finds(
        &check(&c),
        rule::PUBLIC_NETWORK_ACCESS,
        "modules/foundation.bicep",
        &["`scriptsStorage` is excepted", "networkAcls.defaultAction"],
    );
}

#[test]
fn a_dropped_private_endpoint_is_a_private_endpoint_failure() {
    let c = Copy::new();
    c.edit("modules/ai.bicep", "module searchEndpoint 'private-endpoint.bicep'", "module searchEndpoint 'other.bicep'");
    assert_finds(
        &check(&c),
        rule::PRIVATE_ENDPOINT,
        "modules/ai.bicep",
        &["`search` (Microsoft.Search/searchServices) has no private endpoint"],
    );
}

#[test]
fn an_endpoint_without_zones_is_a_dns_zone_group_failure() {
    let c = Copy::new();
    c.edit("modules/key-vault.bicep", "    zoneIds: [\n      vaultZoneId\n    ]\n", "    zoneIds: []\n");
    assert_finds(
        &check(&c),
        rule::DNS_ZONE_GROUP,
        "modules/key-vault.bicep",
        &["the private endpoint of `vault` has no DNS zone group"],
    );
}

#[test]
fn an_endpoint_module_without_a_zone_group_is_a_dns_zone_group_failure() {
    let c = Copy::new();
    c.edit("modules/private-endpoint.bicep", "  parent: endpoint\n", "  parent: other\n");
    let findings = check(&c);
    assert_finds(&findings, rule::DNS_ZONE_GROUP, "modules/foundation.bicep", &["`registry`"]);
    assert_finds(&findings, rule::DNS_ZONE_GROUP, "modules/database.bicep", &["`server`"]);
}

#[test]
fn a_dropped_diagnostic_setting_is_a_diagnostic_settings_failure() {
    let c = Copy::new();
    c.edit("modules/apps.bicep", "  scope: api\n", "  scope: portal\n");
    assert_finds(
        &check(&c),
        rule::DIAGNOSTIC_SETTINGS,
        "modules/apps.bicep",
        &["`api` (Microsoft.Web/sites) has no diagnostic setting"],
    );
}

#[test]
fn a_key_vault_without_purge_protection_is_a_key_vault_recovery_failure() {
    let c = Copy::new();
    c.edit("modules/key-vault.bicep", "    enablePurgeProtection: true\n", "");
    c.edit("modules/key-vault.bicep", "enableSoftDelete: true", "enableSoftDelete: false");
    let findings = check(&c);
    assert_finds(
        &findings,
        rule::KEY_VAULT_RECOVERY,
        "modules/key-vault.bicep",
        &["enablePurgeProtection = true, but it is not set"],
    );
    assert_finds(
        &findings,
        rule::KEY_VAULT_RECOVERY,
        "modules/key-vault.bicep",
        &["enableSoftDelete = true, but it is false"],
    );
}

#[test]
fn a_role_assignment_without_principal_type_fails() {
    let c = Copy::new();
    c.edit(
        "modules/identity.bicep",
        "PrincipalNotFound.\n    principalType: 'ServicePrincipal'\n",
        "PrincipalNotFound.\n",
    );
    c.edit("modules/identity.bicep", "name: guid(resourceGroup().id, identity.id, readerRoleId)", "name: 'reader'");
    let findings = check(&c);
    assert_finds(
        &findings,
        rule::ROLE_ASSIGNMENT,
        "modules/identity.bicep",
        &["`groupReader` does not name its principalType"],
    );
    assert_finds(
        &findings,
        rule::ROLE_ASSIGNMENT,
        "modules/identity.bicep",
        &["`groupReader` must be named with guid("],
    );
}

#[test]
fn a_plain_secret_parameter_is_a_no_plain_secret_failure() {
    let c = Copy::new();
    c.edit(MAIN, "@secure()\nparam publisherPullCredential string", "param publisherPullCredential string");
    assert_finds(
        &check(&c),
        rule::NO_PLAIN_SECRET,
        MAIN,
        &["parameter `publisherPullCredential` holds a secret but is not @secure()"],
    );
}

#[test]
fn a_secret_output_is_a_no_plain_secret_failure() {
    let c = Copy::new();
    c.edit(
        "modules/foundation.bicep",
        "output storageAccountName string = storage.name\n",
        "output storageAccountName string = storage.name\noutput scriptsKey string = scriptsStorage.listKeys().keys[0].value\n",
    );
    assert_finds(
        &check(&c),
        rule::NO_PLAIN_SECRET,
        "modules/foundation.bicep",
        &["output `scriptsKey` returns a secret"],
    );
}

#[test]
fn a_secret_passed_to_a_plain_parameter_is_a_no_plain_secret_failure() {
    let c = Copy::new();
    c.edit("modules/apps.bicep", "@secure()\nparam functionsPackageUri string", "param functionsPackageUri string");
    assert_finds(
        &check(&c),
        rule::NO_PLAIN_SECRET,
        MAIN,
        &["passes the secret `_artifactsLocationSasToken` to parameter `functionsPackageUri`"],
    );
}

#[test]
fn a_key_vault_secret_from_a_plain_parameter_is_a_no_plain_secret_failure() {
    let c = Copy::new();
    c.edit(
        "modules/key-vault.bicep",
        "@secure()\nparam publisherPullCredential string",
        "param publisherPullCredential string",
    );
    assert_finds(
        &check(&c),
        rule::NO_PLAIN_SECRET,
        "modules/key-vault.bicep",
        &["secret `pullCredential` takes its value from `publisherPullCredential`"],
    );
}

#[test]
fn an_unclassified_resource_type_is_a_rules_table_failure() {
    let c = Copy::new();
    c.edit(
        "modules/foundation.bicep",
        "resource blobService ",
        "resource cache 'Microsoft.Cache/redis@2024-03-01' = {\n  name: 'redis-${baseName}'\n  location: location\n}\n\nresource blobService ",
    );
    assert_finds(
        &check(&c),
        rule::RULES_TABLE,
        "modules/foundation.bicep",
        &["`cache` is a Microsoft.Cache/redis, which has no row"],
    );
}

#[test]
fn object_spread_syntax_is_a_parse_failure() {
    let c = Copy::new();
    c.edit(MAIN, "var automationConfig = {\n", "var automationConfig = {\n  ...artifactsConfig\n");
    assert_finds(&check(&c), rule::PARSE, MAIN, &["unexpected `...artifactsConfig`"]);
}

// --- the UI definition ---------------------------------------------------------------------

const UI: &str = "createUiDefinition.json";

#[test]
fn a_parameter_without_default_needs_a_ui_output() {
    let c = Copy::new();
    c.edit(UI, "      \"namePrefix\": \"[basics('namePrefix')]\",\n", "");
    assert_finds(
        &check(&c),
        rule::UI_DEFINITION,
        UI,
        &["parameter `namePrefix` has no default and no output produces it"],
    );
}

#[test]
fn a_secure_parameter_needs_a_password_box() {
    let c = Copy::new();
    c.edit(UI, "\"type\": \"Microsoft.Common.PasswordBox\"", "\"type\": \"Microsoft.Common.TextBox\"");
    assert_finds(
        &check(&c),
        rule::UI_DEFINITION,
        UI,
        &["output `publisherPullCredential` is String, but main.bicep's parameter is SecureString"],
    );
}

#[test]
fn an_output_for_no_parameter_is_a_ui_definition_failure() {
    let c = Copy::new();
    c.edit(
        UI,
        "\"location\": \"[location()]\",",
        "\"location\": \"[location()]\",\n      \"region\": \"[location()]\",",
    );
    assert_finds(&check(&c), rule::UI_DEFINITION, UI, &["output `region` names no parameter of main.bicep"]);
}

#[test]
fn a_key_missing_from_the_function_app_is_a_step_config_failure() {
    let c = Copy::new();
    c.edit(
        MAIN,
        "vibedataConfig: union(commonConfig, artifactsConfig, automationConfig, databaseConfig, airbyteConfig, aiConfig, healthConfig)",
        "vibedataConfig: union(commonConfig, artifactsConfig, automationConfig, databaseConfig, airbyteConfig, aiConfig)",
    );
    assert_finds(
        &check(&c),
        rule::STEP_CONFIG,
        MAIN,
        &["the function app's settings (vibedataConfig) lack VIBEDATA_HEALTH_CANARY_SECRET"],
    );
}

// --- role coverage ---------------------------------------------------------------------------

const FOUNDATION: &str = "modules/foundation.bicep";

/// The block of one role assignment in foundation.bicep, by symbol.
fn assignment_block(symbol: &str) -> String {
    let text = std::fs::read_to_string(common::infra_root().join(FOUNDATION)).unwrap();
    let start = text.find(&format!("resource {symbol} ")).unwrap_or_else(|| panic!("{symbol} in {FOUNDATION}"));
    let end = text[start..].find("\n}\n").unwrap() + start + 3;
    text[start..end].to_owned()
}

#[test]
fn removing_the_registry_importer_assignment_leaves_import_uncovered() {
    let c = Copy::new();
    c.edit(FOUNDATION, &assignment_block("registryImporter"), "");
    assert_finds(
        &check(&c),
        rule::ROLE_COVERAGE,
        MAIN,
        &["`Microsoft.ContainerRegistry/registries/importImage/action` of phase artifacts on VIBEDATA_ACR_NAME"],
    );
}

#[test]
fn removing_the_automation_assignment_leaves_publish_uncovered() {
    let c = Copy::new();
    c.edit(FOUNDATION, &assignment_block("automationContributor"), "");
    assert_finds(&check(&c), rule::ROLE_COVERAGE, MAIN, &["runbooks/publish/action` of phase runbooks"]);
}

#[test]
fn removing_the_blob_assignment_leaves_the_ledger_uncovered_in_every_phase() {
    let c = Copy::new();
    c.edit(FOUNDATION, &assignment_block("blobContributor"), "");
    let findings = check(&c);
    for phase in ["artifacts", "runbooks", "database", "airbyte", "registry", "health", "ai"] {
        assert_finds(
            &findings,
            rule::ROLE_COVERAGE,
            MAIN,
            &["containers/blobs/write`", &format!("phase {phase} on VIBEDATA_LEDGER_CONTAINER")],
        );
    }
}

#[test]
fn removing_the_vault_assignment_leaves_secrets_uncovered() {
    let c = Copy::new();
    let kv = std::fs::read_to_string(common::infra_root().join("modules/key-vault.bicep")).unwrap();
    let start = kv.find("resource secretsOfficer ").unwrap();
    let end = kv[start..].find("\n}\n").unwrap() + start + 3;
    c.edit("modules/key-vault.bicep", &kv[start..end], "");
    let findings = check(&c);
    assert_finds(
        &findings,
        rule::ROLE_COVERAGE,
        MAIN,
        &["`Microsoft.KeyVault/vaults/secrets/setSecret/action` of phase airbyte"],
    );
    assert_finds(&findings, rule::ROLE_COVERAGE, MAIN, &["secrets/getSecret/action` of phase database"]);
}

#[test]
fn an_action_role_never_grants_data_actions() {
    // Contributor instead of Secrets Officer: `*` holds every action and no data action.
    let c = Copy::new();
    c.edit(
        "modules/key-vault.bicep",
        "var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'",
        "var secretsOfficerRoleId = 'b24988ac-6180-42a0-ab88-20f7382dd24c'",
    );
    assert_finds(
        &check(&c),
        rule::ROLE_COVERAGE,
        MAIN,
        &["dataAction `Microsoft.KeyVault/vaults/secrets/getSecret/action`"],
    );
    let t = vibedata_infra_verify::Template::load(c.path()).unwrap();
    let (_, warnings) = vibedata_infra_verify::coverage::check(&t, &common::plan());
    assert!(warnings.iter().any(|w| w.contains("`secretsOfficer` assigns Contributor")), "{warnings:?}");
}

#[test]
fn a_custom_role_is_read_action_by_action() {
    // The run-command role without runCommand/action, for every phase that runs a command.
    // (Without commandResults/read nothing fails: Reader's `*/read` on the group holds it.)
    let c = Copy::new();
    c.edit("modules/airbyte.bicep", "          'Microsoft.ContainerService/managedClusters/runCommand/action'\n", "");
    let findings = check(&c);
    for phase in ["airbyte", "registry", "health", "ai"] {
        assert_finds(
            &findings,
            rule::ROLE_COVERAGE,
            MAIN,
            &["managedClusters/runCommand/action`", &format!("phase {phase} on VIBEDATA_AKS_CLUSTER")],
        );
    }
}

#[test]
fn a_role_on_the_wrong_resource_does_not_cover() {
    // The importer role on the Automation account instead of the registry.
    let c = Copy::new();
    let block = assignment_block("registryImporter");
    c.edit(FOUNDATION, &block, &block.replace("scope: registry", "scope: automation"));
    assert_finds(&check(&c), rule::ROLE_COVERAGE, MAIN, &["importImage/action` of phase artifacts"]);
}

#[test]
fn removing_the_app_settings_role_leaves_discovery_uncovered() {
    let c = Copy::new();
    c.edit("modules/identity.bicep", "          'Microsoft.Web/sites/config/list/action'\n", "");
    assert_finds(
        &check(&c),
        rule::ROLE_COVERAGE,
        MAIN,
        &["`Microsoft.Web/sites/config/list/action` of phase registry"],
    );
}

#[test]
fn a_role_missing_from_the_data_file_is_a_finding() {
    let c = Copy::new();
    c.edit(
        "modules/key-vault.bicep",
        "var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'",
        "var secretsOfficerRoleId = '00000000-0000-0000-0000-000000000001'",
    );
    assert_finds(
        &check(&c),
        rule::ROLE_COVERAGE,
        "modules/key-vault.bicep",
        &["role 00000000-0000-0000-0000-000000000001 is not in"],
    );
}
