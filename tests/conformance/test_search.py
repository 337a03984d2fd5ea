"""The AI Search data plane (index definitions) through azure-search-documents' SearchIndexClient,
unmodified: create_or_update_index, get_index, list_index_names, delete_index, with the admin
api-key and with a bearer token, plus the wire details the SDK hides (both path spellings,
api-versions, ETag preconditions, error bodies, faults, the journal)."""

import time

import pytest
import requests
from azure.core import MatchConditions
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SimpleField,
)

API = "2026-04-01"


class _Fixed:
    """A credential that always hands out one token (here: one for the wrong audience)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(params=["api-key", "bearer"])
def client(request, stack, ca, credential):
    cred = AzureKeyCredential(stack["VIBEDATA_SEARCH_ADMIN_KEY"]) if request.param == "api-key" else credential
    return SearchIndexClient(stack["VIBEDATA_SEARCH_ENDPOINT"], cred, connection_verify=ca)


@pytest.fixture
def keyed(stack, ca):
    """Raw requests with the admin key, for what the SDK does not expose."""
    s = requests.Session()
    s.verify = ca
    s.headers["api-key"] = stack["VIBEDATA_SEARCH_ADMIN_KEY"]
    return s


def docs_index(name: str) -> SearchIndex:
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=SearchFieldDataType.STRING, key=True),
            SearchableField(name="title", type=SearchFieldDataType.STRING),
            SimpleField(name="year", type=SearchFieldDataType.INT32, filterable=True),
        ],
    )


def raw_fields(name: str) -> dict:
    """A definition leaving every attribute out, as a release's JSON file may."""
    return {"name": name, "fields": [{"name": "id", "type": "Edm.String", "key": True}, {"name": "body", "type": "Edm.String"}]}


def test_create_get_list_delete(client, stack, unique):
    name = f"conf-{unique}"
    created = client.create_or_update_index(docs_index(name))
    assert created.name == name
    assert created.e_tag.startswith('"0x') and created.e_tag.endswith('"')
    got = client.get_index(name)
    assert got.e_tag == created.e_tag
    assert [f.name for f in got.fields] == ["id", "title", "year"]
    assert got.fields[0].key is True
    assert name in set(client.list_index_names())
    client.delete_index(name)
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_index(name)
    assert err.value.error.message == f"The index '{name}' for service '{stack['VIBEDATA_SEARCH_SERVICE']}' was not found."
    assert name not in set(client.list_index_names())
    # The service answers 404 for an absent index, which the SDK's delete takes as done.
    client.delete_index(name)


