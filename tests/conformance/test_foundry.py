"""The Foundry project data plane through azure-ai-projects' AIProjectClient, unmodified
(agents.create_version / get / list / get_version, indexes.create_or_update / get / list /
delete), and the project as ARM shows it through azure-mgmt-cognitiveservices.

Hosted agents pull their image from the customer registry: the tests push a small image there
first (straight through the distribution API, with a registry token from the emulator's token
service), so a version turns `active`; an image that is not there fails `AcrImageNotFound`.
"""

import hashlib
import json
import os
import time

import pytest
import requests
from azure.ai.projects import AIProjectClient
from azure.ai.projects.models import (
    AzureAISearchIndex,
    ContainerConfiguration,
    HostedAgentDefinition,
    PromptAgentDefinition,
    ProtocolVersionRecord,
)
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

NULL_USER = "00000000-0000-0000-0000-000000000000"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def project(stack, ca, credential):
    return AIProjectClient(endpoint=stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"], credential=credential, connection_verify=ca)


@pytest.fixture
def ai(control):
    """The AI control API (`/_emulator/ai`), knobs restored afterwards."""
    base = f"{control.base}/ai"
    state = control.session.get(base).json()["foundry"]["state"]
    yield control.session, base
    control.session.delete(f"{base}/fail-hosted").raise_for_status()
    knobs = {"hostedMs": state["hostedMs"], "hostedPolls": state["hostedPolls"]}
    control.session.put(base, json=knobs).raise_for_status()


def prompt(instructions: str) -> PromptAgentDefinition:
    return PromptAgentDefinition(model="gpt-4o", instructions=instructions)


def hosted(image: str) -> HostedAgentDefinition:
    return HostedAgentDefinition(
        cpu="1",
        memory="2Gi",
        container_configuration=ContainerConfiguration(image=image),
        protocol_versions=[ProtocolVersionRecord(protocol="responses", version="1.0.0")],
        environment_variables={"MODEL_DEPLOYMENT_NAME": "gpt-4o"},
    )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def customer_image(stack, ca, emulator_config):
    """`<login server>/<repo>@<digest>` of a small image pushed to the customer registry."""
    from azure.identity import ManagedIdentityCredential

    aad = ManagedIdentityCredential(client_id=stack["VIBEDATA_STACK_DEPLOYER_CLIENT_ID"]).get_token(
        "https://management.azure.com/.default"
    ).token
    auth = stack["VIBEDATA_ACR_AUTH_ENDPOINT"]
    service = emulator_config["customerRegistry"]["service"]
    refresh = requests.post(
        f"{auth}/oauth2/exchange",
        data={"grant_type": "access_token", "service": service, "tenant": stack["VIBEDATA_TENANT_ID"], "access_token": aad},
        verify=ca,
    ).json()["refresh_token"]
    repo = f"conformance/assistant-{os.urandom(4).hex()}"
    token = requests.get(
        f"{auth}/oauth2/token",
        params={"service": service, "scope": f"repository:{repo}:pull,push"},
        auth=(NULL_USER, refresh),
        verify=ca,
    ).json()["access_token"]
    s = requests.Session()
    s.verify = ca
    s.headers["Authorization"] = f"Bearer {token}"
    base = f"https://{stack['VIBEDATA_ACR_LOGIN_SERVER']}"

    def blob(data: bytes) -> dict:
        start = s.post(f"{base}/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = requests.compat.urljoin(base, start.headers["Location"])
        sep = "&" if "?" in location else "?"
        put = s.put(f"{location}{sep}digest={sha256(data)}", data=data, headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 201, put.text
        return {"digest": sha256(data), "size": len(data)}

    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = os.urandom(512)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**blob(config), "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [{**blob(layer), "mediaType": "application/vnd.oci.image.layer.v1.tar"}],
    }).encode()
    put = s.put(f"{base}/v2/{repo}/manifests/1.0.0", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    return f"{stack['VIBEDATA_ACR_LOGIN_SERVER']}/{repo}@{sha256(manifest)}"


def settle(project, name: str, version: str):
    """Polls a hosted version until it leaves `creating` (the registry check runs in the
    background, so the version may answer `creating` once more after its polls)."""
    deadline = time.monotonic() + 10
    while (v := project.agents.get_version(name, version)).status == "creating":
        assert time.monotonic() < deadline, f"{name} {version} is still creating"
        time.sleep(0.05)
    return v


def test_create_version_creates_the_agent_and_versions_are_strings(project, unique):
    name = f"conf-{unique}"
    first = project.agents.create_version(name, definition=prompt("Be brief."), description="d", metadata={"vibedata.digest": "a1"})
    assert (first.name, first.version, first.id, first.status) == (name, "1", f"{name}:1", "active")
    assert first.metadata == {"vibedata.digest": "a1"}
    agent = project.agents.get(name)
    assert agent.name == name and agent.versions.latest.version == "1"
    second = project.agents.create_version(name, definition=prompt("Be briefer."), metadata={"vibedata.digest": "b2"})
    assert second.version == "2"
    latest = project.agents.get(name).versions.latest
    assert latest.version == "2" and latest.definition["instructions"] == "Be briefer."
    old = project.agents.get_version(name, "1")
    assert old.definition["instructions"] == "Be brief." and old.description == "d"
    assert [v.version for v in project.agents.list_versions(name, order="asc")] == ["1", "2"]
    project.agents.delete(name)
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(name)


def test_list_pages_by_cursor(project, control, unique):
    names = [f"conf-page-{unique}-{i}" for i in range(5)]
    for n in names:
        project.agents.create_version(n, definition=prompt("x"))
    control.clear_journal()
    listed = [a.name for a in project.agents.list(limit=2, order="asc") if a.name.startswith(f"conf-page-{unique}")]
    assert listed == names
    pages = [e for e in control.journal() if e["api"] == "foundry.agents" and e["method"] == "GET"]
    assert len(pages) >= 3 and any("after=" in (e["query"] or "") for e in pages)
    assert not any(e["mutating"] for e in pages)
    newest_first = [a.name for a in project.agents.list(limit=100) if a.name.startswith(f"conf-page-{unique}")]
    assert newest_first == list(reversed(names))
    for n in names:
        project.agents.delete(n)


def test_hosted_version_goes_creating_then_active(project, ai, customer_image, unique):
    session, base = ai
    session.put(base, json={"hostedMs": 0, "hostedPolls": 2}).raise_for_status()
    name = f"conf-hosted-{unique}"
    created = project.agents.create_version(name, definition=hosted(customer_image))
    assert created.status == "creating"
    seen = [project.agents.get_version(name, "1").status for _ in range(2)]
    assert seen == ["creating", "creating"]
    assert settle(project, name, "1").status == "active"
    assert project.agents.get(name).versions.latest.definition["container_configuration"]["image"] == customer_image
    project.agents.delete(name)


def test_hosted_version_provisions_in_time_however_often_it_is_polled(project, ai, control, customer_image, unique):
    session, base = ai
    session.put(base, json={"hostedMs": 800, "hostedPolls": 0}).raise_for_status()
    name = f"conf-provision-{unique}"
    started = time.monotonic()
    project.agents.create_version(name, definition=hosted(customer_image))
    early = []
    while time.monotonic() - started < 0.5:
        early.append(project.agents.get_version(name, "1").status)
    assert len(early) >= 3 and set(early) == {"creating"}, early
    assert settle(project, name, "1").status == "active"
    assert time.monotonic() - started >= 0.8
    records = [r for r in control.session.get(f"{control.base}/latency").json() if r["resource"] == name]
    assert [(r["api"], r["operation"], r["simulatedMs"]) for r in records] == [("foundry.agents", "hostedAgent", 800)]
    project.agents.delete(name)


def test_hosted_failures(project, ai, customer_image, stack, unique):
    session, base = ai
    session.put(base, json={"hostedMs": 0, "hostedPolls": 0}).raise_for_status()
    failing = f"conf-pullfail-{unique}"
    armed = session.post(f"{base}/fail-hosted", json={"agent": failing})
    assert armed.status_code == 201
    project.agents.create_version(failing, definition=hosted(customer_image))
    v = project.agents.get_version(failing, "1")
    assert v.status == "failed"
    assert v["error"]["code"] == "image_pull_failed" and failing in v["error"]["message"]
    # The fault was for one version only.
    project.agents.create_version(failing, definition=hosted(customer_image))
    assert settle(project, failing, "2").status == "active"

    missing = f"conf-noimage-{unique}"
    image = f"{stack['VIBEDATA_ACR_LOGIN_SERVER']}/conformance/not-pushed-{unique}:1.0.0"
    project.agents.create_version(missing, definition=hosted(image))
    v = settle(project, missing, "1")
    assert v.status == "failed" and v["error"]["code"] == "AcrImageNotFound"
    for n in (failing, missing):
        project.agents.delete(n)


def test_preview_kinds_need_foundry_features(project, stack, ca, credential, unique):
    name = f"conf-wf-{unique}"
    workflow = {"kind": "workflow", "workflow": "kind: workflow\ntrigger: {}"}
    with pytest.raises(HttpResponseError) as err:
        project.agents.create_version(name, body={"definition": workflow})
    assert err.value.status_code == 403
    assert err.value.model.error.code == "preview_feature_required"
    assert "Foundry-Features: WorkflowAgents=V1Preview" in err.value.model.error.message
    assert err.value.model.error.param == "Foundry-Features"
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(name)
    preview = AIProjectClient(endpoint=stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"], credential=credential, connection_verify=ca, allow_preview=True)
    assert preview.agents.create_version(name, body={"definition": workflow}).version == "1"
    preview.agents.delete(name)


def test_bad_names_and_definitions(project, unique):
    for bad in ("-lead", "trail-", "has_underscore", "x" * 64):
        with pytest.raises(HttpResponseError) as err:
            project.agents.create_version(bad, definition=prompt("x"))
        assert err.value.status_code == 400, bad
    with pytest.raises(HttpResponseError) as err:
        project.agents.create_version(f"conf-nomodel-{unique}", body={"definition": {"kind": "prompt"}})
    assert err.value.status_code == 400 and err.value.model.error.param == "definition.model"
    with pytest.raises(ResourceNotFoundError):
        project.agents.get(f"conf-nomodel-{unique}")


def test_index_assets(project, stack, control, unique):
    name = f"conf-idx-{unique}"
    asset = AzureAISearchIndex(connection_name=stack["VIBEDATA_FOUNDRY_SEARCH_CONNECTION"], index_name="vibedata-docs", description="docs")
    created = project.indexes.create_or_update(name, "1", asset)
    assert (created.name, created.version, created.type) == (name, "1", "AzureSearch")
    assert created["connectionName"] == stack["VIBEDATA_FOUNDRY_SEARCH_CONNECTION"] and created["indexName"] == "vibedata-docs"
    control.clear_journal()
    again = project.indexes.create_or_update(name, "1", asset)
    assert again == created
    assert [e["status"] for e in control.journal() if e["api"] == "foundry.indexes"] == [200]
    assert project.indexes.get(name, "1")["indexName"] == "vibedata-docs"
    assert name in {i.name for i in project.indexes.list()}
    other = AzureAISearchIndex(connection_name=stack["VIBEDATA_FOUNDRY_SEARCH_CONNECTION"], index_name="vibedata-tickets")
    with pytest.raises(HttpResponseError) as err:
        project.indexes.create_or_update(name, "1", other)
    assert err.value.status_code == 409
    assert project.indexes.create_or_update(name, "2", other)["indexName"] == "vibedata-tickets"
    assert {i.version for i in project.indexes.list_versions(name)} == {"1", "2"}
    unknown = AzureAISearchIndex(connection_name="no-such-connection", index_name="x")
    with pytest.raises(HttpResponseError) as err:
        project.indexes.create_or_update(f"{name}-bad", "1", unknown)
    assert err.value.status_code == 400
    for v in ("1", "2"):
        project.indexes.delete(name, v)
    with pytest.raises(ResourceNotFoundError):
        project.indexes.get(name, "1")


def test_auth_api_version_and_journal(project, stack, ca, credential, control, unique):
    endpoint = stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"]
    token = credential.get_token("https://ai.azure.com/.default").token
    good = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{endpoint}/agents", params={"api-version": "v1"}, headers=good, verify=ca).status_code == 200
    for params in ({}, {"api-version": "2025-05-01"}):
        resp = requests.get(f"{endpoint}/agents", params=params, headers=good, verify=ca)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "api-version"
    search_token = credential.get_token("https://search.azure.com/.default").token
    wrong = requests.get(f"{endpoint}/agents", params={"api-version": "v1"}, headers={"Authorization": f"Bearer {search_token}"}, verify=ca)
    assert wrong.status_code == 401
    assert requests.get(f"{endpoint}/agents", params={"api-version": "v1"}, verify=ca).status_code == 401
    other_project = endpoint.rsplit("/", 1)[0] + "/no-such-project"
    assert requests.get(f"{other_project}/agents", params={"api-version": "v1"}, headers=good, verify=ca).status_code == 404

    name = f"conf-j-{unique}"
    control.clear_journal()
    project.agents.create_version(name, definition=prompt("x"))
    project.agents.get(name)
    project.agents.delete(name)
    marked = [(e["method"], e["mutating"], e["listener"]) for e in control.journal() if e["api"] == "foundry.agents"]
    assert marked == [("POST", True, "foundry"), ("GET", False, "foundry"), ("DELETE", True, "foundry")]


def test_faults(project, control, unique):
    name = f"conf-f-{unique}"
    control.clear_journal()
    control.fault(api="foundry.agents", kind="throttle", count=1, retryAfter=1)
    control.fault(api="foundry.agents", kind="server-error", count=1)
    started = time.monotonic()
    assert project.agents.create_version(name, definition=prompt("x")).version == "1"
    assert time.monotonic() - started >= 1
    statuses = [e["status"] for e in control.journal() if e["api"] == "foundry.agents"]
    assert statuses == [429, 500, 200], "every retry reached the service once; one version was made"
    control.fault(api="foundry.*", kind="rbac", seconds=2)
    # Foundry answers a missing data action with 401 PermissionDenied, which the SDK raises as
    # ClientAuthenticationError (as reported from the service: microsoft/ai-agent-evals#43).
    with pytest.raises(ClientAuthenticationError) as err:
        project.agents.get(name)
    assert err.value.status_code == 401
    assert "(PermissionDenied)" in str(err.value)
    assert "Microsoft.CognitiveServices/accounts/AIServices/agents/read" in str(err.value)
    deadline = time.monotonic() + 10
    while control.session.get(f"{control.base}/faults").json():
        assert time.monotonic() < deadline, "the rbac window did not end"
        time.sleep(0.2)
    assert [v.version for v in project.agents.list_versions(name)] == ["1"]
    project.agents.delete(name)


def test_the_project_in_arm(stack, ca, credential):
    mgmt = CognitiveServicesManagementClient(
        credential, stack["VIBEDATA_SUBSCRIPTION_ID"], base_url=stack["VIBEDATA_ARM_ENDPOINT"], connection_verify=ca
    )
    rg, account, name = stack["VIBEDATA_RESOURCE_GROUP"], stack["VIBEDATA_FOUNDRY_ACCOUNT"], stack["VIBEDATA_FOUNDRY_PROJECT"]
    proj = mgmt.projects.get(rg, account, name)
    assert proj.name == name and proj.type == "Microsoft.CognitiveServices/accounts/projects"
    assert proj.properties.endpoints["AI Foundry API"] == stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"]
    assert [p.name for p in mgmt.projects.list(rg, account)] == [name]
    acc = mgmt.accounts.get(rg, account)
    assert acc.kind == "AIServices"
    assert stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"].startswith(acc.properties.endpoints["AI Foundry API"])
    conn = mgmt.project_connections.get(rg, account, name, stack["VIBEDATA_FOUNDRY_SEARCH_CONNECTION"])
    assert conn.properties.category == "CognitiveSearch"
    assert conn.properties.target == stack["VIBEDATA_SEARCH_ENDPOINT"]
    with pytest.raises(ResourceNotFoundError):
        mgmt.projects.get(rg, account, "no-such-project")


def test_unknown_credential_is_rejected(stack, ca):
    class Nope:
        def get_token(self, *scopes, **kwargs):
            from azure.core.credentials import AccessToken

            return AccessToken("not-a-token", int(time.time()) + 3600)

    client = AIProjectClient(endpoint=stack["VIBEDATA_FOUNDRY_PROJECT_ENDPOINT"], credential=Nope(), connection_verify=ca)
    with pytest.raises(ClientAuthenticationError):
        client.agents.get("anything")
