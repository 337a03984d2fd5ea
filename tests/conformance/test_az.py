"""The emulator driven by the az CLI: a second, stricter independent client, and the one platform
engineers type. Every command runs through `scripts/stack az` (a private AZURE_CONFIG_DIR under the
stack folder, the stack's cloud, its managed identity, its CA), exactly as the README shows it,
and each command's JSON is asserted, not just its exit code.

azure-cli is pinned in tests/conformance/az-requirements.txt and lives in .venv-az (scripts/setup);
without it the suite skips, saying so. `test_az_sends_only_accepted_api_versions` lists the
api-version each command sends: a newer az that sends one the emulator refuses fails there.
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from test_containerregistry import Customer, Publisher

REPO = Path(__file__).resolve().parents[2]
AZ_BIN = Path(os.environ.get("VIBEDATA_AZ_BIN", REPO / ".venv-az" / "bin" / "az"))
STACK = REPO / "scripts" / "stack"


class AzError(Exception):
    def __init__(self, args, proc):
        super().__init__(f"az {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        self.returncode = proc.returncode
        self.stderr = proc.stderr


@pytest.fixture(scope="session")
def az(stack):
    """`az(*args)` → the command's parsed JSON output (None when it prints nothing)."""
    if not AZ_BIN.exists():
        pytest.skip(f"the az CLI is not installed at {AZ_BIN} (scripts/setup installs .venv-az)")

    def run(*args, output=True):
        cmd = [str(STACK), "az", "--dir", stack["VIBEDATA_STACK_DIR"], *args, "--only-show-errors"]
        if output:
            cmd += ["-o", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise AzError(args, proc)
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    return run


@pytest.fixture(scope="session")
def inventory(stack):
    return json.loads((Path(stack["VIBEDATA_STACK_DIR"]) / "inventory.json").read_text())


@pytest.fixture(scope="session")
def rg(stack):
    return stack["VIBEDATA_RESOURCE_GROUP"]


def arm_calls(control):
    """The journal's ARM and data-plane calls (not the identity's token requests)."""
    return [e for e in control.journal() if e["api"] not in ("identity",)]


def api_version(entry):
    for part in (entry["query"] or "").split("&"):
        key, _, value = part.partition("=")
        if key == "api-version":
            return value
    return None


# ---- the cloud, the login ---------------------------------------------------------------------


def test_cloud_registers_from_metadata_endpoints(az, stack, control, tmp_path):
    """`az cloud register` without --skip-endpoint-discovery reads the stack's /metadata/endpoints."""
    env = {
        **os.environ,
        "AZURE_CONFIG_DIR": str(tmp_path),
        "REQUESTS_CA_BUNDLE": stack["VIBEDATA_CA_FILE"],
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
    }
    arm = stack["VIBEDATA_ARM_ENDPOINT"]

    def raw(*args):
        proc = subprocess.run([str(AZ_BIN), *args], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    control.clear_journal()
    raw("cloud", "register", "-n", "Probe", "--endpoint-resource-manager", arm)
    shown = json.loads(raw("cloud", "show", "-n", "Probe", "-o", "json"))
    assert shown["endpoints"]["resourceManager"] == arm  # the command line wins over the metadata
    assert shown["endpoints"]["activeDirectory"] == "https://login.microsoftonline.com"
    assert shown["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert shown["suffixes"]["keyvaultDns"] == ".vault.azure.net"
    assert shown["suffixes"]["acrLoginServerEndpoint"] == ".azurecr.io"
    metadata = [e for e in control.journal() if e["api"] == "arm.metadata"]
    assert [(e["method"], e["status"], api_version(e), e["mutating"]) for e in metadata] == [
        ("GET", 200, "2022-09-01", False)
    ]


def test_login_shows_the_stack_subscription(az, stack):
    account = az("account", "show")
    assert account["id"] == stack["VIBEDATA_SUBSCRIPTION_ID"]
    assert account["tenantId"] == stack["VIBEDATA_TENANT_ID"]
    assert account["environmentName"] == "VibedataStack"
    assert account["state"] == "Enabled"
    assert account["user"] == {
        "assignedIdentityInfo": f"MSIClient-{stack['VIBEDATA_STACK_DEPLOYER_CLIENT_ID']}",
        "name": "userAssignedIdentity",
        "type": "servicePrincipal",
    }
    assert [s["id"] for s in az("account", "list")] == [stack["VIBEDATA_SUBSCRIPTION_ID"]]


def test_the_config_stays_under_the_stack_folder(az, stack):
    az("account", "show")
    config = Path(stack["VIBEDATA_STACK_DIR"]) / "az"
    assert (config / "azureProfile.json").is_file()
    assert "VibedataStack" in (config / "clouds.config").read_text()


# ---- groups and generic resources ---------------------------------------------------------------


def test_group_show_and_list(az, stack, rg):
    group = az("group", "show", "-n", rg)
    assert group["id"] == f"/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourceGroups/{rg}"
    assert group["location"] == stack["VIBEDATA_LOCATION"]
    assert group["properties"] == {"provisioningState": "Succeeded"}
    assert rg in [g["name"] for g in az("group", "list")]


def test_resource_list_is_the_inventory(az, inventory, rg, control):
    control.clear_journal()
    listed = az("resource", "list", "-g", rg)
    assert [(r["id"], r["type"]) for r in listed] == [(r["id"], r["type"]) for r in inventory["resources"]]
    assert all(r["resourceGroup"] == rg and r["provisioningState"] for r in listed)
    pages = [e for e in arm_calls(control) if e["path"].lower().endswith("/resources")]
    assert len(pages) == -(-len(listed) // 5), "the list pages by 5"
    assert "resourceGroup%20eq%20" in pages[0]["query"]
    endpoints = az("resource", "list", "-g", rg, "--resource-type", "Microsoft.Network/privateEndpoints")
    assert sorted(r["name"] for r in endpoints) == sorted(e["name"] for e in inventory["privateEndpoints"])


def test_resource_show_picks_the_api_version_the_provider_lists(az, stack, inventory, control):
    vault = next(r for r in inventory["resources"] if r["type"] == "Microsoft.KeyVault/vaults")
    link = next(r for r in inventory["resources"] if r["type"].endswith("/virtualNetworkLinks"))
    for resource, namespace in ((vault, "Microsoft.KeyVault"), (link, "Microsoft.Network")):
        control.clear_journal()
        shown = az("resource", "show", "--ids", resource["id"])
        assert shown["id"] == resource["id"]
        assert shown["properties"], "a GET by id carries properties"
        calls = arm_calls(control)
        assert calls[0]["api"] == "arm.providers" and calls[0]["path"].endswith(f"/providers/{namespace}")
        listed = az("provider", "show", "-n", namespace)
        parent = resource["type"].split("/")[1]
        rtype = next(t for t in listed["resourceTypes"] if t["resourceType"] == parent)
        first_stable = next(v for v in rtype["apiVersions"] if "preview" not in v)
        assert api_version(calls[-1]) == first_stable
    assert vault["name"] in az("resource", "show", "--ids", vault["id"])["properties"]["vaultUri"]


# ---- ACR --------------------------------------------------------------------------------------------


def test_acr_import_copies_for_real(az, stack, ca, control, credential, emulator_config):
    publisher = Publisher(stack, ca)
    repo = f"conformance/az-{uuid.uuid4().hex[:8]}"
    digest, _ = publisher.image(repo, "v1", label="az")
    control.clear_journal()
    out = az(
        "acr", "import", "-n", stack["VIBEDATA_ACR_NAME"],
        "--source", f"{stack['VIBEDATA_PUBLISHER_REGISTRY']}/{repo}:v1",
        "--image", f"{repo}:copied",
        "--username", stack["VIBEDATA_STACK_PUBLISHER_USER"], "--password", stack["VIBEDATA_STACK_PUBLISHER_PASSWORD"],
    )
    assert out is None, "az acr import prints nothing on success"
    customer = Customer(stack, ca, emulator_config["customerRegistry"], credential)
    assert customer.manifest(repo, "copied")[0] == digest
    posts = [e for e in control.journal() if e["api"] == "acr.importImage" and e["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["mutating"] and posts[0]["status"] == 202
    entry = next(i for i in control.imports() if i["targetTags"] == [f"{repo}:copied"])
    assert entry["status"] == "Succeeded" and entry["digest"] == digest and entry["hadCredentials"]
    shown = az("acr", "show", "-n", stack["VIBEDATA_ACR_NAME"])
    assert shown["loginServer"] == stack["VIBEDATA_ACR_LOGIN_SERVER"]
    assert shown["networkRuleBypassOptions"] == "AzureServices"


# ---- Automation --------------------------------------------------------------------------------------


def _automation_extension(az):
    try:
        return az("extension", "show", "-n", "automation") is not None
    except AzError:
        return False


def test_automation_runbook_list_and_show(az, stack, rg):
    """`az automation` is an az extension, downloaded from an index this machine cannot reach (it
    is not on PyPI). Without it, this sends the extension's own requests (its aaz definitions:
    GET .../runbooks and .../runbooks/{name} at api-version 2023-11-01) through `az rest`, and
    `az resource show` resolves the runbook's api-version from the provider."""
    account = f"/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourceGroups/{rg}/providers/Microsoft.Automation/automationAccounts/{stack['VIBEDATA_AUTOMATION_ACCOUNT']}"
    name = f"Az-Probe-{uuid.uuid4().hex[:6]}"
    arm = stack["VIBEDATA_ARM_ENDPOINT"]
    body = json.dumps({"location": stack["VIBEDATA_LOCATION"], "properties": {"runbookType": "PowerShell", "draft": {}}})
    created = az("rest", "--method", "put", "--url", f"{arm}{account}/runbooks/{name}?api-version=2023-11-01", "--body", body)
    assert created["name"] == name and created["properties"]["state"] == "New"
    if _automation_extension(az):
        listed = az("automation", "runbook", "list", "-g", rg, "--automation-account-name", stack["VIBEDATA_AUTOMATION_ACCOUNT"])
        shown = az("automation", "runbook", "show", "-g", rg, "--automation-account-name", stack["VIBEDATA_AUTOMATION_ACCOUNT"], "-n", name)
    else:
        pages, url = [], f"{arm}{account}/runbooks?api-version=2023-11-01"
        while url:
            page = az("rest", "--method", "get", "--url", url)
            pages.extend(page["value"])
            url = page.get("nextLink")
        listed = pages
        shown = az("rest", "--method", "get", "--url", f"{arm}{account}/runbooks/{name}?api-version=2023-11-01")
    assert name in [r["name"] for r in listed]
    assert shown["id"] == f"{account}/runbooks/{name}"
    assert shown["properties"]["runbookType"] == "PowerShell"
    generic = az("resource", "show", "--ids", f"{account}/runbooks/{name}")
    assert generic["properties"]["state"] == "New"
    az("rest", "--method", "delete", "--url", f"{arm}{account}/runbooks/{name}?api-version=2023-11-01")


# ---- Key Vault --------------------------------------------------------------------------------------


def test_keyvault_secret_set_show_list_backup_restore(az, stack, control, tmp_path):
    vault = stack["VIBEDATA_KEY_VAULT_NAME"]
    name = f"az-{uuid.uuid4().hex[:8]}"
    set_ = az("keyvault", "secret", "set", "--vault-name", vault, "-n", name, "--value", "hello")
    assert set_["name"] == name and set_["value"] == "hello"
    assert set_["id"].startswith(f"https://{vault}.vault.azure.net/secrets/{name}/")
    shown = az("keyvault", "secret", "show", "--vault-name", vault, "-n", name)
    assert shown["value"] == "hello" and shown["id"] == set_["id"] and shown["attributes"]["enabled"] is True
    assert shown == az("keyvault", "secret", "show", "--id", set_["id"])
    listed = az("keyvault", "secret", "list", "--vault-name", vault)
    assert {"health-canary", name} <= {s["name"] for s in listed}
    assert all("value" not in s for s in listed)

    control.clear_journal()
    backup = tmp_path / "secret.bak"
    assert az("keyvault", "secret", "backup", "--vault-name", vault, "-n", name, "--file", str(backup)) is None
    assert backup.stat().st_size > 0
    az("keyvault", "secret", "delete", "--vault-name", vault, "-n", name)
    az("keyvault", "secret", "purge", "--vault-name", vault, "-n", name, output=False)
    restored = az("keyvault", "secret", "restore", "--vault-name", vault, "--file", str(backup))
    assert restored["id"] == set_["id"], "a restore keeps the version ids"
    assert az("keyvault", "secret", "show", "--vault-name", vault, "-n", name)["value"] == "hello"
    calls = {(e["method"], e["path"].rsplit("/", 1)[-1]): e for e in control.journal() if e["api"] == "keyvault" and e["status"] == 200}
    assert calls[("POST", "backup")]["mutating"] is False
    assert calls[("POST", "restore")]["mutating"] is True
    with pytest.raises(AzError) as err:
        az("keyvault", "secret", "restore", "--vault-name", vault, "--file", str(backup))
    assert "already exists" in err.value.stderr


# ---- Network --------------------------------------------------------------------------------------


def test_private_endpoint_list_and_show(az, inventory, rg):
    listed = az("network", "private-endpoint", "list", "-g", rg)
    assert sorted(p["name"] for p in listed) == sorted(e["name"] for e in inventory["privateEndpoints"])
    for expected in inventory["privateEndpoints"]:
        pe = az("network", "private-endpoint", "show", "-g", rg, "-n", expected["name"])
        connection = pe["privateLinkServiceConnections"][0]
        assert connection["privateLinkServiceId"] == expected["targetResourceId"]
        assert connection["groupIds"] == expected["groupIds"]
        if expected["dnsSource"] == "customDnsConfigs":
            assert sorted(c["fqdn"] for c in pe["customDnsConfigs"]) == sorted(expected["fqdns"])
        else:
            assert pe["customDnsConfigs"] == []
        break


def test_private_endpoint_zone_group(az, inventory, rg):
    pe = next(e for e in inventory["privateEndpoints"] if e["dnsSource"] == "zoneGroup")
    groups = az("network", "private-endpoint", "dns-zone-group", "list", "-g", rg, "--endpoint-name", pe["name"])
    fqdns = [r["fqdn"] for g in groups for c in g["privateDnsZoneConfigs"] for r in c["recordSets"]]
    assert sorted(fqdns) == sorted(pe["fqdns"])


# ---- Deployments -----------------------------------------------------------------------------------


TEMPLATE = """{
  // comments and trailing commas are fine: ARM reads JSONC, and az sends the file's text as it is
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "greeting": {"type": "string"},
    "token": {"type": "securestring", "defaultValue": ""},
  },
  "resources": [],
  "outputs": {"answer": {"type": "int", "value": 42}, "echo": {"type": "string", "value": "[parameters('greeting')]"}},
}
"""


def test_deployment_group_create(az, rg, tmp_path, control, unique):
    template = tmp_path / "main.json"
    template.write_text(TEMPLATE)
    control.clear_journal()
    name = f"az-dep-{unique}"
    dep = az("deployment", "group", "create", "-g", rg, "-n", name, "--template-file", str(template),
             "--parameters", "greeting=hello", "token=hush")
    assert dep["name"] == name and dep["resourceGroup"] == rg
    assert dep["properties"]["provisioningState"] == "Succeeded"
    assert dep["properties"]["outputs"] == {"answer": {"type": "int", "value": 42}}, "expressions are not evaluated"
    assert dep["properties"]["parameters"]["greeting"] == {"type": "String", "value": "hello"}
    assert dep["properties"]["parameters"]["token"] == {"type": "SecureString"}
    kinds = [(e["method"], e["path"].rsplit("/", 1)[-1], e["mutating"]) for e in control.journal() if e["api"] == "arm.deployments"]
    assert kinds[:2] == [("POST", "validate", False), ("PUT", name, True)]
    assert name in [d["name"] for d in az("deployment", "group", "list", "-g", rg)]


def test_deployment_group_validate_refuses_a_bad_template(az, rg, tmp_path, unique):
    template = tmp_path / "bad.json"
    template.write_text(json.dumps({"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {}}))
    with pytest.raises(AzError) as err:
        az("deployment", "group", "validate", "-g", rg, "-n", f"az-bad-{unique}", "--template-file", str(template))
    assert "InvalidTemplate" in err.value.stderr and "'resources'" in err.value.stderr


# ---- api-versions -----------------------------------------------------------------------------------

# What azure-cli (tests/conformance/az-requirements.txt) sends for each emulated operation: the
# commands a platform engineer reaches for, one per emulated resource type. A newer az that sends
# a version the emulator refuses fails here (the command's 400 says which); one that sends a new
# version the emulator accepts fails too, on the table, so this list stays what az really sends.
def _commands(s):
    rg, n = s["rg"], s["names"]
    return {
        "group show": (["group", "show", "-n", rg], {"arm.resourceGroups": {"2024-11-01"}}),
        "resource list": (["resource", "list", "-g", rg], {"arm.resourceGroups": {"2024-11-01"}, "arm.resources": {"2024-11-01"}}),
        "account list-locations": (["account", "list-locations"], {"arm.subscriptions": {"2022-12-01"}}),
        "provider show": (["provider", "show", "-n", "Microsoft.Network"], {"arm.providers": {"2024-11-01"}}),
        "identity show": (["identity", "show", "-g", rg, "-n", n["identity"]], {"arm.resources": {"2025-05-31-preview"}}),
        "log-analytics show": (["monitor", "log-analytics", "workspace", "show", "-g", rg, "-n", n["logAnalytics"]], {"arm.resources": {"2025-02-01"}}),
        "vnet show": (["network", "vnet", "show", "-g", rg, "-n", n["vnet"]], {"arm.resources": {"2025-07-01"}}),
        "subnet list": (["network", "vnet", "subnet", "list", "-g", rg, "--vnet-name", n["vnet"]], {"arm.resources": {"2024-07-01"}}),
        "nsg show": (["network", "nsg", "show", "-g", rg, "-n", f"nsg-{s['base']}-pe"], {"arm.resources": {"2022-01-01"}}),
        "private-dns zone list": (["network", "private-dns", "zone", "list", "-g", rg], {"arm.resources": {"2018-09-01"}}),
        "private-dns link list": (["network", "private-dns", "link", "vnet", "list", "-g", rg, "-z", "privatelink.azurecr.io"], {"arm.resources": {"2024-06-01"}}),
        "private-endpoint list": (["network", "private-endpoint", "list", "-g", rg], {"arm.resources": {"2026-01-01"}}),
        "private-endpoint show": (["network", "private-endpoint", "show", "-g", rg, "-n", s["pe"]], {"arm.resources": {"2026-01-01"}}),
        "dns-zone-group list": (["network", "private-endpoint", "dns-zone-group", "list", "-g", rg, "--endpoint-name", s["pe"]], {"arm.resources": {"2022-01-01"}}),
        "nic show": (["network", "nic", "show", "-g", rg, "-n", f"nic-{s['pe']}"], {"arm.resources": {"2023-11-01"}}),
        "public-ip show": (["network", "public-ip", "show", "-g", rg, "-n", n["appGatewayIp"]], {"arm.resources": {"2025-09-01"}}),
        "application-gateway show": (["network", "application-gateway", "show", "-g", rg, "-n", n["appGateway"]], {"arm.resources": {"2025-07-01"}}),
        "waf-policy show": (["network", "application-gateway", "waf-policy", "show", "-g", rg, "-n", n["wafPolicy"]], {"arm.resources": {"2025-03-01"}}),
        "keyvault show": (["keyvault", "show", "-g", rg, "-n", n["keyVault"]], {"arm.resources": {"2026-02-01"}}),
        "storage account show": (["storage", "account", "show", "-g", rg, "-n", n["storageAccount"]], {"arm.resources": {"2025-08-01"}}),
        "acr show": (["acr", "show", "-g", rg, "-n", n["registry"]], {"acr.registries": {"2026-09-01-preview"}}),
        "postgres show": (["postgres", "flexible-server", "show", "-g", rg, "-n", n["postgres"]], {"arm.resources": {"2026-04-01-preview"}}),
        "appservice plan show": (["appservice", "plan", "show", "-g", rg, "-n", n["appServicePlan"]], {"arm.resources": {"2025-05-01"}}),
        "appsettings list": (["webapp", "config", "appsettings", "list", "-g", rg, "-n", n["webApi"]], {"arm.resources": {"2025-05-01", "2023-12-01"}}),
        "aks show": (["aks", "show", "-g", rg, "-n", n["aks"]], {"aks.managedClusters": {"2026-06-01"}}),
        "search service show": (["search", "service", "show", "-g", rg, "-n", n["search"]], {"arm.resources": {"2026-03-01-preview"}}),
        "cognitiveservices show": (["cognitiveservices", "account", "show", "-g", rg, "-n", n["foundry"]], {"arm.resources": {"2026-05-15-preview"}}),
        "keyvault secret show": (["keyvault", "secret", "show", "--vault-name", n["keyVault"], "-n", "health-canary"], {"keyvault": {"7.4"}}),
    }


COMMANDS = list(_commands({"rg": "", "names": {k: "" for k in (
    "identity", "logAnalytics", "vnet", "appGatewayIp", "appGateway", "wafPolicy", "keyVault", "storageAccount",
    "registry", "postgres", "appServicePlan", "webApi", "aks", "search", "foundry")}, "base": "", "pe": ""}))


@pytest.mark.parametrize("label", COMMANDS)
def test_az_sends_only_accepted_api_versions(az, inventory, rg, control, label):
    names = inventory["names"]
    pe = next(e["name"] for e in inventory["privateEndpoints"] if e["dnsSource"] == "zoneGroup")
    args, expected = _commands({"rg": rg, "names": names, "base": names["vnet"].removeprefix("vnet-"), "pe": pe})[label]
    control.clear_journal()
    out = az(*args)
    assert out, f"az {' '.join(args)} printed no JSON"
    calls = arm_calls(control)
    refused = [e for e in calls if e["status"] and e["status"] >= 400 and e["status"] != 401]
    assert not refused, refused
    sent = {}
    for e in calls:
        if e["status"] == 401:  # Key Vault's first, token-less request (the challenge)
            continue
        sent.setdefault(e["api"], set()).add(api_version(e))
    assert sent == expected


# ---- AKS runCommand, the AI data planes -------------------------------------------------------


def test_aks_command_invoke(az, inventory, rg, control):
    """`az aks command invoke` end to end: the cluster GET, the clusterToken, the POST and its
    polls; the result's JSON, and a read-only command journaled `mutating: false`."""
    control.clear_journal()
    out = az("aks", "command", "invoke", "-g", rg, "-n", inventory["names"]["aks"],
             "--command", "helm status no-such-release -n nowhere; helm version --short")
    assert out["provisioningState"] == "Succeeded"
    assert out["exitCode"] == 0
    assert "Error: release: not found" in out["logs"]
    assert out["logs"].strip().endswith("v3.17.2+gcc0bbbd")
    posts = [e for e in control.journal() if e["api"] == "aks.runCommand" and e["method"] == "POST"]
    assert len(posts) == 1, posts
    assert posts[0]["mutating"] is False


def test_aks_command_invoke_failure_is_the_exit_code(az, inventory, rg):
    out = az("aks", "command", "invoke", "-g", rg, "-n", inventory["names"]["aks"], "--command", "exit 3")
    assert out["provisioningState"] == "Succeeded"
    assert out["exitCode"] == 3


def test_search_and_foundry_data_planes_through_az_rest(az, stack, control):
    """`az rest` with a data-plane audience: az fetches a token for that resource from the
    identity endpoint and each data plane accepts it."""
    control.clear_journal()
    indexes = az("rest", "--resource", "https://search.azure.com",
                 "--url", f"{stack['VIBEDATA_SEARCH_ENDPOINT']}/indexes?api-version=2025-09-01")
    assert isinstance(indexes["value"], list)
    assert indexes["@odata.context"].endswith("$metadata#indexes")
    agents = az("rest", "--resource", "https://ai.azure.com",
                "--url", f"{stack['VIBEDATA_FOUNDRY_PROJECT_ENDPOINT']}/agents?api-version=v1")
    assert isinstance(agents["data"], list)
    assert agents["has_more"] is False
    apis = {e["api"]: e["status"] for e in control.journal() if e["api"] in ("search.indexes", "foundry.agents")}
    assert apis == {"search.indexes": 200, "foundry.agents": 200}


def test_storage_account_keys_list(az, inventory, rg, control):
    """`az storage account keys list`: the POST listKeys action answers both keys (the stack's
    account is Azurite, so they are Azurite's published key), journaled as a read; an unknown
    account is ARM's ResourceNotFound."""
    control.clear_journal()
    keys = az("storage", "account", "keys", "list", "-g", rg, "-n", inventory["names"]["storageAccount"])
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
    assert all(k["permissions"].upper() == "FULL" and len(k["value"]) == 88 for k in keys)
    posts = [e for e in control.journal() if e["method"] == "POST" and e["path"].endswith("/listKeys")]
    assert len(posts) == 1 and posts[0]["mutating"] is False, posts
    with pytest.raises(AzError) as missing:
        az("storage", "account", "keys", "list", "-g", rg, "-n", "stnosuchaccount")
    assert "ResourceNotFound" in missing.value.stderr, missing.value.stderr