def test_defaults_are_filled_in(keyed, stack, unique):
    name = f"conf-def-{unique}"
    base = stack["VIBEDATA_SEARCH_ENDPOINT"]
    resp = keyed.put(f"{base}/indexes('{name}')", params={"api-version": API}, json=raw_fields(name), headers={"Prefer": "return=representation"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["ETag"] == body["@odata.etag"]
    assert body["@odata.context"] == f"{base}/$metadata#indexes/$entity"
    field = body["fields"][1]
    assert {k: field[k] for k in ("searchable", "filterable", "retrievable", "stored", "sortable", "facetable", "key")} == {
        "searchable": True, "filterable": True, "retrievable": True, "stored": True, "sortable": True, "facetable": True, "key": False,
    }
    assert field["analyzer"] is None and field["synonymMaps"] == []
    assert body["scoringProfiles"] == [] and body["semantic"] is None
    assert body["similarity"]["@odata.type"] == "#Microsoft.Azure.Search.BM25Similarity"
    # Re-sending what the service returned is no change: a GET after defaults diffs clean.
    again = keyed.put(f"{base}/indexes/{name}", params={"api-version": API}, json=body, headers={"Prefer": "return=representation"})
    assert again.status_code == 200
    assert {k: v for k, v in again.json().items() if k != "@odata.etag"} == {k: v for k, v in body.items() if k != "@odata.etag"}
    keyed.delete(f"{base}/indexes/{name}", params={"api-version": API})


def test_both_path_spellings_and_api_versions(keyed, stack, unique):
    name = f"conf-path-{unique}"
    base = stack["VIBEDATA_SEARCH_ENDPOINT"]
    assert keyed.put(f"{base}/indexes/{name}", params={"api-version": "2024-07-01"}, json=raw_fields(name)).status_code == 201
    for path in (f"/indexes('{name}')", f"/indexes/{name}", f"/indexes(%27{name}%27)"):
        for version in ("2024-07-01", "2025-09-01", "2026-04-01"):
            resp = keyed.get(f"{base}{path}", params={"api-version": version})
            assert resp.status_code == 200, (path, version, resp.text)
            assert resp.json()["name"] == name
    stats = keyed.get(f"{base}/indexes('{name}')/search.stats", params={"api-version": API})
    assert stats.json()["documentCount"] == 0
    listed = keyed.get(f"{base}/indexes", params={"api-version": API, "$select": "name"}).json()
    assert {"name": name} in listed["value"]
    assert listed["@odata.context"].endswith("$metadata#indexes(name)")
    for bad in ("2023-11-01", None):
        params = {"api-version": bad} if bad else {}
        resp = keyed.get(f"{base}/indexes/{name}", params=params)
        assert resp.status_code == 400
        assert resp.json()["error"]["message"] == "Invalid or missing api-version query string parameter."
    assert keyed.delete(f"{base}/indexes('{name}')", params={"api-version": API}).status_code == 204


def test_the_sdk_at_older_api_versions(stack, ca, credential, unique):
    for version in ("2024-07-01", "2025-09-01"):
        c = SearchIndexClient(stack["VIBEDATA_SEARCH_ENDPOINT"], credential, connection_verify=ca, api_version=version)
        name = f"conf-v{version.replace('-', '')}-{unique}"
        c.create_or_update_index(docs_index(name))
        assert c.get_index(name).name == name
        c.delete_index(name)


def test_etag_preconditions(client, unique):
    name = f"conf-etag-{unique}"
    first = client.create_or_update_index(docs_index(name), match_condition=MatchConditions.IfMissing)
    # If-None-Match: * on an existing index.
    with pytest.raises(ResourceExistsError) as err:
        client.create_or_update_index(docs_index(name), match_condition=MatchConditions.IfMissing)
    assert err.value.status_code == 412
    assert err.value.error.message.startswith("The precondition given in one of the request headers evaluated to false.")
    # If-Match on a fresh ETag updates, and the ETag changes on every write.
    current = client.get_index(name)
    current.fields.append(SimpleField(name="added", type=SearchFieldDataType.STRING))
    second = client.create_or_update_index(current, match_condition=MatchConditions.IfNotModified)
    assert second.e_tag != first.e_tag
    # The stale ETag now fails, for updates and deletes.
    with pytest.raises(ResourceModifiedError) as err:
        client.create_or_update_index(current, match_condition=MatchConditions.IfNotModified)
    assert err.value.status_code == 412
    with pytest.raises(ResourceModifiedError):
        client.delete_index(current, match_condition=MatchConditions.IfNotModified)
    assert client.get_index(name).e_tag == second.e_tag
    client.delete_index(client.get_index(name), match_condition=MatchConditions.IfNotModified)


def test_breaking_changes_are_refused_naming_the_field(client, unique):
    name = f"conf-break-{unique}"
    client.create_or_update_index(docs_index(name))
    before = client.get_index(name)
    changed = docs_index(name)
    changed.fields[2] = SimpleField(name="year", type=SearchFieldDataType.INT64)
    removed = docs_index(name)
    removed.fields.pop(1)
    for bad, field in ((changed, "year"), (removed, "title")):
        with pytest.raises(HttpResponseError) as err:
            client.create_or_update_index(bad)
        assert err.value.status_code == 400
        assert err.value.error.code == "OperationNotAllowed"
        assert err.value.error.message == f"Existing field '{field}' cannot be changed."
        assert err.value.error.details[0].code == "CannotChangeExistingField"
    assert client.get_index(name).e_tag == before.e_tag, "nothing changed"
    client.delete_index(name)


def test_names_and_keys_are_validated(client, keyed, stack, unique):
    base = stack["VIBEDATA_SEARCH_ENDPOINT"]
    for bad in ("Conf-Upper", "-conf", f"conf_{unique}", "c" * 129):
        with pytest.raises(HttpResponseError) as err:
            client.create_or_update_index(docs_index(bad))
        assert err.value.status_code == 400
        assert "Index name must only contain lowercase letters, digits or dashes" in err.value.error.message
    name = f"conf-key-{unique}"
    no_key = SearchIndex(name=name, fields=[SimpleField(name="id", type=SearchFieldDataType.STRING)])
    with pytest.raises(HttpResponseError) as err:
        client.create_or_update_index(no_key)
    assert err.value.error.code == "OperationNotAllowed"
    assert err.value.error.details[0].code == "MissingKeyField"
    int_key = {"name": name, "fields": [{"name": "id", "type": "Edm.Int32", "key": True}]}
    resp = keyed.put(f"{base}/indexes/{name}", params={"api-version": API}, json=int_key)
    assert resp.status_code == 400 and "Key fields must be of type 'Edm.String'" in resp.json()["error"]["message"]
    assert name not in set(client.list_index_names())


def test_authentication(stack, ca, credential, keyed, unique):
    base = stack["VIBEDATA_SEARCH_ENDPOINT"]
    none = requests.get(f"{base}/indexes", params={"api-version": API}, verify=ca)
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"].startswith("Bearer ")
    wrong_key = requests.get(f"{base}/indexes", params={"api-version": API}, headers={"api-key": "nope"}, verify=ca)
    assert wrong_key.status_code == 403
    arm_token = credential.get_token("https://management.azure.com/.default").token
    wrong_aud = requests.get(f"{base}/indexes", params={"api-version": API}, headers={"Authorization": f"Bearer {arm_token}"}, verify=ca)
    assert wrong_aud.status_code == 401
    with pytest.raises(HttpResponseError) as err:
        list(SearchIndexClient(base, AzureKeyCredential("nope"), connection_verify=ca).list_index_names())
    assert err.value.status_code == 403
    with pytest.raises(ClientAuthenticationError):
        list(SearchIndexClient(base, _Fixed(arm_token), connection_verify=ca).list_index_names())


def test_journal_and_faults(client, control, unique):
    name = f"conf-jf-{unique}"
    control.clear_journal()
    control.fault(api="search.indexes", kind="throttle", count=1, retryAfter=1)
    control.fault(api="search.indexes", kind="server-error", count=1)
    started = time.monotonic()
    client.create_or_update_index(docs_index(name))
    assert time.monotonic() - started >= 1, "the SDK waited Retry-After"
    client.get_index(name)
    entries = [e for e in control.journal() if e["api"] == "search.indexes"]
    assert [(e["method"], e["status"], e["mutating"]) for e in entries] == [
        ("PUT", 429, True), ("PUT", 500, True), ("PUT", 201, True), ("GET", 200, False),
    ]
    assert all(e["listener"] == "search" for e in entries)

    control.fault(api="search.indexes", kind="rbac", seconds=2)
    with pytest.raises(HttpResponseError) as err:
        client.get_index(name)
    assert err.value.status_code == 403
    assert "Microsoft.Search/searchServices/indexes/read" in err.value.error.message
    deadline = time.monotonic() + 10
    while control.session.get(f"{control.base}/faults").json():
        assert time.monotonic() < deadline, "the rbac window did not end"
        time.sleep(0.2)
    client.delete_index(name)
