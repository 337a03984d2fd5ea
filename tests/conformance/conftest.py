"""Fixtures for the emulator conformance tests.

The tests run Microsoft's Python SDK clients, unmodified, against a running local stack. They
find it through `$VIBEDATA_STACK_DIR/env` (lines `export K=V`, written by `scripts/stack up`):
ports, the CA, the identity and the control API. Without `VIBEDATA_STACK_DIR` every test is
skipped with a message saying so.
"""

import base64
import json
import os
import shlex
import uuid
from pathlib import Path

import pytest
import requests


def _read_env_file(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("export") else line.strip()
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export "):].partition("=")
        # Values may be shell-quoted; a trailing comment is not part of the value.
        parts = shlex.split(value, comments=True)
        env[key.strip()] = parts[0] if parts else ""
    return env


@pytest.fixture(scope="session")
def stack() -> dict:
    stack_dir = os.environ.get("VIBEDATA_STACK_DIR")
    if not stack_dir:
        pytest.skip("VIBEDATA_STACK_DIR is not set: start the stack (scripts/stack up) and export it")
    env = _read_env_file(Path(stack_dir) / "env")
    # The SDK credentials read these from the process environment, as in Azure Functions.
    for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        os.environ[key] = env[key]
    os.environ["REQUESTS_CA_BUNDLE"] = env["VIBEDATA_CA_FILE"]
    os.environ.pop("MSI_ENDPOINT", None)
    os.environ.pop("MSI_SECRET", None)
    return env


@pytest.fixture(scope="session")
def ca(stack) -> str:
    return stack["VIBEDATA_CA_FILE"]


@pytest.fixture
def credential(stack):
    """A fresh credential per test: `POST /_emulator/identity/expire` revokes every token
    issued so far, and a shared credential would keep serving a revoked one from its cache."""
    from azure.identity import ManagedIdentityCredential

    # The deployer: the emulator's grant table never restricts it (the bootstrap identity holds
    # only the template's roles, which are for the binary, not for these conformance checks).
    return ManagedIdentityCredential(client_id=stack["VIBEDATA_STACK_DEPLOYER_CLIENT_ID"])


class Control:
    """The emulator's `/_emulator` control API."""

    def __init__(self, base: str, ca: str):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.verify = ca

    def _ok(self, resp):
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def journal(self) -> list:
        return self._ok(self.session.get(f"{self.base}/journal"))

    def clear_journal(self):
        self._ok(self.session.delete(f"{self.base}/journal"))

    def fault(self, **spec):
        return self._ok(self.session.post(f"{self.base}/faults", json=spec))

    def clear_faults(self):
        self._ok(self.session.delete(f"{self.base}/faults"))

    def set_lro(self, polls: int, retry_after: int):
        return self._ok(self.session.put(f"{self.base}/lro", json={"polls": polls, "retryAfter": retry_after}))

    def expire_tokens(self):
        return self._ok(self.session.post(f"{self.base}/identity/expire"))

    def registry_network(self, **patch):
        return self._ok(self.session.put(f"{self.base}/registry-network", json=patch))

    def imports(self) -> list:
        return self._ok(self.session.get(f"{self.base}/imports"))

    def imports_text(self) -> str:
        resp = self.session.get(f"{self.base}/imports")
        resp.raise_for_status()
        return resp.text

    def set_import(self, duration_ms: int):
        return self._ok(self.session.put(f"{self.base}/import", json={"durationMs": duration_ms}))


@pytest.fixture
def control(stack, ca):
    ctl = Control(stack["VIBEDATA_EMULATOR_CONTROL"], ca)
    ctl.clear_faults()
    # Fast LROs for tests; the default Retry-After of 1 s would make every poll wait.
    ctl.set_lro(polls=2, retry_after=0)
    yield ctl
    ctl.clear_faults()
    ctl.set_lro(polls=2, retry_after=1)


@pytest.fixture
def unique():
    """A short unique suffix for names, so reruns against one stack do not collide."""
    return uuid.uuid4().hex[:8]


def jwt_parts(token: str):
    """(header, claims) of a JWT, without verifying it."""

    def decode(part):
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    header, claims, _ = token.split(".")
    return decode(header), decode(claims)


@pytest.fixture(scope="session")
def emulator_config(stack) -> dict:
    """`$VIBEDATA_STACK_DIR/emulator.json`: for what the env file does not carry (e.g. the
    registry token issuer)."""
    return json.loads((Path(stack["VIBEDATA_STACK_DIR"]) / "emulator.json").read_text())
