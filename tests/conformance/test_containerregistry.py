"""The customer registry resource and `importImage` through azure-mgmt-containerregistry,
unmodified, with `base_url=` the emulator.

The imports are real: the emulator copies from the stack's publisher registry (htpasswd) into
its customer registry (token auth). The images are pushed here, straight through the
distribution API, with random content so every run imports something new; the result is read
back from the customer registry with a registry token from the emulator's token service.
"""

import hashlib
import io
import json
import os
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource, ImportSourceCredentials

FAST = {"polling_interval": 0.05}
NULL_USER = "00000000-0000-0000-0000-000000000000"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join(
    [
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Publisher:
    """Pushes small images to the publisher registry with Basic auth."""

    def __init__(self, stack, ca):
        self.base = f"https://{stack['VIBEDATA_PUBLISHER_REGISTRY']}"
        self.session = requests.Session()
        self.session.verify = ca
        self.session.auth = (stack["VIBEDATA_STACK_PUBLISHER_USER"], stack["VIBEDATA_STACK_PUBLISHER_PASSWORD"])

    def blob(self, repo: str, data: bytes) -> dict:
        digest = sha256(data)
        resp = self.session.post(f"{self.base}/v2/{repo}/blobs/uploads/")
        assert resp.status_code == 202, resp.text
        location = requests.compat.urljoin(self.base, resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        resp = self.session.put(
            f"{location}{sep}digest={digest}", data=data, headers={"Content-Type": "application/octet-stream"}
        )
        assert resp.status_code == 201, resp.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, repo: str, reference: str, body: dict, media_type: str) -> tuple:
        data = json.dumps(body, sort_keys=True, indent=1).encode()
        resp = self.session.put(
            f"{self.base}/v2/{repo}/manifests/{reference}", data=data, headers={"Content-Type": media_type}
        )
        assert resp.status_code == 201, resp.text
        return sha256(data), data

    def image(self, repo: str, tag: str, label: str = "") -> tuple:
        """An OCI image with one random gzip layer: (digest, manifest bytes)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            payload = os.urandom(2048) + label.encode()
            info = tarfile.TarInfo("payload.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        layer = {**self.blob(repo, buf.getvalue()), "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
        config_bytes = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "label": label}
        ).encode()
        config = {**self.blob(repo, config_bytes), "mediaType": "application/vnd.oci.image.config.v1+json"}
        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
        return self.manifest(repo, tag, body, OCI_MANIFEST)

    def index(self, repo: str, tag: str) -> tuple:
        """An OCI index of two platform images: (digest, manifest bytes, child digests)."""
        children = []
        for arch in ("amd64", "arm64"):
            digest, data = self.image(repo, f"tmp-{arch}", label=arch)
            children.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(data),
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        digest, data = self.manifest(repo, tag, body, OCI_INDEX)
        return digest, data, [c["digest"] for c in children]


class Customer:
    """Reads the customer registry the way docker does: Basic auth (null user + ACR refresh
    token) against the emulator's `GET /oauth2/token`, then the registry token."""

    def __init__(self, stack, ca, registry, credential):
        self.base = f"https://{stack['VIBEDATA_ACR_LOGIN_SERVER']}"
        self.auth_endpoint = stack["VIBEDATA_ACR_AUTH_ENDPOINT"]
        self.service = registry["service"]
        self.ca = ca
        aad = credential.get_token("https://management.azure.com/.default").token
        resp = requests.post(
            f"{self.auth_endpoint}/oauth2/exchange",
            data={
                "grant_type": "access_token",
                "service": self.service,
                "tenant": stack["VIBEDATA_TENANT_ID"],
                "access_token": aad,
            },
            verify=ca,
        )
        assert resp.status_code == 200, resp.text
        self.refresh = resp.json()["refresh_token"]

    def _token(self, repo: str) -> str:
        resp = requests.get(
            f"{self.auth_endpoint}/oauth2/token",
            params={"service": self.service, "scope": f"repository:{repo}:pull"},
            auth=(NULL_USER, self.refresh),
            verify=self.ca,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def manifest(self, repo: str, reference: str):
        """(digest, bytes) or None when the registry does not have it."""
        resp = requests.get(
            f"{self.base}/v2/{repo}/manifests/{reference}",
            headers={"Authorization": f"Bearer {self._token(repo)}", "Accept": ACCEPT},
            verify=self.ca,
        )
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        assert resp.headers["Docker-Content-Digest"] == sha256(resp.content)
        return sha256(resp.content), resp.content

    def tags(self, repo: str) -> list:
        resp = requests.get(
            f"{self.base}/v2/{repo}/tags/list",
            headers={"Authorization": f"Bearer {self._token(repo)}"},
            verify=self.ca,
        )
        # CNCF distribution answers NAME_UNKNOWN for a repository without tags.
        if resp.status_code == 404:
            return []
        assert resp.status_code == 200, resp.text
        return resp.json().get("tags") or []


@pytest.fixture(scope="session")
def publisher(stack, ca):
    return Publisher(stack, ca)


@pytest.fixture(scope="session")
def pushed(publisher):
    """Images in the publisher registry, pushed once per session with random content."""
    run = os.urandom(4).hex()
    repo = f"conformance/import-{run}"
    first = publisher.image(repo, "v1", label="first")
    second = publisher.image(repo, "v2", label="second")
    index_digest, index_bytes, children = publisher.index(f"{repo}-multi", "1.0")
    return {
        "repo": repo,
        "v1": first,
        "v2": second,
        "index_repo": f"{repo}-multi",
        "index": (index_digest, index_bytes),
        "children": children,
    }


@pytest.fixture
def customer(stack, ca, emulator_config, credential):
    return Customer(stack, ca, emulator_config["customerRegistry"], credential)


def make_client(stack, ca, credential, **kwargs):
    return ContainerRegistryManagementClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
        **kwargs,
    )


@pytest.fixture
def acr(stack, ca, credential):
    return make_client(stack, ca, credential)


@pytest.fixture
def names(stack):
    return stack["VIBEDATA_RESOURCE_GROUP"], stack["VIBEDATA_ACR_NAME"]


def params(stack, source_image, target_tags=None, mode=None, password=None, registry_uri=None, untagged=None):
    return ImportImageParameters(
        source=ImportSource(
            registry_uri=registry_uri or stack["VIBEDATA_PUBLISHER_REGISTRY"],
            source_image=source_image,
            credentials=ImportSourceCredentials(
                username=stack["VIBEDATA_STACK_PUBLISHER_USER"],
                password=password or stack["VIBEDATA_STACK_PUBLISHER_PASSWORD"],
            ),
        ),
        target_tags=target_tags,
        untagged_target_repositories=untagged,
        mode=mode,
    )


def test_get_registry_shows_network_rules(acr, names, stack, control):
    registry = acr.registries.get(*names)
    assert registry.login_server == stack["VIBEDATA_ACR_LOGIN_SERVER"]
    assert registry.public_network_access == "Enabled"
    assert registry.network_rule_bypass_options == "AzureServices"
    assert registry.network_rule_set.default_action == "Allow"
    try:
        control.registry_network(publicNetworkAccess="Disabled", networkRuleBypassOptions="None",
                                 networkRuleSet={"defaultAction": "Deny", "ipRules": []})
        registry = acr.registries.get(*names)
        assert registry.public_network_access == "Disabled"
        assert registry.network_rule_bypass_options == "None"
        assert registry.network_rule_set.default_action == "Deny"
    finally:
        control.registry_network(publicNetworkAccess="Enabled", networkRuleBypassOptions="AzureServices",
                                 networkRuleSet={"defaultAction": "Allow", "ipRules": []})


def test_import_by_digest_then_noforce_conflict_then_force(acr, names, stack, control, pushed, customer, unique):
    repo = pushed["repo"]
    v1_digest, v1_bytes = pushed["v1"]
    v2_digest, _ = pushed["v2"]
    target = f"imported/app-{unique}"
    control.clear_journal()

    acr.registries.begin_import_image(
        *names, params(stack, f"{repo}@{v1_digest}", [f"{target}:1.0"], mode="NoForce"), **FAST
    ).result()
    # The manifest bytes are copied unchanged: same digest, same bytes.
    assert customer.manifest(target, "1.0") == (v1_digest, v1_bytes)

    # The client's default api-version is accepted, the POST and its polls are journaled.
    posts = [e for e in control.journal() if e["api"] == "acr.importImage" and e["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["status"] == 202 and posts[0]["mutating"] is True
    assert f"api-version={acr._config.api_version}" in posts[0]["query"]
    polls = [e for e in control.journal() if e["api"] == "acr.importImage" and e["method"] == "GET"]
    assert polls and polls[-1]["status"] == 200 and all(p["status"] == 202 for p in polls[:-1])
    assert not any(p["mutating"] for p in polls)

    # NoForce on an existing tag fails the operation, whatever the digest.
    with pytest.raises(HttpResponseError) as err:
        acr.registries.begin_import_image(
            *names, params(stack, f"{repo}:v2", [f"{target}:1.0"], mode="NoForce"), **FAST
        ).result()
    assert err.value.status_code == 409
    assert err.value.error.code == "TagAlreadyExists"
    assert f"{target}:1.0" in err.value.error.message
    assert customer.manifest(target, "1.0")[0] == v1_digest
    # NoForce is also the default mode.
    with pytest.raises(HttpResponseError):
        acr.registries.begin_import_image(*names, params(stack, f"{repo}:v1", [f"{target}:1.0"]), **FAST).result()

    # Force overwrites the tag.
    acr.registries.begin_import_image(
        *names, params(stack, f"{repo}:v2", [f"{target}:1.0", f"{target}-copy"], mode="Force"), **FAST
    ).result()
    assert customer.manifest(target, "1.0")[0] == v2_digest
    # A target without a tag takes the source's.
    assert customer.manifest(f"{target}-copy", "v2")[0] == v2_digest


def test_imports_log_records_parameters_never_the_password(acr, names, stack, control, pushed, unique):
    target = f"imported/log-{unique}:x"
    acr.registries.begin_import_image(
        *names, params(stack, f"{pushed['repo']}:v1", [target], mode="Force"), **FAST
    ).result()
    text = control.imports_text()
    assert stack["VIBEDATA_STACK_PUBLISHER_PASSWORD"] not in text
    entry = next(e for e in json.loads(text) if e["targetTags"] == [target])
    assert entry["sourceImage"] == f"{pushed['repo']}:v1"
    assert entry["mode"] == "Force"
    assert entry["registryUri"] == stack["VIBEDATA_PUBLISHER_REGISTRY"]
    assert entry["hadCredentials"] is True
    assert entry["status"] == "Succeeded"
    assert entry["digest"] == pushed["v1"][0]


def test_import_index_with_children_and_untagged_repository(acr, names, stack, pushed, customer, unique):
    index_digest, index_bytes = pushed["index"]
    tagged, untagged = f"imported/multi-{unique}", f"imported/untagged-{unique}"
    acr.registries.begin_import_image(
        *names,
        params(stack, f"{pushed['index_repo']}:1.0", [f"{tagged}:2.0"], untagged=[untagged]),
        **FAST,
    ).result()
    assert customer.manifest(tagged, "2.0") == (index_digest, index_bytes)
    for repo in (tagged, untagged):
        assert customer.manifest(repo, index_digest)[0] == index_digest
        for child in pushed["children"]:
            assert customer.manifest(repo, child)[0] == child
    assert customer.tags(untagged) == []


def test_import_at_the_specs_api_version(stack, ca, credential, names, pushed, customer, control, unique):
    client = make_client(stack, ca, credential, api_version="2023-07-01")
    control.clear_journal()
    target = f"imported/old-{unique}:1"
    client.registries.begin_import_image(*names, params(stack, f"{pushed['repo']}:v1", [target]), **FAST).result()
    assert customer.manifest(*target.split(":"))[0] == pushed["v1"][0]
    assert all("api-version=2023-07-01" in e["query"] for e in control.journal() if e["api"] == "acr.importImage")


def test_wrong_credentials_fail_the_operation(acr, names, stack, pushed, customer, control, unique):
    target = f"imported/denied-{unique}"
    with pytest.raises(HttpResponseError) as err:
        acr.registries.begin_import_image(
            *names, params(stack, f"{pushed['repo']}:v1", [f"{target}:1"], password="wrong"), **FAST
        ).result()
    assert err.value.error.code == "InvalidParameters"
    assert "Unauthorized" in err.value.error.message
    assert customer.manifest(target, "1") is None
    assert "wrong" not in json.dumps([e for e in control.imports() if e["targetTags"] == [f"{target}:1"]])


def test_only_the_publisher_is_a_source(acr, names, stack, pushed, control, unique):
    target = f"imported/elsewhere-{unique}:1"
    with pytest.raises(HttpResponseError) as err:
        acr.registries.begin_import_image(
            *names, params(stack, f"{pushed['repo']}:v1", [target], registry_uri="registry.example.com"), **FAST
        ).result()
    assert err.value.error.code == "InvalidParameters"
    entry = next(e for e in control.imports() if e["targetTags"] == [target])
    assert entry["status"] == "Failed" and entry["registryUri"] == "registry.example.com"


def test_validation_errors_are_synchronous(acr, names, stack, pushed):
    rg, name = names
    cases = [
        ImportImageParameters(source=ImportSource(registry_uri=stack["VIBEDATA_PUBLISHER_REGISTRY"]), target_tags=["a:b"]),
        params(stack, "Not/Valid:tag", ["a:b"]),
        params(stack, f"{pushed['repo']}@sha256:1234", ["a:b"]),
        params(stack, f"{pushed['repo']}:v1", ["bad tag!"]),
        params(stack, f"{pushed['repo']}:v1", ["a:b"], mode="Sometimes"),
    ]
    for body in cases:
        with pytest.raises(HttpResponseError) as err:
            acr.registries.begin_import_image(rg, name, body, **FAST)
        assert err.value.status_code == 400
        assert err.value.error.code == "InvalidParameters", err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        acr.registries.begin_import_image(rg, "no", params(stack, "a:b", ["a:b"]), **FAST)
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError) as err:
        acr.registries.begin_import_image(rg, "someotherregistry", params(stack, "a:b", ["a:b"]), **FAST)
    assert err.value.error.code == "ResourceNotFound"


def test_restricted_registry_needs_trusted_services(acr, names, stack, pushed, customer, control, unique):
    target = f"imported/net-{unique}"
    try:
        control.registry_network(publicNetworkAccess="Disabled", networkRuleBypassOptions="None")
        with pytest.raises(HttpResponseError) as err:
            acr.registries.begin_import_image(
                *names, params(stack, f"{pushed['repo']}:v1", [f"{target}:1"]), **FAST
            ).result()
        assert err.value.error.code == "InvalidParameters"
        assert "trusted services" in err.value.error.message
        assert customer.manifest(target, "1") is None

        control.registry_network(networkRuleBypassOptions="AzureServices")
        acr.registries.begin_import_image(
            *names, params(stack, f"{pushed['repo']}:v1", [f"{target}:1"]), **FAST
        ).result()
        assert customer.manifest(target, "1")[0] == pushed["v1"][0]
    finally:
        control.registry_network(publicNetworkAccess="Enabled", networkRuleBypassOptions="AzureServices",
                                 networkRuleSet={"defaultAction": "Allow", "ipRules": []})


def test_simulated_duration_and_concurrency(acr, names, stack, pushed, control, unique):
    control.set_import(1000)
    try:
        def one(i):
            started = time.monotonic()
            acr.registries.begin_import_image(
                *names, params(stack, f"{pushed['repo']}:v1", [f"imported/slow-{unique}:{i}"]), **FAST
            ).result()
            return time.monotonic() - started

        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            durations = list(pool.map(one, range(6)))
        total = time.monotonic() - started
    finally:
        control.set_import(0)
    assert all(d >= 1.0 for d in durations), durations
    # Six imports of one second each, run at once: far less than six seconds.
    assert total < 3.5, total


def test_faults_apply_to_import_and_its_polls(acr, names, stack, pushed, customer, control, unique):
    target = f"imported/faulty-{unique}:1"
    control.fault(api="acr.importImage", kind="throttle", count=1, retryAfter=0, pathContains="/importImage")
    control.fault(api="acr.importImage", kind="server-error", count=1, pathContains="/operationResults/")
    control.clear_journal()
    acr.registries.begin_import_image(*names, params(stack, f"{pushed['repo']}:v1", [target]), **FAST).result()
    assert customer.manifest(*target.split(":"))[0] == pushed["v1"][0]
    statuses = [(e["method"], e["status"]) for e in control.journal() if e["api"] == "acr.importImage"]
    assert statuses[:3] == [("POST", 429), ("POST", 202), ("GET", 500)]
    assert statuses[-1] == ("GET", 200)

    control.fault(api="acr.importImage", kind="rbac", seconds=5)
    with pytest.raises(HttpResponseError) as err:
        acr.registries.begin_import_image(*names, params(stack, f"{pushed['repo']}:v1", [target]), **FAST)
    assert err.value.status_code == 403
    assert err.value.error.code == "AuthorizationFailed"
    assert "Microsoft.ContainerRegistry/registries/importImage/action" in err.value.error.message


def test_concurrent_noforce_imports_to_one_absent_tag(acr, names, stack, pushed, customer, control, unique):
    """Two NoForce imports of different images to one absent tag, in flight at once: exactly one
    succeeds, the other fails with the named conflict (TagAlreadyExists), and the tag holds the
    winner's digest. The emulator makes the existence check and the tag write atomic per
    repository:tag (emulator/README.md, "assumptions")."""
    target = f"imported/race-{unique}:1"
    sources = {"v1": pushed["v1"][0], "v2": pushed["v2"][0]}
    for attempt in range(3):
        tag = f"{target}{attempt}"
        # Both POSTs are answered before either poller starts: both imports run concurrently.
        pollers = {
            v: acr.registries.begin_import_image(
                *names, params(stack, f"{pushed['repo']}:{v}", [tag], mode="NoForce"), **FAST
            )
            for v in sources
        }
        outcomes = {}
        for v, poller in pollers.items():
            try:
                poller.result()
                outcomes[v] = "ok"
            except HttpResponseError as err:
                assert err.status_code == 409, err.message
                assert err.error.code == "TagAlreadyExists", err.error.code
                assert tag in err.error.message
                outcomes[v] = "conflict"
        assert sorted(outcomes.values()) == ["conflict", "ok"], outcomes
        winner = next(v for v, o in outcomes.items() if o == "ok")
        assert customer.manifest(*tag.split(":"))[0] == sources[winner]
        records = {e["sourceImage"]: e for e in control.imports() if e["targetTags"] == [tag]}
        assert {r["status"] for r in records.values()} == {"Succeeded", "Failed"}
