"""The control API: journal and armed faults, seen through the SDK clients' own retry logic."""

import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient
from azure.mgmt.resource.resources import ResourceManagementClient


@pytest.fixture
def arm(stack, ca, credential):
    return ResourceManagementClient(
        credential, stack["VIBEDATA_SUBSCRIPTION_ID"], base_url=stack["VIBEDATA_ARM_ENDPOINT"], connection_verify=ca
    )


@pytest.fixture
def vault(stack, ca, credential):
    return SecretClient(
        vault_url=stack["VIBEDATA_KEY_VAULT_URL"], credential=credential, verify_challenge_resource=False, connection_verify=ca
    )


@pytest.fixture
def arm_token(credential):
    return credential.get_token("https://management.azure.com/.default").token


def rg_url(stack):
    return (
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}"
        f"/resourceGroups/{stack['VIBEDATA_RESOURCE_GROUP']}"
    )


def test_journal_records_service_calls_only(stack, control, arm):
    control.clear_journal()
    arm.resource_groups.get(stack["VIBEDATA_RESOURCE_GROUP"])
    control.journal()
    entries = control.journal()
    assert all(not e["path"].startswith("/_emulator") for e in entries)
    rg = [e for e in entries if e["api"] == "arm.resourceGroups"]
    assert len(rg) == 1
    entry = rg[0]
    assert entry["listener"] == "arm" and entry["method"] == "GET" and entry["status"] == 200
    assert entry["query"] == "api-version=2025-04-01"
    assert {"seq", "time", "listener", "method", "path", "query", "api", "mutating", "status"} <= set(entry)
    assert entry["mutating"] is False
    identity = [e for e in entries if e["api"] == "identity"]
    assert all(e["listener"] == "identity" for e in identity)


def test_journal_marks_mutating_calls(stack, control, arm, vault, unique):
    """`mutating` comes from the provider table: writes are marked, reads, polls and token
    requests are not, and a refused write is still a mutating call."""
    name = f"conf-mut-{unique}"
    control.clear_journal()
    arm.resource_groups.create_or_update(name, {"location": stack["VIBEDATA_LOCATION"]})
    arm.resource_groups.get(name)
    arm.resource_groups.begin_delete(name, polling_interval=0.05).result()
    vault.set_secret(f"mut-{unique}", "v")
    vault.get_secret(f"mut-{unique}")
    control.fault(api="keyvault", kind="server-error", count=1, pathContains=f"mut2-{unique}")
    with pytest.raises(HttpResponseError):
        vault.set_secret(f"mut2-{unique}", "v", retry_total=0)
    entries = control.journal()
    marked = [(e["api"], e["method"], e["mutating"]) for e in entries if name in e["path"] or unique in e["path"]]
    assert ("arm.resourceGroups", "PUT", True) in marked
    assert ("arm.resourceGroups", "GET", False) in marked
    assert ("arm.resourceGroups", "DELETE", True) in marked
    assert ("keyvault", "PUT", True) in marked
    assert ("keyvault", "GET", False) in marked
    refused = [e for e in entries if f"mut2-{unique}" in e["path"]]
    assert refused and all(e["mutating"] and e["status"] == 500 for e in refused)
    polls = [e for e in entries if e["api"] == "arm.operations"]
    assert polls and not any(e["mutating"] for e in polls)
    tokens = [e for e in entries if e["api"] in ("identity", "acr.exchange", "acr.token")]
    assert tokens and not any(e["mutating"] for e in tokens)


def test_throttle_is_retried_after_retry_after(stack, control, arm):
    control.clear_journal()
    control.fault(api="arm.resourceGroups", kind="throttle", count=2, retryAfter=1)
    started = time.monotonic()
    arm.resource_groups.get(stack["VIBEDATA_RESOURCE_GROUP"])
    assert time.monotonic() - started >= 2
    statuses = [e["status"] for e in control.journal() if e["api"] == "arm.resourceGroups"]
    assert statuses == [429, 429, 200]


def test_throttle_shape(stack, ca, control, arm_token):
    control.fault(api="*", kind="throttle", count=1, retryAfter=7)
    resp = requests.get(rg_url(stack), params={"api-version": "2025-04-01"}, headers={"Authorization": f"Bearer {arm_token}"}, verify=ca)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()["error"]["code"] == "SubscriptionRequestsThrottled"


def test_server_error_is_retried(control, vault):
    control.clear_journal()
    control.fault(api="keyvault", kind="server-error", count=1)
    assert vault.get_secret("health-canary").value == "canary-ok"
    statuses = [e["status"] for e in control.journal() if e["api"] == "keyvault"]
    assert 500 in statuses and statuses[-1] == 200


def test_reset_drops_the_connection(stack, ca, control, arm_token):
    control.clear_journal()
    control.fault(api="arm.resourceGroups", kind="reset", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(rg_url(stack), params={"api-version": "2025-04-01"}, headers={"Authorization": f"Bearer {arm_token}"}, verify=ca)
    ok = requests.get(rg_url(stack), params={"api-version": "2025-04-01"}, headers={"Authorization": f"Bearer {arm_token}"}, verify=ca)
    assert ok.status_code == 200
    assert [e["status"] for e in control.journal() if e["api"] == "arm.resourceGroups"] == [None, 200]


def test_latency(stack, ca, control):
    control.fault(api="identity", kind="latency", latencyMs=400, count=1)
    params = {"resource": "https://management.azure.com", "api-version": "2019-08-01", "client_id": stack["VIBEDATA_IDENTITY_CLIENT_ID"]}
    headers = {"X-IDENTITY-HEADER": stack["IDENTITY_HEADER"]}
    started = time.monotonic()
    assert requests.get(stack["IDENTITY_ENDPOINT"], params=params, headers=headers, verify=ca).status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    requests.get(stack["IDENTITY_ENDPOINT"], params=params, headers=headers, verify=ca)
    assert time.monotonic() - started < 0.4


def test_rbac_for_a_while(stack, control, arm, vault):
    control.fault(api="arm.resources", kind="rbac", seconds=2)
    control.fault(api="keyvault", kind="rbac", seconds=2)
    with pytest.raises(HttpResponseError) as err:
        list(arm.resources.list_by_resource_group(stack["VIBEDATA_RESOURCE_GROUP"]))
    assert err.value.status_code == 403
    assert err.value.error.code == "AuthorizationFailed"
    scope = f"/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourceGroups/{stack['VIBEDATA_RESOURCE_GROUP']}"
    # The scope is the request's path, in the client's casing (the SDK writes "resourcegroups").
    assert f"over scope '{scope.lower()}'" in err.value.error.message.lower()
    assert f"The client '{stack['VIBEDATA_IDENTITY_CLIENT_ID']}' with object id" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        vault.get_secret("health-canary")
    assert err.value.status_code == 403
    assert err.value.error.code == "Forbidden"
    assert err.value.error.innererror["code"] == "ForbiddenByRbac"
    # Other apis are unaffected, and the fault ends by itself.
    assert arm.resource_groups.get(stack["VIBEDATA_RESOURCE_GROUP"]).name
    time.sleep(2.1)
    assert list(arm.resources.list_by_resource_group(stack["VIBEDATA_RESOURCE_GROUP"]))
    assert vault.get_secret("health-canary").value == "canary-ok"
