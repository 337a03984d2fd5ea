"""The ACR token service (`/oauth2/exchange`, `/oauth2/token`) for the customer registry, and
the registry JWTs' shape as the CNCF registry checks it (local-stack-notes.md)."""

import base64
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conftest import jwt_parts

NULL_USER = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def acr(stack):
    return stack["VIBEDATA_ACR_AUTH_ENDPOINT"]


@pytest.fixture
def registry(emulator_config):
    return emulator_config["customerRegistry"]


def exchange(acr, ca, stack, registry, aad_token, **extra):
    data = {
        "grant_type": "access_token",
        "service": registry["service"],
        "tenant": stack["VIBEDATA_TENANT_ID"],
        "access_token": aad_token,
        **extra,
    }
    return requests.post(f"{acr}/oauth2/exchange", data=data, verify=ca)


def verify_registry_jwt(token, ca_file):
    """Checks what the CNCF registry checks: x5c chain to the CA, signature, claim types."""
    header, claims = jwt_parts(token)
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    with open(ca_file, "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    chain[0].verify_directly_issued_by(ca_cert)
    signed, _, sig = token.rpartition(".")
    sig = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    key = chain[0].public_key()
    if isinstance(key, rsa.RSAPublicKey):
        assert header["alg"] == "RS256"
        key.verify(sig, signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        assert header["alg"] == "ES256"
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        key.verify(encode_dss_signature(r, s), signed.encode(), ec.ECDSA(hashes.SHA256()))
    return header, claims


@pytest.mark.parametrize("scope", ["https://management.azure.com/.default", "https://containerregistry.azure.net/.default"])
def test_exchange_then_token(stack, ca, credential, acr, registry, scope):
    aad = credential.get_token(scope).token
    resp = exchange(acr, ca, stack, registry, aad)
    assert resp.status_code == 200, resp.text
    refresh = resp.json()["refresh_token"]

    resp = requests.post(
        f"{acr}/oauth2/token",
        data=[
            ("grant_type", "refresh_token"),
            ("service", registry["service"]),
            ("scope", "repository:vibedata/api:pull,push"),
            ("scope", "registry:catalog:*"),
            ("refresh_token", refresh),
        ],
        verify=ca,
    )
    assert resp.status_code == 200, resp.text
    _, claims = verify_registry_jwt(resp.json()["access_token"], ca)
    assert claims["iss"] == registry["issuer"]
    assert claims["aud"] == registry["service"]  # a single string, not a list
    assert isinstance(claims["exp"], int) and claims["exp"] > time.time()
    assert claims["access"] == [
        {"type": "repository", "name": "vibedata/api", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]


def test_exchange_accepts_multipart(stack, ca, credential, acr, registry):
    aad = credential.get_token("https://management.azure.com/.default").token
    fields = {
        "grant_type": (None, "access_token"),
        "service": (None, registry["service"]),
        "tenant": (None, stack["VIBEDATA_TENANT_ID"]),
        "access_token": (None, aad),
    }
    resp = requests.post(f"{acr}/oauth2/exchange", files=fields, verify=ca)
    assert resp.status_code == 200, resp.text
    assert "refresh_token" in resp.json()


def test_exchange_refuses_other_audiences_and_tenants(stack, ca, credential, acr, registry):
    vault_token = credential.get_token("https://vault.azure.net/.default").token
    assert exchange(acr, ca, stack, registry, vault_token).status_code == 401
    arm_token = credential.get_token("https://management.azure.com/.default").token
    other = exchange(acr, ca, stack, registry, arm_token, tenant="00000000-0000-0000-0000-000000000001")
    assert other.status_code == 401
    assert exchange(acr, ca, stack, registry, "not-a-jwt").status_code == 401


def test_get_token_with_basic_auth(stack, ca, credential, acr, registry):
    aad = credential.get_token("https://management.azure.com/.default").token
    refresh = exchange(acr, ca, stack, registry, aad).json()["refresh_token"]
    params = {"service": registry["service"], "scope": "repository:vibedata/api:pull", "account": NULL_USER}
    for auth in [(NULL_USER, refresh), ("anything", aad)]:
        resp = requests.get(f"{acr}/oauth2/token", params=params, auth=auth, verify=ca)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["token"] == body["access_token"]
        _, claims = verify_registry_jwt(body["token"], ca)
        assert claims["access"] == [{"type": "repository", "name": "vibedata/api", "actions": ["pull"]}]
    assert requests.get(f"{acr}/oauth2/token", params=params, verify=ca).status_code == 401
    assert requests.get(f"{acr}/oauth2/token", params=params, auth=(NULL_USER, "bogus"), verify=ca).status_code == 401
