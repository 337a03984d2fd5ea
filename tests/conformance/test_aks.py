"""AKS runCommand through azure-mgmt-containerservice, unmodified (`begin_run_command`,
`get_command_result`), with `base_url=` the emulator.

The commands really run (bash in a scratch folder holding the context); `helm template`/`lint`
are the real Helm that scripts/setup installs; installs, status, values, rollback, uninstall,
`kubectl wait` and the health check are answered over the emulated cluster. The chart is
tests/fixtures/charts/airbyte (the shape of Airbyte's V2 chart); its images are pushed to the
customer registry per session, so the image check is real.
"""

import base64
import hashlib
import io
import json
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import RunCommandRequest

from test_containerregistry import OCI_MANIFEST, Customer, Publisher

FAST = {"polling_interval": 0.05}
AAD_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
API = "2026-08-01"
CHART_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "airbyte"
# Secret values: they travel only inside the context's Secret manifest.
DB_PASSWORD = "pg-" + os.urandom(8).hex()
CONNECTION_STRING = "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=" + os.urandom(12).hex()

INSTALL_SH = """#!/bin/bash
# What the airbyte phase ships: the Secret applied from the context, then helm, bounded.
set -euo pipefail
helm version --short >&2
kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"
kubectl apply -n "$NS" -f secret.yaml
helm upgrade --install airbyte ./airbyte-2.2.0.tgz -n "$NS" -f values.yaml --wait --timeout 2m -o json > release.json
jq -c '{name, revision: .version, status: .info.status}' release.json
"""


class CustomerPusher(Publisher):
    """Pushes images straight into the customer registry with a registry token (pull,push)."""

    def __init__(self, stack, ca, customer: Customer):
        super().__init__(stack, ca)
        self.base = f"https://{stack['VIBEDATA_ACR_LOGIN_SERVER']}"
        self.customer = customer
        self.session.auth = self._bearer

    def _bearer(self, r):
        repo = r.url.split("/v2/", 1)[1].rsplit("/blobs/", 1)[0].rsplit("/manifests/", 1)[0]
        resp = requests.get(
            f"{self.customer.auth_endpoint}/oauth2/token",
            params={"service": self.customer.service, "scope": f"repository:{repo}:pull,push"},
            auth=("00000000-0000-0000-0000-000000000000", self.customer.refresh),
            verify=self.customer.ca,
        )
        resp.raise_for_status()
        r.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        return r


@pytest.fixture(scope="session")
def image_tag(stack, ca, emulator_config):
    """A tag under which the chart's three images exist in the customer registry."""
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=stack["VIBEDATA_STACK_DEPLOYER_CLIENT_ID"])
    pusher = CustomerPusher(stack, ca, Customer(stack, ca, emulator_config["customerRegistry"], credential))
    tag = "2.2.0-" + os.urandom(3).hex()
    for component in ("server", "worker", "bootloader"):
        pusher.image(f"vibedata/airbyte-{component}", tag, label=component)
    # The same release without its worker image.
    for component in ("server", "bootloader"):
        pusher.image(f"vibedata/airbyte-{component}", tag + "-noworker", label=component)
    return tag


@pytest.fixture(scope="session")
def chart_tgz() -> bytes:
    """The fixture chart as `helm package` lays it out (airbyte/...), with pinned mtimes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(CHART_DIR.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                info = tarfile.TarInfo(f"airbyte/{path.relative_to(CHART_DIR)}")
                info.size, info.mtime, info.mode = len(data), 1767225600, 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def values(stack, tag, **extra) -> dict:
    v = {
        "global": {
            "image": {"registry": stack["VIBEDATA_ACR_LOGIN_SERVER"], "tag": tag},
            "database": {"type": "external", "host": "psql-vibedata-local.postgres.database.azure.com", "port": 5432,
                         "name": "airbyte", "secretName": "airbyte-config-secrets"},
            "storage": {"type": "azure", "secretName": "airbyte-config-secrets"},
        },
        "postgresql": {"enabled": False},
        "minio": {"enabled": False},
    }
    for key, value in extra.items():
        v[key] = value
    return v


SECRET_YAML = f"""apiVersion: v1
kind: Secret
metadata:
  name: airbyte-config-secrets
