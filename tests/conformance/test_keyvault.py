"""Key Vault secrets through azure-keyvault-secrets' SecretClient, unmodified."""

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient


@pytest.fixture
def client(stack, ca, credential):
    # The local vault is not under *.vault.azure.net, so the challenge resource check is off
    # (exactly what the runtime does for the local stack); it stays on in Azure.
    return SecretClient(
        vault_url=stack["VIBEDATA_KEY_VAULT_URL"],
        credential=credential,
        verify_challenge_resource=False,
        connection_verify=ca,
    )


def test_seeded_secret(client):
    assert client.get_secret("health-canary").value == "canary-ok"


def test_set_get_versions(client, stack, unique):
    name = f"conf-{unique}"
    first = client.set_secret(name, "one", content_type="text/plain", tags={"k": "v"})
    second = client.set_secret(name, "two")
    assert first.properties.version != second.properties.version
    assert len(second.properties.version) == 32
    assert second.id == f"{stack['VIBEDATA_KEY_VAULT_URL']}/secrets/{name}/{second.properties.version}"
    assert client.get_secret(name).value == "two"
    old = client.get_secret(name, first.properties.version)
    assert old.value == "one"
    assert old.properties.content_type == "text/plain"
    assert old.properties.tags == {"k": "v"}
    assert old.properties.recovery_level == "Recoverable+Purgeable"
    versions = {p.version for p in client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}


def test_missing_secret(client):
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_secret("conf-does-not-exist")
    assert err.value.error.code == "SecretNotFound"


def test_soft_delete_conflict_recover_purge(client, unique):
    name = f"conf-del-{unique}"
    client.set_secret(name, "v1")
    deleted = client.begin_delete_secret(name).result()
    assert deleted.name == name
    assert deleted.recovery_id.endswith(f"/deletedsecrets/{name}")
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert client.get_deleted_secret(name).name == name
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)

    # Setting a soft-deleted name: 409 Conflict / ObjectIsDeletedButRecoverable.
    with pytest.raises(HttpResponseError) as err:
        client.set_secret(name, "v2")
    assert err.value.status_code == 409
    assert err.value.error.code == "Conflict"
    assert err.value.error.innererror["code"] == "ObjectIsDeletedButRecoverable"
    assert err.value.response.headers["x-ms-error-code"] == "Conflict"

    recovered = client.begin_recover_deleted_secret(name).result()
    assert recovered.name == name
    assert client.get_secret(name).value == "v1"

    client.begin_delete_secret(name).result()
    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    # Purged: the name is free again.
    assert client.set_secret(name, "v3").value == "v3"


def test_paged_list(client, unique):
    names = {f"conf-page-{unique}-{i}" for i in range(5)}
    for name in names:
        client.set_secret(name, "x")
    pages = list(client.list_properties_of_secrets(max_page_size=2).by_page())
    assert len(pages) >= 3
    listed = {p.name for page in pages for p in page}
    assert names <= listed
    assert {"health-canary", "postgres-password", "publisher-pull-credential"} <= listed


def test_challenge_and_api_versions(stack, ca):
    url = f"{stack['VIBEDATA_KEY_VAULT_URL']}/secrets/health-canary"
    resp = requests.get(url, params={"api-version": "7.5"}, verify=ca)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.windows.net/{stack["VIBEDATA_TENANT_ID"]}", '
        'resource="https://vault.azure.net"'
    )
    assert resp.json()["error"]["message"].startswith("AKV10000")


@pytest.mark.parametrize("api_version", ["7.4", "7.5", "2025-07-01"])
def test_spec_api_versions(stack, ca, credential, api_version):
    client = SecretClient(
        vault_url=stack["VIBEDATA_KEY_VAULT_URL"],
        credential=credential,
        verify_challenge_resource=False,
        connection_verify=ca,
        api_version=api_version,
    )
    assert client.get_secret("health-canary").value == "canary-ok"


def test_unknown_api_version(stack, ca, credential):
    token = credential.get_token("https://vault.azure.net/.default").token
    resp = requests.get(
        f"{stack['VIBEDATA_KEY_VAULT_URL']}/secrets/health-canary",
        params={"api-version": "7.9"},
        headers={"Authorization": f"Bearer {token}"},
        verify=ca,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "BadParameter"


def test_backup_and_restore(client, unique, control):
    name = f"conf-backup-{unique}"
    first = client.set_secret(name, "one")
    second = client.set_secret(name, "two")
    blob = client.backup_secret(name)
    assert isinstance(blob, bytes) and blob
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    client.begin_delete_secret(name).wait()
    with pytest.raises(ResourceExistsError):  # soft-deleted: the name is still taken
        client.restore_secret_backup(blob)
    client.purge_deleted_secret(name)
    control.clear_journal()
    restored = client.restore_secret_backup(blob)
    assert restored.name == name and restored.version == second.properties.version
    assert [v.version for v in client.list_properties_of_secret_versions(name)] == [
        first.properties.version,
        second.properties.version,
    ]
    assert client.get_secret(name).value == "two"
    assert client.get_secret(name, first.properties.version).value == "one"
    restore = next(e for e in control.journal() if e["path"] == "/secrets/restore")
    assert restore["mutating"] is True and restore["status"] == 200
    with pytest.raises(ResourceNotFoundError):
        client.backup_secret(f"conf-missing-{unique}")
    with pytest.raises(HttpResponseError) as err:
        client.restore_secret_backup(b"not a backup")
    assert err.value.status_code == 400
