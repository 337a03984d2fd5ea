"""The managed resource group as discovery sees it: azure-mgmt-resource lists it across pages,
azure-mgmt-network (unmodified, its default api-version and the spec's 2024-05-01) reads the
private endpoints, their zone groups and NICs; the DNS stand-in answers every private FQDN with
the registered IP; TLS with SNI = that FQDN verifies against the stack CA where the stack serves
it; the apps listener answers the components the stack does not run and fails on request.
docs/local-stack.md ("The managed resource group", "Health checks against the stack") is the
contract these check."""

import http.client
import json
import socket
import ssl
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))
import dnsq  # noqa: E402  (the stack's own DNS query helper)


@pytest.fixture(scope="module")
def inventory(stack, ca):
    resp = requests.get(f"{stack['VIBEDATA_EMULATOR_CONTROL']}/inventory", verify=ca)
    resp.raise_for_status()
    return resp.json()


@pytest.fixture
def arm(stack, ca, credential):
    return ResourceManagementClient(
        credential, stack["VIBEDATA_SUBSCRIPTION_ID"], base_url=stack["VIBEDATA_ARM_ENDPOINT"], connection_verify=ca
    )


@pytest.fixture
def network(stack, ca, credential):
    return NetworkManagementClient(
        credential, stack["VIBEDATA_SUBSCRIPTION_ID"], base_url=stack["VIBEDATA_ARM_ENDPOINT"], connection_verify=ca
    )


def _last(resource_id: str) -> str:
    return resource_id.rsplit("/", 1)[-1]


