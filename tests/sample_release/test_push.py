"""scripts/sample-release push against a throwaway CNCF distribution registry (TLS +
htpasswd), as the local stack's publisher registry is.  Skipped when skopeo,
docker-registry, openssl or htpasswd is missing."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import ssl
import time
import urllib.error
import urllib.request

import pytest

from sample_release_helpers import layout, run_script  # noqa: F401 (layout is a fixture)

TOOLS = ("skopeo", "docker-registry", "openssl", "htpasswd")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs " + ", ".join(TOOLS))

USER, PASSWORD = "publisher", "sample-release-test-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("registry")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=sample-release-test-ca", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "certs.d").mkdir()
    shutil.copy(d / "ca.pem", d / "certs.d" / "ca.crt")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
    (d / "htpasswd").write_text(htpasswd.stdout)
    port = _free_port()
    (d / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(d / "data")}},
        "http": {"addr": f"127.0.0.1:{port}",
                 "tls": {"certificate": str(d / "server.pem"), "key": str(d / "server.key")}},
        "auth": {"htpasswd": {"realm": "sample-release-test", "path": str(d / "htpasswd")}},
    }))
    log = open(d / "registry.log", "wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=ctx, timeout=1)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"registry did not start: {(d / 'registry.log').read_text()}")
        time.sleep(0.05)
    try:
        yield {"host": f"127.0.0.1:{port}", "certs": d / "certs.d", "data": d / "data"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _push(layout_dir, reg, *extra, creds=f"{USER}:{PASSWORD}", check=True):
    proc = run_script("push", "--out", layout_dir, "--registry", reg["host"], "--creds", creds,
                      "--cert-dir", reg["certs"], *extra, check=check)
    return proc if not check else json.loads(proc.stdout)


def _storage_snapshot(root):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_push_verify_and_repush(layout, registry, tmp_path):
    root, summary = layout
    out = tmp_path / "push-layout"
    shutil.copytree(root, out)

    first = _push(out, registry)
    items = [i for i in summary["items"]]
    assert first["pushed"] == len(items) + 1  # the release manifest twice: <release> and latest
    assert first["unchanged"] == 0
    assert first["releaseManifest"] == summary["releaseManifest"]

    # Independently: every tag is at the layout's digest, the manifest also at `latest`.
    for item in items + [{**summary["items"][-1], "tag": "latest"}]:
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(registry["certs"]),
                              "--creds", f"{USER}:{PASSWORD}",
                              f"docker://{registry['host']}/{item['repository']}:{item['tag']}"],
                             check=True, capture_output=True, timeout=60).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == item["digest"], item

    before = _storage_snapshot(registry["data"])
    second = _push(out, registry)
    assert second["pushed"] == 0 and second["unchanged"] == len(items) + 1
    assert _storage_snapshot(registry["data"]) == before, "a second push must not touch the registry"


def test_push_with_wrong_credentials_fails(layout, registry):
    root, _ = layout
    proc = _push(root, registry, creds=f"{USER}:wrong", check=False)
    assert proc.returncode == 1
    assert "wrong" not in proc.stderr and "wrong" not in proc.stdout


def test_push_reads_the_stack_env_file(layout, registry, tmp_path):
    """`--push` with nothing but VIBEDATA_STACK_DIR: registry, credentials and CA from the stack dir."""
    root, summary = layout
    stack = tmp_path / "stack"
    (stack / "ca").mkdir(parents=True)
    shutil.copytree(registry["certs"], stack / "ca" / "certs.d")
    (stack / "env").write_text(
        f"export VIBEDATA_STACK_DIR={stack}\n"
        f"export VIBEDATA_PUBLISHER_REGISTRY={registry['host']}\n"
        f"export VIBEDATA_STACK_PUBLISHER_USER={USER}            # for scripts that push the sample release\n"
        f"export VIBEDATA_STACK_PUBLISHER_PASSWORD={PASSWORD}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBEDATA_")}
    env["VIBEDATA_STACK_DIR"] = str(stack)
    out = tmp_path / "layout"
    shutil.copytree(root, out)
    proc = run_script("push", "--out", out, env=env)
    result = json.loads(proc.stdout)
    assert result["registry"] == registry["host"]
    assert result["releaseManifest"] == summary["releaseManifest"]
