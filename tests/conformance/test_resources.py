"""ARM through azure-mgmt-resource (resource groups, generic resources) and
azure-mgmt-resource-deployments (deployments), unmodified, with `base_url=` the emulator."""

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient

FAST = {"polling_interval": 0.05}


@pytest.fixture
def arm(stack, ca, credential):
    return ResourceManagementClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
    )


@pytest.fixture
def deployments(stack, ca, credential):
    return DeploymentsMgmtClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
    )


def test_list_resources_across_pages(arm, stack, control):
    control.clear_journal()
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    resources = list(arm.resources.list_by_resource_group(rg, top=2))
    types = {r.type for r in resources}
    assert {
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.KeyVault/vaults",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.Automation/automationAccounts",
    } <= types
    registry = next(r for r in resources if r.type == "Microsoft.ContainerRegistry/registries")
    assert registry.name == stack["VIBEDATA_ACR_NAME"]
    assert registry.id.startswith(f"/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourceGroups/")
    pages = [e for e in control.journal() if e["api"] == "arm.resources"]
    assert len(pages) == -(-len(resources) // 2)
    assert all("skiptoken" in e["query"] for e in pages[1:])
    # Default page size is small, so paging happens without $top too.
    assert len(list(arm.resources.list_by_resource_group(rg))) == len(resources)


def test_filter_by_type(arm, stack):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    vaults = list(arm.resources.list_by_resource_group(rg, filter="resourceType eq 'Microsoft.KeyVault/vaults'"))
    assert [v.type for v in vaults] == ["Microsoft.KeyVault/vaults"]


def test_registry_resource_and_network_rules(stack, ca, credential, control):
    token = credential.get_token("https://management.azure.com/.default").token
    url = (
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}"
        f"/resourceGroups/{stack['VIBEDATA_RESOURCE_GROUP']}/providers/Microsoft.ContainerRegistry"
        f"/registries/{stack['VIBEDATA_ACR_NAME']}"
    )
    get = lambda: requests.get(url, params={"api-version": "2023-07-01"}, headers={"Authorization": f"Bearer {token}"}, verify=ca)
    props = get().json()["properties"]
    assert props["loginServer"] == stack["VIBEDATA_ACR_LOGIN_SERVER"]
    assert props["publicNetworkAccess"] == "Enabled"
    try:
        control.registry_network(
            publicNetworkAccess="Disabled",
            networkRuleBypassOptions="None",
            networkRuleSet={"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "10.0.0.0/24"}]},
        )
        props = get().json()["properties"]
        assert props["publicNetworkAccess"] == "Disabled"
        assert props["networkRuleBypassOptions"] == "None"
        assert props["networkRuleSet"]["defaultAction"] == "Deny"
    finally:
        control.registry_network(
            publicNetworkAccess="Enabled",
            networkRuleBypassOptions="AzureServices",
            networkRuleSet={"defaultAction": "Allow", "ipRules": []},
        )


def test_resource_group_lifecycle_with_location_lro(arm, stack, control, unique):
    name = f"conf-RG-{unique}"
    created = arm.resource_groups.create_or_update(name, {"location": stack["VIBEDATA_LOCATION"], "tags": {"t": "1"}})
    assert created.name == name
    assert created.properties.provisioning_state == "Succeeded"
    # ARM paths are case-insensitive.
    assert arm.resource_groups.get(name.lower()).tags == {"t": "1"}
    assert arm.resource_groups.check_existence(name) is True

    control.clear_journal()
    arm.resource_groups.begin_delete(name, **FAST).result()
    polls = [e for e in control.journal() if e["api"] == "arm.operations"]
    assert [e["status"] for e in polls] == [202, 202, 200]
    assert arm.resource_groups.check_existence(name) is False
    with pytest.raises(ResourceNotFoundError) as err:
        arm.resource_groups.get(name)
    assert err.value.error.code == "ResourceGroupNotFound"


def _template(outputs=None):
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"fail": {"type": "bool", "defaultValue": False}, "secret": {"type": "securestring"}},
        "resources": [],
        "outputs": outputs or {},
    }


