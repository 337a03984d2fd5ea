"""Azure Automation runbooks and runtime environments through azure-mgmt-automation, unmodified,
with `base_url=` the emulator.

The flow is the one the runtime uses (field notes §3): create the runbook with `draft: {}`,
replace its draft content, publish, check `state == Published` and the content hash. Every
runbook name carries a unique suffix, so reruns against one stack do not collide.
"""

import hashlib

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.automation import AutomationClient
from azure.mgmt.automation.models import (
    RunbookCreateOrUpdateParameters,
    RunbookCreateOrUpdateProperties,
    RunbookDraft,
    RuntimeEnvironment,
    RuntimeEnvironmentProperties,
    RuntimeProperties,
)

FAST = {"polling_interval": 0.05}
SCRIPT = "param([string]$Name = 'world')\nWrite-Output \"Hello, $Name\"\n"
API = "2024-10-23"


def sha256_upper(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


def make_client(stack, ca, credential, **kwargs):
    return AutomationClient(
        credential,
        stack["VIBEDATA_SUBSCRIPTION_ID"],
        base_url=stack["VIBEDATA_ARM_ENDPOINT"],
        connection_verify=ca,
        **kwargs,
    )


@pytest.fixture
def aa(stack, ca, credential):
    return make_client(stack, ca, credential)


@pytest.fixture
def names(stack):
    return stack["VIBEDATA_RESOURCE_GROUP"], stack["VIBEDATA_AUTOMATION_ACCOUNT"]


@pytest.fixture
def automation_control(control, stack, ca):
    """The automation part of the control API, restored after each test."""
    base = stack["VIBEDATA_EMULATOR_CONTROL"].rstrip("/") + "/automation"
    session = control.session
    session.delete(f"{base}/fail-publish").raise_for_status()
    session.put(base, json={"publishPolls": None, "publishDurationMs": 0}).raise_for_status()

    class Automation:
        def runbooks(self):
            resp = session.get(f"{base}/runbooks")
            resp.raise_for_status()
            return {r["name"]: r for r in resp.json()}

        def fail_publish(self, **spec):
            resp = session.post(f"{base}/fail-publish", json=spec)
            assert resp.status_code == 201, resp.text
            return resp.json()

        def settings(self, **settings):
            resp = session.put(base, json=settings)
            resp.raise_for_status()
            return resp.json()

    yield Automation()
    session.delete(f"{base}/fail-publish").raise_for_status()
    session.put(base, json={"publishPolls": None, "publishDurationMs": 0}).raise_for_status()


def draft_params(runbook_type="PowerShell", runtime="PowerShell-7.4", **extra):
    return RunbookCreateOrUpdateParameters(
        location="eastus",
        properties=RunbookCreateOrUpdateProperties(
            runbook_type=runbook_type, runtime_environment=runtime, draft=RunbookDraft(), **extra
        ),
    )


def raw(stack, ca, credential, method, path, **kwargs):
    """A request straight to the ARM listener, for what the SDK does not let us send."""
    token = credential.get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    url = (
        f"{stack['VIBEDATA_ARM_ENDPOINT']}/subscriptions/{stack['VIBEDATA_SUBSCRIPTION_ID']}"
        f"/resourceGroups/{stack['VIBEDATA_RESOURCE_GROUP']}/providers/Microsoft.Automation"
        f"/automationAccounts/{stack['VIBEDATA_AUTOMATION_ACCOUNT']}{path}"
    )
    return requests.request(method, url, headers=headers, verify=ca, **kwargs)


# ---------------------------------------------------------------------------------------------
# The account and its runtime environments.


def test_account_is_in_the_inventory(stack, names, aa):
    rg, account = names
    got = aa.automation_account.get(rg, account)
    assert got.name == account
    assert got.id.endswith(f"/providers/Microsoft.Automation/automationAccounts/{account}")


def test_seeded_runtime_environments_across_pages(aa, names, control):
    rg, account = names
    control.clear_journal()
    envs = {e.name: e for e in aa.runtime_environments.list_by_automation_account(rg, account)}
    assert envs["PowerShell-7.4"].properties.runtime.language == "PowerShell"
    assert envs["PowerShell-7.4"].properties.runtime.version == "7.4"
    assert envs["Python-3.10"].properties.runtime.language == "Python"
    assert envs["Python-3.10"].properties.runtime.version == "3.10"
    pages = [e for e in control.journal() if e["api"] == "automation" and e["path"].endswith("/runtimeEnvironments")]
    assert len(pages) >= 1 and all(e["status"] == 200 for e in pages)
    got = aa.runtime_environments.get(rg, account, "powershell-7.4")
    assert got.name == "PowerShell-7.4"
    assert got.type == "Microsoft.Automation/automationAccounts/runtimeEnvironments"


def test_runtime_environment_lifecycle(aa, names, unique):
    rg, account = names
    name = f"Env-{unique}"
    params = RuntimeEnvironment(
        location="eastus",
        properties=RuntimeEnvironmentProperties(
            runtime=RuntimeProperties(language="Python", version="3.10"), default_packages={"requests": "2.31.0"}
        ),
    )
    created = aa.runtime_environments.create(rg, account, name, params)
    assert created.name == name
    assert created.properties.default_packages == {"requests": "2.31.0"}
    assert aa.runtime_environments.get(rg, account, name).properties.runtime.version == "3.10"
    # Same runtime: an update.
    params.properties.default_packages = {}
    assert aa.runtime_environments.create(rg, account, name, params).properties.default_packages == {}
    # Language and version are immutable.
    changed = RuntimeEnvironment(
        location="eastus", properties=RuntimeEnvironmentProperties(runtime=RuntimeProperties(language="Python", version="3.8"))
    )
    with pytest.raises(HttpResponseError) as err:
        aa.runtime_environments.create(rg, account, name, changed)
    assert err.value.status_code == 400 and err.value.error.code == "BadRequest"
    aa.runtime_environments.delete(rg, account, name)
    with pytest.raises(ResourceNotFoundError):
        aa.runtime_environments.get(rg, account, name)
    # Seeded (system-generated) environments stay.
    with pytest.raises(HttpResponseError) as err:
        aa.runtime_environments.delete(rg, account, "PowerShell-7.4")
    assert err.value.status_code == 400


def test_runtime_environment_errors(aa, names):
    rg, account = names
    bad = RuntimeEnvironment(
        location="eastus", properties=RuntimeEnvironmentProperties(runtime=RuntimeProperties(language="Ruby", version="3.3"))
    )
    with pytest.raises(HttpResponseError) as err:
        aa.runtime_environments.create(rg, account, "Ruby-env", bad)
    assert err.value.status_code == 400
    with pytest.raises(HttpResponseError) as err:
        aa.runtime_environments.create(rg, account, "1-bad-name", bad)
    assert err.value.status_code == 400


# ---------------------------------------------------------------------------------------------
# Runbooks: draft → content → publish.


def test_draft_content_publish(aa, names, unique, control, automation_control):
    rg, account = names
    name = f"Rotate-Keys-{unique}"
    created = aa.runbook.create_or_update(rg, account, name, draft_params(description="rotates keys"))
    assert created.properties.state == "New"
    assert created.properties.runbook_type == "PowerShell"
    assert created.properties.runtime_environment == "PowerShell-7.4"
    assert created.type == "Microsoft.Automation/AutomationAccounts/Runbooks"
    assert created.etag
    assert created.properties.publish_content_link is None
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.get_content(rg, account, name)

    control.clear_journal()
    aa.runbook_draft.begin_replace_content(rg, account, name, SCRIPT, **FAST).result()
    entries = [e for e in control.journal() if e["api"] == "automation"]
    assert entries[0]["method"] == "PUT" and entries[0]["status"] == 202
    assert all("/draft/content/operationResults/" in e["path"] for e in entries[1:])
    assert [e["status"] for e in entries[1:]][-1] == 200

    edited = aa.runbook.get(rg, account, name)
    assert edited.properties.state == "Edit"
    assert edited.properties.draft.in_edit is True
    assert edited.properties.draft.draft_content_link.content_hash.value == sha256_upper(SCRIPT)
    assert edited.etag != created.etag
    assert aa.runbook_draft.get_content(rg, account, name) == SCRIPT

    control.clear_journal()
    aa.runbook.begin_publish(rg, account, name, **FAST).result()
    entries = [e for e in control.journal() if e["api"] == "automation"]
    assert entries[0]["method"] == "POST" and entries[0]["path"].endswith("/publish")
    assert entries[0]["status"] == 202
    polls = [e["status"] for e in entries if "/publish/operationResults/" in e["path"]]
    assert polls == [202, 202, 200]  # lro.polls = 2 (conftest)

    published = aa.runbook.get(rg, account, name)
    assert published.properties.state == "Published"
    assert published.properties.draft.in_edit is False
    link = published.properties.publish_content_link
    assert link.content_hash.algorithm == "SHA256"
    assert link.content_hash.value == sha256_upper(SCRIPT)
    assert aa.runbook.get_content(rg, account, name) == SCRIPT
    view = automation_control.runbooks()[name]
    assert view["publishCount"] == 1 and view["state"] == "Published"
    assert view["publishedContentHash"] == sha256_upper(SCRIPT)

    # A PUT of the existing runbook is a 200 replace: content and state stay.
    again = aa.runbook.create_or_update(rg, account, name, draft_params(description="v2"))
    assert again.properties.state == "Published" and again.properties.description == "v2"
    assert aa.runbook.get_content(rg, account, name) == SCRIPT

    # Editing again: Edit until the next publish; the published content stays readable.
    aa.runbook_draft.begin_replace_content(rg, account, name, SCRIPT + "# v2\n", **FAST).result()
    assert aa.runbook.get(rg, account, name).properties.state == "Edit"
    assert aa.runbook.get_content(rg, account, name) == SCRIPT
    aa.runbook.begin_publish(rg, account, name, **FAST).result()
    assert aa.runbook.get_content(rg, account, name) == SCRIPT + "# v2\n"
    assert automation_control.runbooks()[name]["publishCount"] == 2

    aa.runbook.delete(rg, account, name)
    with pytest.raises(ResourceNotFoundError) as err:
        aa.runbook.get(rg, account, name)
    assert err.value.error.code == "ResourceNotFound"
    assert name not in automation_control.runbooks()


def test_python_runbook(aa, names, unique):
    rg, account = names
    name = f"py_{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params("Python", "Python-3.10"))
    script = "print('hello')\n"
    aa.runbook_draft.begin_replace_content(rg, account, name, script, **FAST).result()
    aa.runbook.begin_publish(rg, account, name, **FAST).result()
    got = aa.runbook.get(rg, account, name)
    assert (got.properties.state, got.properties.runtime_environment) == ("Published", "Python-3.10")
    assert aa.runbook.get_content(rg, account, name) == script


def test_list_runbooks_across_pages(aa, names, unique, control):
    rg, account = names
    mine = {f"List-{unique}-{i}" for i in range(3)}
    for name in mine:
        aa.runbook.create_or_update(rg, account, name, draft_params())
    control.clear_journal()
    listed = {r.name: r for r in aa.runbook.list_by_automation_account(rg, account)}
    assert mine <= set(listed)
    assert all(listed[n].properties.state == "New" for n in mine)
    pages = [e for e in control.journal() if e["api"] == "automation"]
    assert len(pages) >= 2
    assert all("skiptoken" in e["query"] for e in pages[1:])
    for name in mine:
        aa.runbook.delete(rg, account, name)


def test_publish_failure_is_armed_per_runbook(aa, names, unique, automation_control):
    rg, account = names
    name = f"Fails-{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params())
    aa.runbook_draft.begin_replace_content(rg, account, name, SCRIPT, **FAST).result()
    automation_control.fail_publish(runbook=name, count=1)
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.begin_publish(rg, account, name, **FAST).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "BadRequest"
    got = aa.runbook.get(rg, account, name)
    assert got.properties.state == "Edit"
    assert got.properties.publish_content_link is None
    view = automation_control.runbooks()[name]
    assert (view["publishCount"], view["publishFailures"]) == (0, 1)
    # Only the next publish failed.
    aa.runbook.begin_publish(rg, account, name, **FAST).result()
    assert aa.runbook.get(rg, account, name).properties.state == "Published"
    assert automation_control.runbooks()[name]["publishCount"] == 1


def test_publish_duration_is_configurable(aa, names, unique, control, automation_control):
    rg, account = names
    name = f"Slow-{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params())
    aa.runbook_draft.begin_replace_content(rg, account, name, SCRIPT, **FAST).result()
    automation_control.settings(publishPolls=4, publishDurationMs=0)
    control.clear_journal()
    poller = aa.runbook.begin_publish(rg, account, name, **FAST)
    assert automation_control.runbooks()[name]["publishing"] == 1
    poller.result()
    polls = [e["status"] for e in control.journal() if "/publish/operationResults/" in e["path"]]
    assert polls == [202, 202, 202, 202, 200]
    assert automation_control.runbooks()[name]["publishing"] == 0


def test_runbook_errors(aa, names, unique):
    rg, account = names
    # A runtime environment the account does not have.
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.create_or_update(rg, account, f"Bad-Env-{unique}", draft_params(runtime="PowerShell-9.9"))
    assert err.value.status_code == 400 and err.value.error.code == "BadRequest"
    assert "PowerShell-9.9" in err.value.error.message
    # Runtime language and runbook type must agree.
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.create_or_update(rg, account, f"Mismatch-{unique}", draft_params("Python", "PowerShell-7.4"))
    assert err.value.status_code == 400
    # Name pattern ^[a-zA-Z][a-zA-Z-_0-9]*$.
    for bad in ("1-starts-with-digit", "has.dot"):
        with pytest.raises(HttpResponseError) as err:
            aa.runbook.create_or_update(rg, account, bad, draft_params())
        assert err.value.status_code == 400
    # PowerShell72 is a response value only.
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.create_or_update(rg, account, f"Ps72-{unique}", draft_params("PowerShell72", None))
    assert err.value.status_code == 400
    # publishContentLink cannot be fetched here.
    linked = RunbookCreateOrUpdateParameters(
        location="eastus",
        properties=RunbookCreateOrUpdateProperties(
            runbook_type="PowerShell",
            publish_content_link={"uri": "https://example.invalid/x.ps1"},
        ),
    )
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.create_or_update(rg, account, f"Linked-{unique}", linked)
    assert err.value.status_code == 400 and "publishContentLink" in err.value.error.message
    # Missing runbooks.
    missing = f"Missing-{unique}"
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.get(rg, account, missing)
    with pytest.raises(ResourceNotFoundError):
        aa.runbook_draft.begin_replace_content(rg, account, missing, SCRIPT, **FAST)
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.begin_publish(rg, account, missing, **FAST)
    # Publishing a runbook with no draft content.
    empty = f"Empty-{unique}"
    aa.runbook.create_or_update(rg, account, empty, draft_params())
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.begin_publish(rg, account, empty, **FAST)
    assert err.value.status_code == 400 and "no draft content" in err.value.error.message
    aa.runbook.delete(rg, account, empty)
    # Another account.
    with pytest.raises(ResourceNotFoundError):
        aa.runbook.get(rg, "aa-someone-else", empty)


def test_update_relinks_runtime_environment(aa, names, unique):
    rg, account = names
    name = f"Relink-{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params("Python", "Python-3.10"))
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.update(rg, account, name, {"properties": {"runtimeEnvironment": "PowerShell-7.4"}})
    assert err.value.status_code == 400
    got = aa.runbook.update(rg, account, name, {"properties": {"description": "d", "runtimeEnvironment": "python-3.10"}})
    assert (got.properties.description, got.properties.runtime_environment) == ("d", "Python-3.10")
    aa.runbook.delete(rg, account, name)
    aa.runbook.delete(rg, account, name)  # 204 the second time


def test_api_version_2023_11_01(stack, ca, credential, names, unique):
    rg, account = names
    old = make_client(stack, ca, credential, api_version="2023-11-01")
    name = f"Old-{unique}"
    created = old.runbook.create_or_update(rg, account, name, draft_params("Python3", None))
    assert created.properties.runtime_environment is None
    old.runbook_draft.begin_replace_content(rg, account, name, "print(1)\n", **FAST).result()
    old.runbook.begin_publish(rg, account, name, **FAST).result()
    assert old.runbook.get(rg, account, name).properties.state == "Published"
    with pytest.raises(HttpResponseError) as err:
        old.runbook.create_or_update(rg, account, f"Old2-{unique}", draft_params("Python", None))
    assert err.value.status_code == 400
    with pytest.raises(HttpResponseError) as err:
        list(old.runtime_environments.list_by_automation_account(rg, account))
    assert err.value.error.code == "InvalidApiVersionParameter"
    old.runbook.delete(rg, account, name)


def test_unknown_api_version(stack, ca, credential):
    resp = raw(stack, ca, credential, "GET", "/runbooks", params={"api-version": "2019-06-01"})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_draft_content_types(stack, ca, credential, aa, names, unique):
    rg, account = names
    name = f"Types-{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params())
    for ctype in ("text/powershell", "application/octet-stream", "text/x-python; charset=utf-8"):
        resp = raw(stack, ca, credential, "PUT", f"/runbooks/{name}/draft/content",
                   params={"api-version": API}, data=SCRIPT.encode(), headers={"Content-Type": ctype})
        assert resp.status_code == 202, (ctype, resp.text)
        assert "/draft/content/operationResults/" in resp.headers["Location"]
        assert "Retry-After" in resp.headers
    resp = raw(stack, ca, credential, "PUT", f"/runbooks/{name}/draft/content",
               params={"api-version": API}, json=SCRIPT)
    assert resp.status_code == 415
    resp = raw(stack, ca, credential, "POST", f"/runbooks/{name}/publish", params={"api-version": API})
    assert resp.status_code == 202
    location = resp.headers["Location"]
    assert f"/runbooks/{name}/publish/operationResults/" in location and "api-version=2024-10-23" in location
    resp = raw(stack, ca, credential, "GET", f"/runbooks/{name}/content", params={"api-version": API})
    assert resp.status_code == 404  # nothing observed the publish yet, so it has not finished
    aa.runbook.delete(rg, account, name)


def test_faults_scope_to_automation(stack, aa, names, unique, control):
    rg, account = names
    name = f"Faulty-{unique}"
    aa.runbook.create_or_update(rg, account, name, draft_params())
    control.clear_journal()
    control.fault(api="automation", kind="server-error", count=1)
    assert aa.runbook.get(rg, account, name).name == name
    statuses = [e["status"] for e in control.journal() if e["api"] == "automation"]
    assert statuses == [500, 200]
    control.fault(api="automation", kind="rbac", seconds=30, pathContains=name)
    with pytest.raises(HttpResponseError) as err:
        aa.runbook.begin_publish(rg, account, name, **FAST)
    assert err.value.status_code == 403 and err.value.error.code == "AuthorizationFailed"
    assert "Microsoft.Automation/automationAccounts/runbooks/publish/action" in err.value.error.message
    control.clear_faults()
    aa.runbook.delete(rg, account, name)


def test_account_lists_at_group_and_subscription_scope(aa, stack, control):
    """`automation_account.list_by_resource_group` / `.list` (the resource provider's collections)."""
    control.clear_journal()
    in_group = list(aa.automation_account.list_by_resource_group(stack["VIBEDATA_RESOURCE_GROUP"]))
    assert [a.name for a in in_group] == [stack["VIBEDATA_AUTOMATION_ACCOUNT"]]
    assert in_group[0].identity.type == "UserAssigned"
    assert [a.id for a in aa.automation_account.list()] == [in_group[0].id]
    assert {(e["api"], e["status"], e["mutating"]) for e in control.journal() if e["api"] != "identity"} == {
        ("automation", 200, False)
    }