def test_list_pages_through_the_whole_inventory(arm, stack, control, inventory):
    control.clear_journal()
    listed = list(arm.resources.list_by_resource_group(stack["VIBEDATA_RESOURCE_GROUP"]))
    assert len(listed) >= 40
    assert [r.id for r in listed] == [r["id"] for r in inventory["resources"]]
    assert all(r.properties is None for r in listed)
    pages = [e for e in control.journal() if e["api"] == "arm.resources"]
    assert len(pages) == -(-len(listed) // 5) and len(pages) >= 8
    assert all("skiptoken" in e["query"] for e in pages[1:])
    types = {r.type for r in listed}
    for t in [
        "Microsoft.ManagedIdentity/userAssignedIdentities", "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Network/virtualNetworks", "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Network/privateDnsZones", "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "Microsoft.KeyVault/vaults", "Microsoft.Storage/storageAccounts", "Microsoft.ContainerRegistry/registries",
        "Microsoft.DBforPostgreSQL/flexibleServers", "Microsoft.Automation/automationAccounts",
        "Microsoft.Web/serverfarms", "Microsoft.Web/sites", "Microsoft.Network/applicationGateways",
        "Microsoft.Network/publicIPAddresses", "Microsoft.Network/ApplicationGatewayWebApplicationFirewallPolicies",
        "Microsoft.ContainerService/managedClusters", "Microsoft.Search/searchServices",
        "Microsoft.CognitiveServices/accounts", "Microsoft.Network/privateEndpoints",
        "Microsoft.Network/networkInterfaces",
    ]:
        assert t in types, t
    zones = {r.name for r in listed if r.type == "Microsoft.Network/privateDnsZones"}
    assert {"privatelink.vaultcore.azure.net", "privatelink.blob.core.windows.net", "privatelink.azurecr.io",
            "privatelink.postgres.database.azure.com", "privatelink.azure-automation.net",
            f"privatelink.{stack['VIBEDATA_LOCATION']}.azmk8s.io"} <= zones
    assert all(r.location == "global" for r in listed if r.type.startswith("Microsoft.Network/privateDnsZones"))


def test_every_resource_is_gettable_with_its_properties(arm, inventory):
    versions = {
        "Microsoft.KeyVault/vaults": "2023-07-01", "Microsoft.Storage/storageAccounts": "2023-05-01",
        "Microsoft.ContainerRegistry/registries": "2023-07-01", "Microsoft.DBforPostgreSQL/flexibleServers": "2024-08-01",
        "Microsoft.Automation/automationAccounts": "2023-11-01", "Microsoft.Web/sites": "2023-12-01",
        "Microsoft.Web/serverfarms": "2023-12-01", "Microsoft.ContainerService/managedClusters": "2024-09-01",
        "Microsoft.Search/searchServices": "2023-11-01", "Microsoft.CognitiveServices/accounts": "2024-10-01",
        "Microsoft.CognitiveServices/accounts/projects": "2025-06-01",
        "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
        "Microsoft.OperationalInsights/workspaces": "2023-09-01",
        "Microsoft.Network/privateDnsZones": "2020-06-01", "Microsoft.Network/privateDnsZones/virtualNetworkLinks": "2020-06-01",
    }
    got = {}
    for r in inventory["resources"]:
        res = arm.resources.get_by_id(r["id"], api_version=versions.get(r["type"], "2024-05-01"))
        assert res.id == r["id"] and res.properties, r["id"]
        got.setdefault(r["type"], res.properties)
    n = inventory["names"]
    assert got["Microsoft.KeyVault/vaults"]["vaultUri"] == f"https://{n['keyVault']}.vault.azure.net/"
    assert got["Microsoft.Storage/storageAccounts"]["primaryEndpoints"]["blob"] == \
        f"https://{n['storageAccount']}.blob.core.windows.net/"
    assert got["Microsoft.ContainerRegistry/registries"]["loginServer"]
    assert got["Microsoft.DBforPostgreSQL/flexibleServers"]["fullyQualifiedDomainName"] == \
        f"{n['postgres']}.postgres.database.azure.com"
    assert got["Microsoft.Web/sites"]["defaultHostName"].endswith(".azurewebsites.net")
    assert got["Microsoft.Web/sites"]["siteConfig"]["healthCheckPath"] == "/health"
    assert got["Microsoft.ContainerService/managedClusters"]["privateFQDN"].endswith(".azmk8s.io")
    assert got["Microsoft.Automation/automationAccounts"]["automationHybridServiceUrl"].startswith("https://")
    # Targets list their private endpoint connections, as the RPs do.
    assert got["Microsoft.KeyVault/vaults"]["privateEndpointConnections"][0]["properties"]["privateEndpoint"]["id"]


def _resolve(pe, groups, nic):
    """The registry's documented precedence: zone-group record sets, then customDnsConfigs,
    then the NIC's IP configurations."""
    sets = [rs for g in groups for c in g.private_dns_zone_configs for rs in c.record_sets]
    if sets:
        return "zoneGroup", [rs.fqdn for rs in sets], sorted({ip for rs in sets for ip in rs.ip_addresses})
    if pe.custom_dns_configs:
        return ("customDnsConfigs", [c.fqdn for c in pe.custom_dns_configs],
                sorted({ip for c in pe.custom_dns_configs for ip in c.ip_addresses}))
    confs = nic.ip_configurations
    return ("nic", [f for c in confs for f in c.private_link_connection_properties.fqdns],
            sorted({c.private_ip_address for c in confs}))


def test_private_endpoints_resolve_to_the_inventory(network, stack, inventory):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    pes = inventory["privateEndpoints"]
    assert len(pes) >= 13
    assert {p["dnsSource"] for p in pes} == {"zoneGroup", "customDnsConfigs", "nic"}
    for want in pes:
        pe = network.private_endpoints.get(rg, want["name"])  # the SDK's default api-version
        assert pe.provisioning_state == "Succeeded"
        conn = pe.private_link_service_connections[0]
        assert conn.private_link_service_id == want["targetResourceId"]
        assert conn.group_ids == want["groupIds"]
        assert conn.private_link_service_connection_state.status == "Approved"
        groups = list(network.private_dns_zone_groups.list(pe.name, rg))
        nic = network.network_interfaces.get(rg, _last(pe.network_interfaces[0].id))
        assert nic.private_endpoint.id == pe.id
        source, fqdns, ips = _resolve(pe, groups, nic)
        assert (source, fqdns, ips) == (want["dnsSource"], want["fqdns"], want["ipAddresses"]), want["name"]


def test_zone_group_shape_and_absence(network, stack, inventory):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    with_group = next(p for p in inventory["privateEndpoints"] if p["dnsSource"] == "zoneGroup")
    group = network.private_dns_zone_groups.get(rg, with_group["name"], "default")
    assert group.name == "default"
    assert group.id.endswith(f"/privateEndpoints/{with_group['name']}/privateDnsZoneGroups/default")
    config = group.private_dns_zone_configs[0]
    assert "/providers/Microsoft.Network/privateDnsZones/privatelink." in config.private_dns_zone_id
    assert config.record_sets[0].record_type == "A"
    assert config.record_sets[0].fqdn == with_group["fqdns"][0]
    without = next(p for p in inventory["privateEndpoints"] if p["dnsSource"] != "zoneGroup")
    assert list(network.private_dns_zone_groups.list(without["name"], rg)) == []
    with pytest.raises(ResourceNotFoundError):
        network.private_dns_zone_groups.get(rg, without["name"], "default")
    with pytest.raises(ResourceNotFoundError) as err:
        network.private_endpoints.get(rg, "pe-does-not-exist")
    assert err.value.error.code == "ResourceNotFound"


def test_spec_api_version_2024_05_01(network, stack, inventory):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    pe = inventory["privateEndpoints"][0]
    got = network.private_endpoints.get(rg, pe["name"], api_version="2024-05-01")
    assert got.subnet.id.split("/subnets/")[1]
    group = network.private_dns_zone_groups.get(rg, pe["name"], "default", api_version="2024-05-01")
    assert group.private_dns_zone_configs[0].record_sets[0].ip_addresses == pe["ipAddresses"]
    vnet = next(r for r in inventory["resources"] if r["type"] == "Microsoft.Network/virtualNetworks")
    subnet = network.subnets.get(rg, vnet["name"], got.subnet.id.rsplit("/", 1)[1])
    assert subnet.private_endpoint_network_policies == "Disabled"
    with pytest.raises(HttpResponseError) as err:
        network.private_endpoints.get(rg, pe["name"], api_version="2099-01-01")
    assert err.value.error.code == "InvalidApiVersionParameter"


def test_app_settings_keep_key_vault_references(stack, ca, credential, inventory):
    token = credential.get_token("https://management.azure.com/.default").token
    site = next(r for r in inventory["resources"] if r["name"] == inventory["names"]["webApi"])
    resp = requests.post(
        f"{stack['VIBEDATA_ARM_ENDPOINT']}{site['id']}/config/appsettings/list",
        params={"api-version": "2023-12-01"}, headers={"Authorization": f"Bearer {token}"}, verify=ca,
    )
    assert resp.status_code == 200
    settings = resp.json()["properties"]
    assert settings["VIBEDATA_DB_PASSWORD"].startswith("@Microsoft.KeyVault(SecretUri=https://")
    assert inventory["sensitiveValues"]


def test_dns_stand_in_answers_every_inventory_name(stack, inventory):
    host, port = stack["VIBEDATA_DNS_SERVER"].rsplit(":", 1)
    for record in inventory["dns"]:
        rcode, ips = dnsq.query(host, int(port), record["name"])
        assert (rcode, ips) == (0, [record["ip"]]), record["name"]
    assert dnsq.query(host, int(port), "not-in-the-inventory.vault.azure.net")[0] == 3


def test_endpoint_ports_cover_every_dns_name(stack, inventory):
    ports = dict(kv.split("=") for kv in stack["VIBEDATA_ENDPOINT_PORTS"].split(","))
    assert ports == {d["name"]: str(d["port"]) for d in inventory["dns"]}
    kv = next(p for p in inventory["privateEndpoints"] if p["groupIds"] == ["vault"])
    assert int(ports[kv["fqdns"][0]]) == int(stack["VIBEDATA_KEY_VAULT_URL"].rsplit(":", 1)[1])


def _tls_names(name: str, port: int, ca: str, postgres: bool = False) -> str:
    """TLS to 127.0.0.1:port with SNI = name, verified against the stack CA; the protocol."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        if postgres:  # SSLRequest first, as libpq does
            raw.sendall(struct.pack(">ii", 8, 80877103))
            assert raw.recv(1) == b"S"
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return tls.version()


def test_tls_verifies_with_sni_for_every_endpoint(stack, ca, inventory):
    for ep in inventory["endpoints"]:
        for name in ep["dnsNames"]:
            assert _tls_names(name, ep["port"], ca, postgres=ep["service"] == "postgres"), name


class _Loopback(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with Host and SNI = the name: what a client does after the stand-in
    DNS answered the name with the loopback address."""

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _get(host: str, port: int, path: str, ca: str):
    conn = _Loopback(host, port, timeout=5, context=ssl.create_default_context(cafile=ca))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.fixture
def apps_control(stack, ca):
    base = stack["VIBEDATA_EMULATOR_CONTROL"]
    yield lambda name, health: requests.put(f"{base}/apps/{name}", json={"health": health}, verify=ca)
    requests.delete(f"{base}/apps", verify=ca).raise_for_status()


def test_apps_listener_serves_each_component_and_fails_on_request(apps_control, ca, inventory):
    components = inventory["components"]
    assert {c["type"] for c in components} >= {
        "Microsoft.Web/sites", "Microsoft.Network/applicationGateways", "Microsoft.ContainerService/managedClusters",
        "Microsoft.Search/searchServices", "Microsoft.CognitiveServices/accounts", "Microsoft.Automation/automationAccounts",
    }
    port = next(e["port"] for e in inventory["endpoints"] if e["servedBy"] == "emulator")
    for c in components:
        host, path = c["hosts"][0], c["probePath"] or "/health"
        assert _get(host, port, path, ca) == (200, {"status": "Healthy", "host": host})
        assert apps_control(c["name"], "Unhealthy").status_code == 200
        assert _get(host, port, path, ca) == (503, {"status": "Unhealthy", "host": host})
        assert apps_control(c["name"], "Degraded").ok
        assert _get(host, port, path, ca) == (200, {"status": "Degraded", "host": host})
        assert apps_control(c["name"], "reset").ok
        with pytest.raises(ConnectionError):
            _get(host, port, path, ca)
        assert apps_control(c["name"], "tls-fail").ok
        with pytest.raises(ssl.SSLError):
            _get(host, port, path, ca)
        # Only that component's names are refused.
        other = next(o for o in components if o["name"] != c["name"])
        assert _get(other["hosts"][0], port, "/health", ca)[0] == 200
        assert apps_control(c["name"], "Healthy").ok
        assert _get(host, port, path, ca)[0] == 200
    assert apps_control("no-such-component", "Healthy").status_code == 404


def test_dns_set_changes_one_answer_until_reset(stack, inventory):
    host, port = stack["VIBEDATA_DNS_SERVER"].rsplit(":", 1)
    name = inventory["privateEndpoints"][0]["fqdns"][0]
    script = [str(REPO / "scripts" / "stack")]
    dir_args = ["--dir", stack["VIBEDATA_STACK_DIR"]]
    try:
        subprocess.run(script + ["dns-set"] + dir_args + [name, "10.99.0.1"], check=True, capture_output=True)
        assert dnsq.query(host, int(port), name) == (0, ["10.99.0.1"])
        other = inventory["dns"][-1]
        assert dnsq.query(host, int(port), other["name"]) == (0, [other["ip"]])
        subprocess.run(script + ["dns-set"] + dir_args + [name, "-"], check=True, capture_output=True)
        assert dnsq.query(host, int(port), name)[0] == 3
    finally:
        subprocess.run(script + ["dns-reset"] + dir_args, check=True, capture_output=True)
    assert dnsq.query(host, int(port), name) == (0, inventory["privateEndpoints"][0]["ipAddresses"])


def test_private_endpoint_collections_at_group_and_subscription_scope(network, stack, inventory):
    """`PrivateEndpoints_List` and `PrivateEndpoints_ListBySubscription`, with properties."""
    expected = sorted(e["privateEndpointId"] for e in inventory["privateEndpoints"])
    in_group = list(network.private_endpoints.list(stack["VIBEDATA_RESOURCE_GROUP"]))
    assert sorted(p.id for p in in_group) == expected
    assert all(p.private_link_service_connections for p in in_group), "collections carry properties"
    assert sorted(p.id for p in network.private_endpoints.list_by_subscription()) == expected
    nsgs = list(network.network_security_groups.list_all())
    assert sorted(n.name for n in nsgs) == sorted(r["name"] for r in inventory["resources"] if r["type"].endswith("/networkSecurityGroups"))