def test_deployment_with_async_operation_lro(deployments, stack, control, unique):
    control.clear_journal()
    body = {
        "properties": {
            "mode": "Incremental",
            "template": _template({"answer": {"type": "int", "value": 42}}),
            "parameters": {"fail": {"value": False}, "secret": {"value": "hush"}},
        }
    }
    result = deployments.deployments.begin_create_or_update(
        stack["VIBEDATA_RESOURCE_GROUP"], f"conf-dep-{unique}", body, **FAST
    ).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.outputs == {"answer": {"type": "int", "value": 42}}
    assert "value" not in result.properties.parameters["secret"]
    statuses = [e for e in control.journal() if e["api"] == "arm.operations"]
    assert len(statuses) == 3
    got = deployments.deployments.get(stack["VIBEDATA_RESOURCE_GROUP"], f"conf-dep-{unique}")
    assert got.properties.provisioning_state == "Succeeded"


def test_failing_deployment(deployments, stack, control, unique):
    body = {
        "properties": {
            "mode": "Incremental",
            "template": _template(),
            "parameters": {"fail": {"value": True}, "secret": {"value": "hush"}},
        }
    }
    poller = deployments.deployments.begin_create_or_update(
        stack["VIBEDATA_RESOURCE_GROUP"], f"conf-fail-{unique}", body, **FAST
    )
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert err.value.error.code == "DeploymentFailed"
    got = deployments.deployments.get(stack["VIBEDATA_RESOURCE_GROUP"], f"conf-fail-{unique}")
    assert got.properties.provisioning_state == "Failed"
    assert got.properties.error.code == "DeploymentFailed"


def test_invalid_api_version(stack, ca, credential):
    client = ResourceManagementClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
        api_version="2099-01-01",
    )
    with pytest.raises(HttpResponseError) as err:
        client.resource_groups.get(stack["VIBEDATA_RESOURCE_GROUP"])
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidApiVersionParameter"
    assert err.value.error.message.startswith("The api-version '2099-01-01' is invalid. The supported versions are '")


def test_spec_api_version_2021_04_01(stack, ca, credential):
    client = ResourceManagementClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
        api_version="2021-04-01",
    )
    assert client.resource_groups.get(stack["VIBEDATA_RESOURCE_GROUP"]).location == stack["VIBEDATA_LOCATION"]


def test_unauthenticated_request(stack, ca):
    resp = requests.get(
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourcegroups",
        params={"api-version": "2025-04-01"},
        verify=ca,
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"


def test_providers_list_exactly_the_api_versions_the_emulator_accepts(arm, stack, ca, credential):
    """`GET /subscriptions/{s}/providers/{ns}` answers from the provider table's type half, so a
    client that picks an api-version from it (as `az resource show` does) is never refused, and
    the refusal of any other version lists the same versions."""
    inventory = requests.get(f"{stack['VIBEDATA_EMULATOR_CONTROL']}/inventory", verify=ca).json()
    token = credential.get_token("https://management.azure.com/.default").token
    seen = set()
    for resource in inventory["resources"]:
        namespace, rtype = resource["type"].split("/", 1)
        if rtype in seen:
            continue
        seen.add(rtype)
        provider = arm.providers.get(namespace)
        assert provider.registration_state == "Registered"
        entry = next(t for t in provider.resource_types if t.resource_type == rtype)
        versions = entry.api_versions
        assert versions == sorted(versions, reverse=True), f"{rtype}: newest first"
        for version in {versions[0], versions[-1]}:
            got = arm.resources.get_by_id(resource["id"], api_version=version)
            assert got.id == resource["id"]
        resp = requests.get(
            f"{stack['VIBEDATA_ARM_ENDPOINT']}{resource['id']}",
            params={"api-version": "2000-01-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=ca,
        )
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "InvalidApiVersionParameter"
        assert resp.json()["error"]["message"].endswith(f"The supported versions are '{','.join(versions)}'.")
    with pytest.raises(ResourceNotFoundError):
        arm.providers.get("Microsoft.Nothing")


def test_subscription_wide_list_filters(arm, stack):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    vaults = list(arm.resources.list(filter=f"resourceGroup eq '{rg}' and resourceType eq 'Microsoft.KeyVault/vaults'"))
    assert [v.type for v in vaults] == ["Microsoft.KeyVault/vaults"]
    by_name = list(arm.resources.list(filter=f"substringof('{vaults[0].name[:6]}', name)"))
    assert vaults[0].id in [r.id for r in by_name]
    with pytest.raises(HttpResponseError) as err:
        list(arm.resources.list(filter="provisioningState eq 'Succeeded'"))
    assert err.value.status_code == 400 and err.value.error.code == "InvalidFilterInQueryString"