type: Opaque
stringData:
  database-user: airbyte
  database-password: {DB_PASSWORD}
  azure-blob-store-connection-string: "{CONNECTION_STRING}"
"""


def context(files: dict, wrap: bool = False) -> str:
    """A base64 zip of {name: bytes|str}; `wrap` encodes as `az` does (MIME lines of 76)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if name.endswith(".sh") else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    raw = buf.getvalue()
    return base64.encodebytes(raw).decode() if wrap else base64.b64encode(raw).decode()


def install_files(stack, tag, chart_tgz, **extra) -> dict:
    return {
        "install.sh": INSTALL_SH,
        "airbyte-2.2.0.tgz": chart_tgz,
        "values.yaml": json.dumps(values(stack, tag, **extra)),
        "secret.yaml": SECRET_YAML,
    }


@pytest.fixture(scope="session")
def cluster_name(stack, ca) -> str:
    inv = requests.get(f"{stack['VIBEDATA_EMULATOR_CONTROL']}/inventory", verify=ca).json()
    return inv["names"]["aks"]


@pytest.fixture
def aks(stack, ca, credential):
    return ContainerServiceClient(
        credential, stack["VIBEDATA_SUBSCRIPTION_ID"], base_url=stack["VIBEDATA_ARM_ENDPOINT"], connection_verify=ca
    )


@pytest.fixture
def aks_control(control, stack):
    """The AKS part of the control API, back to its defaults after each test."""
    base = stack["VIBEDATA_EMULATOR_CONTROL"].rstrip("/") + "/aks"
    s = control.session
    defaults = {"readyAfterMs": 0, "giveUpAfterMs": None, "maxRequestBytes": 1048576, "lowercaseStates": False}

    class AksControl:
        def get(self, path=""):
            resp = s.get(base + path)
            resp.raise_for_status()
            return resp.json()

        def put(self, **settings):
            s.put(base, json=settings).raise_for_status()

        def post(self, path, **body):
            resp = s.post(base + path, json=body)
            assert resp.status_code == 201, resp.text
            return resp.json()

        def release(self, namespace, name="airbyte"):
            for r in self.get("/releases")["releases"]:
                if r["namespace"] == namespace and r["name"] == name:
                    return r["revisions"]
            return None

    s.delete(base + "/stuck").raise_for_status()
    s.delete(base + "/unavailable").raise_for_status()
    s.put(base, json=defaults).raise_for_status()
    yield AksControl()
    s.delete(base + "/stuck").raise_for_status()
    s.delete(base + "/unavailable").raise_for_status()
    s.put(base, json=defaults).raise_for_status()


@pytest.fixture
def cluster_token(credential) -> str:
    return credential.get_token(f"{AAD_SERVER_APP}/.default").token


@pytest.fixture
def run(aks, stack, cluster_name, cluster_token):
    """Runs a command through the SDK's poller; returns the RunCommandResult."""

    def _run(command, files=None, wrap=False, token=None):
        request = RunCommandRequest(
            command=command,
            context=context(files, wrap) if files else "",
            cluster_token=cluster_token if token is None else token,
        )
        poller = aks.managed_clusters.begin_run_command(
            stack["VIBEDATA_RESOURCE_GROUP"], cluster_name, request, **FAST
        )
        return poller.result()

    return _run


def aks_entries(control):
    return [e for e in control.journal() if e["api"] == "aks.runCommand" and e["method"] == "POST"]


def test_the_cluster_is_aad_managed_and_the_identity_issues_its_token(aks, stack, cluster_name, cluster_token):
    from conftest import jwt_parts

    mc = aks.managed_clusters.get(stack["VIBEDATA_RESOURCE_GROUP"], cluster_name)
    assert mc.aad_profile.managed is True
    assert mc.api_server_access_profile.enable_private_cluster is True
    _, claims = jwt_parts(cluster_token)
    assert claims["aud"] == AAD_SERVER_APP


