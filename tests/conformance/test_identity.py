"""Managed identity (App Service protocol) through azure-identity's ManagedIdentityCredential."""

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError

from conftest import jwt_parts

ARM_SCOPE = "https://management.azure.com/.default"


@pytest.mark.parametrize("identity", ["VIBEDATA_IDENTITY_CLIENT_ID", "VIBEDATA_STACK_DEPLOYER_CLIENT_ID"])
def test_token_for_the_configured_identity(stack, control, identity):
    from azure.identity import ManagedIdentityCredential

    # The emulator hands out the cached token until 5 minutes before expiry, and earlier suites
    # (the az one takes minutes) may have made it: start from a freshly issued one.
    control.expire_tokens()
    token = ManagedIdentityCredential(client_id=stack[identity]).get_token(ARM_SCOPE)
    header, claims = jwt_parts(token.token)
    assert header["alg"] in ("RS256", "ES256")
    # The audience is the resource without a trailing slash (Azurite insists on that form).
    assert claims["aud"] == "https://management.azure.com"
    assert claims["iss"] == f"https://sts.windows.net/{stack['VIBEDATA_TENANT_ID']}/"
    # Each identity's token names it: the grant table tells the two apart by these claims.
    assert claims["appid"] == stack[identity]
    assert claims["tid"] == stack["VIBEDATA_TENANT_ID"]
    for name in ("nbf", "iat", "exp"):
        assert isinstance(claims[name], int)
    assert claims["exp"] - claims["iat"] == 3600
    assert token.expires_on == claims["exp"]
    assert token.expires_on > time.time() + 3000


def test_same_token_until_near_expiry(stack):
    from azure.identity import ManagedIdentityCredential

    # Two credentials, so the SDK's own cache cannot be what makes them equal.
    a = ManagedIdentityCredential(client_id=stack["VIBEDATA_IDENTITY_CLIENT_ID"]).get_token(ARM_SCOPE)
    b = ManagedIdentityCredential(client_id=stack["VIBEDATA_IDENTITY_CLIENT_ID"]).get_token(ARM_SCOPE)
    assert a.token == b.token
    vault = ManagedIdentityCredential(client_id=stack["VIBEDATA_IDENTITY_CLIENT_ID"]).get_token(
        "https://vault.azure.net/.default"
    )
    assert vault.token != a.token
    assert jwt_parts(vault.token)[1]["aud"] == "https://vault.azure.net"


def test_expire_forces_a_new_token(stack, control):
    from azure.identity import ManagedIdentityCredential

    client_id = stack["VIBEDATA_IDENTITY_CLIENT_ID"]
    before = ManagedIdentityCredential(client_id=client_id).get_token(ARM_SCOPE)
    assert control.expire_tokens()["revoked"] >= 1
    after = ManagedIdentityCredential(client_id=client_id).get_token(ARM_SCOPE)
    assert after.token != before.token
    # The revoked token is now refused by ARM as expired.
    resp = requests.get(
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourcegroups"
        "?api-version=2021-04-01",
        headers={"Authorization": f"Bearer {before.token}"},
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_unknown_identity_is_refused(stack):
    from azure.identity import ManagedIdentityCredential

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id="00000000-0000-0000-0000-00000000dead").get_token(ARM_SCOPE)


def test_identity_header_is_required(stack):
    url = stack["IDENTITY_ENDPOINT"]
    params = {
        "resource": "https://management.azure.com",
        "api-version": "2019-08-01",
        "client_id": stack["VIBEDATA_IDENTITY_CLIENT_ID"],
    }
    assert requests.get(url, params=params).status_code == 400
    assert requests.get(url, params=params, headers={"X-IDENTITY-HEADER": "wrong"}).status_code == 401
    ok = requests.get(url, params=params, headers={"X-IDENTITY-HEADER": stack["IDENTITY_HEADER"]})
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) >= {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str)


def test_storage_token_is_accepted_by_azurite(stack, ca, credential):
    """Azurite (`--oauth basic`, HTTPS) takes our storage tokens and refuses ARM ones, which is
    what makes bearer auth against it meaningful."""
    blob = stack.get("VIBEDATA_STORAGE_BLOB_URL")
    if not blob:
        pytest.skip("the stack has no Azurite")
    try:
        requests.get(blob, verify=ca, timeout=2)
    except requests.exceptions.ConnectionError:
        pytest.skip("Azurite is not running")
    headers = {"x-ms-version": "2023-11-03"}
    storage = credential.get_token("https://storage.azure.com/.default").token
    assert jwt_parts(storage)[1]["aud"] == "https://storage.azure.com"
    resp = requests.get(
        f"{blob}?comp=list", headers={**headers, "Authorization": f"Bearer {storage}"}, verify=ca
    )
    assert resp.status_code == 200, resp.text
    arm = credential.get_token(ARM_SCOPE).token
    resp = requests.get(f"{blob}?comp=list", headers={**headers, "Authorization": f"Bearer {arm}"}, verify=ca)
    assert resp.status_code == 403