def test_location_polling_as_azure_answers_it(stack, ca, credential, cluster_name, cluster_token, control):
    """202 + Location + Retry-After: 1, then 202 with a Running body (az's poller reads it), then 200."""
    control.set_lro(polls=2, retry_after=1)
    arm = requests.Session()
    arm.verify = ca
    arm.headers["Authorization"] = "Bearer " + credential.get_token("https://management.azure.com/.default").token
    base = (
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}/resourceGroups/"
        f"{stack['VIBEDATA_RESOURCE_GROUP']}/providers/Microsoft.ContainerService/managedClusters/{cluster_name}"
    )
    resp = arm.post(f"{base}/runCommand?api-version={API}",
                    json={"command": "sleep 1.5; echo done", "context": "", "clusterToken": cluster_token})
    assert resp.status_code == 202, resp.text
    assert resp.headers["Retry-After"] == "1" and not resp.content
    location = resp.headers["Location"]
    assert "/commandResults/" in location and location.endswith(f"?api-version={API}")
    running = arm.get(location)
    assert running.status_code == 202
    assert running.json()["properties"]["provisioningState"] == "Running"
    assert running.headers["Location"]
    deadline = time.monotonic() + 20
    while (final := arm.get(location)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert final.status_code == 200
    props = final.json()["properties"]
    assert (props["provisioningState"], props["exitCode"], props["logs"]) == ("Succeeded", 0, "done\n")
    assert props["startedAt"] and props["finishedAt"]
    missing = arm.get(f"{base}/commandResults/{'0' * 32}?api-version={API}")
    assert missing.status_code == 404


def test_install_then_a_read_only_check_then_unchanged(run, aks, stack, cluster_name, image_tag, chart_tgz, aks_control, control, unique):
    ns = f"airbyte-{unique}"
    files = install_files(stack, image_tag, chart_tgz)
    control.clear_journal()
    result = run(f"NS={ns} bash install.sh", files, wrap=True)
    assert result.provisioning_state == "Succeeded", result.reason
    assert result.exit_code == 0, result.logs
    summary = json.loads(result.logs.strip().splitlines()[-1])
    assert summary == {"name": "airbyte", "revision": 1, "status": "deployed"}
    assert result.logs.startswith("v3.17.2")

    revisions = aks_control.release(ns)
    assert [(r["revision"], r["status"]) for r in revisions] == [(1, "deployed")]
    assert revisions[0]["chartDigest"] == "sha256:" + hashlib.sha256(chart_tgz).hexdigest()
    assert revisions[0]["values"]["global"]["image"]["tag"] == image_tag

    check = f"helm status airbyte -n {ns} -o json; helm get values airbyte -n {ns} -o json"
    result = run(check)
    assert result.exit_code == 0, result.logs
    status_json, values_json = [json.loads(line) for line in result.logs.strip().splitlines()]
    assert status_json["info"]["status"] == "deployed" and status_json["version"] == 1
    assert status_json["chart"]["metadata"]["version"] == "2.2.0"
    assert values_json == values(stack, image_tag)
    entries = aks_entries(control)
    assert [e["mutating"] for e in entries] == [True, False]
    assert entries[1]["detail"]["command"] == check

    # The result stays readable by id (what a rerun polls after a kill).
    again = aks.managed_clusters.get_command_result(stack["VIBEDATA_RESOURCE_GROUP"], cluster_name, entries[1]["detail"]["commandId"])
    assert again.exit_code == 0 and again.logs == result.logs


def test_a_changed_value_upgrades(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    assert run(f"NS={ns} bash install.sh", install_files(stack, image_tag, chart_tgz)).exit_code == 0
    changed = install_files(stack, image_tag, chart_tgz, server={"replicaCount": 2})
    result = run(f"NS={ns} bash install.sh", changed)
    assert result.exit_code == 0, result.logs
    assert json.loads(result.logs.strip().splitlines()[-1])["revision"] == 2
    assert [(r["revision"], r["status"]) for r in aks_control.release(ns)] == [(1, "superseded"), (2, "deployed")]
    deploy = run(f"kubectl get deploy airbyte-server -n {ns} -o json")
    assert json.loads(deploy.logs)["spec"]["replicas"] == 2


def test_an_image_missing_from_the_customer_registry_fails_naming_it(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    files = install_files(stack, image_tag + "-absent", chart_tgz)
    result = run(f"NS={ns} bash install.sh", files)
    assert result.provisioning_state == "Succeeded" and result.exit_code == 1
    assert "INSTALLATION FAILED" in result.logs
    assert f"vibedata/airbyte-bootloader:{image_tag}-absent" in result.logs, result.logs
    assert aks_control.release(ns)[0]["status"] == "failed"
    # An image from outside the customer registry is named too.
    outside = values(stack, image_tag)
    outside["global"]["image"]["registry"] = "docker.io"
    files["values.yaml"] = json.dumps(outside)
    result = run(f"NS={ns}-2 bash install.sh", files)
    assert result.exit_code == 1 and f"docker.io/vibedata/airbyte-bootloader:{image_tag}" in result.logs
    # Only a Deployment's image missing: the hook runs, the install fails naming the Deployment.
    result = run(f"NS={ns}-3 bash install.sh", install_files(stack, image_tag + "-noworker", chart_tgz))
    assert result.exit_code == 1
    assert f'image "{stack["VIBEDATA_ACR_LOGIN_SERVER"]}/vibedata/airbyte-worker:{image_tag}-noworker" of Deployment {ns}-3/airbyte-worker' in result.logs, result.logs
    assert "airbyte-server" not in result.logs.split("INSTALLATION FAILED", 1)[1]
    pods = json.loads(run(f"kubectl get pods -n {ns}-3 -o json").logs)["items"]
    waiting = {p["metadata"]["name"].split("-")[1]: p["status"]["containerStatuses"][0]["state"] for p in pods}
    assert waiting["worker"]["waiting"]["reason"] == "ImagePullBackOff" and "running" in waiting["server"]


def test_wait_and_health_through_the_cluster(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    assert run(f"NS={ns} bash install.sh", install_files(stack, image_tag, chart_tgz)).exit_code == 0
    check = (
        f"kubectl wait --for=condition=Available deploy --all -n {ns} --timeout=20s && "
        f"curl -fsS http://airbyte-airbyte-server-svc.{ns}.svc:8001/api/v1/health && "
        f"kubectl get --raw /api/v1/namespaces/{ns}/services/airbyte-airbyte-server-svc:8001/proxy/api/v1/health"
    )
    result = run(check)
    assert result.exit_code == 0, result.logs
    assert f"deployment.apps/airbyte-server condition met" in result.logs
    assert result.logs.count('{"available":true}') == 2

    aks_control.post("/unavailable", namespace=ns, deployment="airbyte-worker", reason="CrashLoopBackOff")
    aks_control.put(giveUpAfterMs=300)
    result = run(f"kubectl wait --for=condition=Available deploy --all -n {ns} --timeout=20s")
    assert result.exit_code == 1
    assert "timed out waiting for the condition on deployments/airbyte-worker" in result.logs
    detail = run(f"kubectl get deploy airbyte-worker -n {ns} -o json")
    available = [c for c in json.loads(detail.logs)["status"]["conditions"] if c["type"] == "Available"][0]
    assert available["status"] == "False" and "CrashLoopBackOff" in available["message"]


def test_a_killed_install_leaves_pending_install_which_blocks_until_uninstalled(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    files = install_files(stack, image_tag, chart_tgz)
    aks_control.post("/stuck", release="airbyte", namespace=ns)
    killed = run(f"NS={ns} bash install.sh", files)
    assert killed.exit_code == 137
    assert [r["status"] for r in aks_control.release(ns)] == ["pending-install"]
    status = run(f"helm status airbyte -n {ns} -o json")
    assert json.loads(status.logs)["info"]["status"] == "pending-install"
    blocked = run(f"NS={ns} bash install.sh", files)
    assert blocked.exit_code == 1
    assert "another operation (install/upgrade/rollback) is in progress" in blocked.logs
    # A pending install has no earlier revision to roll back to: Helm's fix is uninstall.
    assert "release has no 0 version" in run(f"helm rollback airbyte -n {ns}").logs
    assert run(f"helm uninstall airbyte -n {ns}").logs == 'release "airbyte" uninstalled\n'
    again = run(f"NS={ns} bash install.sh", files)
    assert again.exit_code == 0, again.logs
    assert [r["status"] for r in aks_control.release(ns)] == ["deployed"]


def test_a_killed_upgrade_is_rolled_back(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    assert run(f"NS={ns} bash install.sh", install_files(stack, image_tag, chart_tgz)).exit_code == 0
    aks_control.post("/stuck", release="airbyte", namespace=ns)
    changed = install_files(stack, image_tag, chart_tgz, worker={"replicaCount": 3})
    assert run(f"NS={ns} bash install.sh", changed).exit_code == 137
    assert [r["status"] for r in aks_control.release(ns)] == ["deployed", "pending-upgrade"]
    result = run(f"helm rollback airbyte -n {ns} && helm history airbyte -n {ns} -o json")
    assert result.exit_code == 0, result.logs
    history = json.loads(result.logs.splitlines()[-1])
    assert [(h["revision"], h["status"], h["description"]) for h in history][-1] == (3, "deployed", "Rollback to 1")
    retried = run(f"NS={ns} bash install.sh", changed)
    assert retried.exit_code == 0, retried.logs
    assert aks_control.release(ns)[-1]["status"] == "deployed"


def test_helm_template_and_lint_are_the_real_helm(run, stack, image_tag, chart_tgz):
    files = {"airbyte-2.2.0.tgz": chart_tgz, "values.yaml": json.dumps(values(stack, image_tag))}
    result = run("helm lint ./airbyte-2.2.0.tgz -f values.yaml && helm template airbyte ./airbyte-2.2.0.tgz -f values.yaml", files)
    assert result.exit_code == 0, result.logs
    assert "1 chart(s) linted, 0 chart(s) failed" in result.logs
    # Every image the chart renders points at the customer registry.
    images = [l.split("image:", 1)[1].strip() for l in result.logs.splitlines() if l.strip().startswith("image:")]
    assert len(images) == 3 and all(i.startswith(stack["VIBEDATA_ACR_LOGIN_SERVER"] + "/vibedata/airbyte-") for i in images)
    broken = run("helm template airbyte ./airbyte-2.2.0.tgz", {"airbyte-2.2.0.tgz": chart_tgz})
    assert broken.exit_code == 1 and "global.database.host is required" in broken.logs


def test_journal_records_members_hashes_and_caller_and_no_secret(run, stack, image_tag, chart_tgz, control, aks_control, unique):
    ns = f"airbyte-{unique}"
    files = install_files(stack, image_tag, chart_tgz)
    control.clear_journal()
    assert run(f"NS={ns} bash install.sh", files).exit_code == 0
    [entry] = aks_entries(control)
    detail = entry["detail"]
    assert detail["readOnly"] is False and entry["mutating"] is True
    members = {m["name"]: m for m in detail["members"]}
    assert set(members) == set(files)
    raw = files["airbyte-2.2.0.tgz"]
    assert members["airbyte-2.2.0.tgz"] == {"name": "airbyte-2.2.0.tgz", "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    assert detail["caller"]["oid"] and detail["caller"]["clusterToken"]["oid"] == detail["caller"]["oid"]
    seen = json.dumps(control.journal()) + json.dumps(aks_control.get("/commands")) + json.dumps(aks_control.get("/objects"))
    seen += json.dumps(aks_control.get("/releases")) + run(f"helm get values airbyte -n {ns} --all -o json; helm get manifest airbyte -n {ns}").logs
    assert DB_PASSWORD not in seen and CONNECTION_STRING not in seen
    secret = [o for o in aks_control.get("/objects")["objects"] if o["kind"] == "Secret" and o["namespace"] == ns][0]
    assert sorted(secret["keys"]) == ["azure-blob-store-connection-string", "database-password", "database-user"]


def test_logs_are_truncated_at_512_kib_and_exit_codes_pass_through(run):
    result = run("head -c 600000 /dev/zero | tr '\\0' a; exit 3")
    assert (result.exit_code, len(result.logs)) == (3, 512 * 1024)


def test_both_base64_forms_and_a_bad_context(run, aks, stack, cluster_name, cluster_token):
    files = {"dir/hello.txt": "hello\n", "run.sh": "cat dir/hello.txt\n"}
    assert run("bash run.sh", files, wrap=True).logs == "hello\n"
    assert run("./run.sh", files, wrap=False).logs == "hello\n"
    request = RunCommandRequest(command="ls", context="bm90IGEgemlw", cluster_token=cluster_token)
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_run_command(stack["VIBEDATA_RESOURCE_GROUP"], cluster_name, request, **FAST)
    assert err.value.status_code == 400 and "context" in err.value.message


def test_cluster_token_is_required_and_checked(run, aks, stack, cluster_name, credential):
    request = RunCommandRequest(command="kubectl get ns", context="")
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_run_command(stack["VIBEDATA_RESOURCE_GROUP"], cluster_name, request, **FAST)
    assert err.value.status_code == 400 and err.value.error.code == "MissingAADClusterToken"
    # A token for another audience: the pod runs, the API server refuses it.
    wrong = credential.get_token("https://management.azure.com/.default").token
    result = run("kubectl get ns; helm version --short", token=wrong)
    assert "error: You must be logged in to the server (Unauthorized)" in result.logs
    assert "v3.17.2" in result.logs


def test_faults(run, aks, stack, cluster_name, cluster_token, control, aks_control):
    rg = stack["VIBEDATA_RESOURCE_GROUP"]
    request = RunCommandRequest(command="echo hi", context="", cluster_token=cluster_token)

    control.fault(api="aks.runCommand", kind="rbac", seconds=5, pathContains="/runCommand")
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_run_command(rg, cluster_name, request, **FAST)
    assert err.value.status_code == 403 and err.value.error.code == "AuthorizationFailed"
    assert "Microsoft.ContainerService/managedClusters/runCommand/action" in err.value.message
    control.clear_faults()

    control.fault(api="aks.runCommand", kind="kubernetes-performance")
    with pytest.raises(HttpResponseError) as err:
        aks.managed_clusters.begin_run_command(rg, cluster_name, request, **FAST)
    assert err.value.error.code == "KubernetesPerformanceError" and "did not start within 30s" in err.value.message
    assert run("echo hi").exit_code == 0, "the fault is used up"

    control.fault(api="aks.runCommand", kind="command-failed", reason="ImagePullBackoff")
    failed = run("echo hi")
    assert (failed.provisioning_state, failed.reason, failed.exit_code) == ("Failed", "ImagePullBackoff", None)

    aks_control.put(maxRequestBytes=2000)
    with pytest.raises(HttpResponseError) as err:
        run("cat big.bin | wc -c", {"big.bin": os.urandom(4000)})
    assert err.value.status_code == 413

    aks_control.put(maxRequestBytes=1048576, lowercaseStates=True)
    assert run("true").provisioning_state == "succeeded"


def test_deployments_become_available_after_ready_after_ms(run, stack, image_tag, chart_tgz, aks_control, unique):
    ns = f"airbyte-{unique}"
    aks_control.put(readyAfterMs=1500)
    files = install_files(stack, image_tag, chart_tgz)
    command = (
        f"kubectl create namespace {ns} >/dev/null && kubectl apply -n {ns} -f secret.yaml >/dev/null && "
        f"helm install airbyte ./airbyte-2.2.0.tgz -n {ns} -f values.yaml >/dev/null && "
        f"kubectl get deploy airbyte-server -n {ns} -o json | jq -c '.status | {{availableReplicas}}' && "
        f"(curl -sS http://airbyte-airbyte-server-svc.{ns}.svc:8001/api/v1/health || true) && "
        f"kubectl wait --for=condition=Available deploy --all -n {ns} --timeout=20s && "
        f"kubectl get deploy airbyte-server -n {ns} -o json | jq -c '.status | {{availableReplicas}}'"
    )
    result = run(command, files)
    assert result.exit_code == 0, result.logs
    lines = result.logs.splitlines()
    assert lines[0] == '{"availableReplicas":0}'
    assert "curl: (7)" in lines[1]
    assert lines[-1] == '{"availableReplicas":1}'
