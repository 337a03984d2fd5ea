"""Pushing the sample release layout to a registry with skopeo, and verifying it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import sign
from .release import Item, Release


class PushError(Exception):
    pass


@dataclass
class Target:
    registry: str
    cert_dir: str | None
    authfile: str | None
    retry_times: int = 3

    def ref(self, repository: str, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"docker://{self.registry}/{repository}{sep}{tag_or_digest}"


def write_authfile(directory: str, registry: str, creds: str) -> str:
    """A containers-auth.json for ``registry`` (mode 0600), so no password is on any argv."""
    path = os.path.join(directory, "auth.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": {registry: {"auth": base64.b64encode(creds.encode()).decode()}}}, f)
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)


def remote_manifest(target: Target, repository: str, tag_or_digest: str) -> bytes | None:
    """The raw manifest bytes at a tag/digest, or None when the registry has none there."""
    argv = ["skopeo", "inspect", "--raw", "--retry-times", str(target.retry_times)]
    if target.cert_dir:
        argv += ["--cert-dir", target.cert_dir]
    if target.authfile:
        argv += ["--authfile", target.authfile]
    argv.append(target.ref(repository, tag_or_digest))
    proc = _run(argv)
    if proc.returncode == 0:
        return proc.stdout
    err = proc.stderr.decode(errors="replace")
    if "manifest unknown" in err or "name unknown" in err:
        return None
    raise PushError(f"skopeo inspect {target.ref(repository, tag_or_digest)} failed: {err.strip()}")


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _child_digests(item: Item) -> list[str]:
    if item.media_type.endswith("index.v1+json"):
        return [m["digest"] for m in json.loads(item.manifest)["manifests"]]
    return []


def _copy(target: Target, layout: Path, item: Item, tag: str) -> None:
    argv = ["skopeo", "copy", "--all", "--preserve-digests", "--quiet",
            "--retry-times", str(target.retry_times)]
    if target.cert_dir:
        argv += ["--dest-cert-dir", target.cert_dir]
    if target.authfile:
        argv += ["--dest-authfile", target.authfile]
    argv += [f"oci:{layout}:{item.ref}", target.ref(item.repository, tag)]
    proc = _run(argv)
    if proc.returncode != 0:
        raise PushError(f"{' '.join(shlex.quote(a) for a in argv)} failed: "
                        f"{proc.stderr.decode(errors='replace').strip()}")


def _push_one(target: Target, layout: Path, item: Item, tag: str, force: bool) -> dict:
    started = time.monotonic()
    before = None if force else remote_manifest(target, item.repository, tag)
    if before is not None and _digest(before) == item.digest:
        status = "unchanged"
    else:
        _copy(target, layout, item, tag)
        status = "pushed"
        after = remote_manifest(target, item.repository, tag)
        got = _digest(after) if after is not None else None
        if got != item.digest:
            raise PushError(f"{item.repository}:{tag} is at {got} after the push, expected {item.digest}")
    # For an index, the platform manifests must be there by digest too.
    for child in _child_digests(item):
        raw = remote_manifest(target, item.repository, child)
        if raw is None or _digest(raw) != child:
            raise PushError(f"{item.repository}@{child} is missing or differs after the push")
    return {"repository": item.repository, "tag": tag, "digest": item.digest, "status": status,
            "seconds": round(time.monotonic() - started, 3)}


def push_release(rel: Release, layout: Path, registry: str, creds: str | None,
                 cert_dir: str | None, jobs: int = 4, force: bool = False) -> dict:
    if shutil.which("skopeo") is None:
        raise PushError("skopeo is not installed (apt-get install -y skopeo)")
    layout = Path(layout).resolve()
    if ":" in str(layout):
        raise PushError(f"the layout path {layout} contains ':', which skopeo's oci: transport cannot take")
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="sample-release-auth-")
    try:
        authfile = write_authfile(tmp, registry, creds) if creds else None
        target = Target(registry, cert_dir, authfile)
        # Everything the release manifest pins goes first; the manifest last, so that
        # whoever sees its tag move finds everything it names already in place.
        pinned = [i for i in rel.items if i.kind != "release-manifest"]
        results: list[dict] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results += list(pool.map(lambda i: _push_one(target, layout, i, i.tag, force), pinned))
        for item in rel.item("release-manifest"):
            for tag in (item.tag, *item.extra_tags):
                results.append(_push_one(target, layout, item, tag, force))
        for item in rel.item("release-manifest"):
            results += push_signatures(registry, creds, cert_dir, item.repository, item.manifest, item.media_type)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "release": rel.release,
        "registry": registry,
        "pushed": sum(r["status"] == "pushed" for r in results),
        "unchanged": sum(r["status"] == "unchanged" for r in results),
        "seconds": round(time.monotonic() - started, 3),
        "items": results,
    }


def _registry_call(base: str, ctx, auth: str | None, method: str, path: str, body: bytes | None = None,
                   content_type: str | None = None, accept: str | None = None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(path if path.startswith("https://") else base + path, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    if content_type:
        req.add_header("Content-Type", content_type)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _context(cert_dir: str | None):
    import ssl
    ca = os.path.join(cert_dir, "ca.crt") if cert_dir else os.environ.get("VIBEDATA_CA_FILE")
    return ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()


def sign_remote(registry: str, creds: str | None, cert_dir: str | None, repo: str, tag: str) -> list[dict]:
    """Signs whatever OCI manifest ``repo:tag`` holds now (tests that push their own releases)."""
    import urllib.request
    req = urllib.request.Request(f"https://{registry}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    if creds:
        req.add_header("Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
    with urllib.request.urlopen(req, context=_context(cert_dir), timeout=60) as resp:
        raw, media_type = resp.read(), resp.headers.get("Content-Type", "").split(";")[0]
    return push_signatures(registry, creds, cert_dir, repo, raw, media_type)


def push_signatures(registry: str, creds: str | None, cert_dir: str | None, repo: str, manifest_bytes: bytes,
                    media_type: str) -> list[dict]:
    """The sample release manifest's fixture signatures (JWS and COSE), as a publisher on an
    OCI 1.0 registry pushes them: each signature manifest by digest, then the referrers tag
    schema index ``sha256-<hex>`` listing both (CNCF distribution 2.8 has no referrers API)."""
    ctx = _context(cert_dir)
    base = f"https://{registry}"
    subject = {"mediaType": media_type, "digest": sign._digest(manifest_bytes), "size": len(manifest_bytes)}
    results, manifests = [], []

    def check(status: int, what: str, body: bytes) -> None:
        if status not in (200, 201, 202):
            raise PushError(f"{what}: HTTP {status} {body[:200].decode(errors='replace')}")

    for manifest, blobs in sign.signatures(subject):
        for digest, data in blobs.items():
            status, _, _ = _registry_call(base, ctx, creds, "HEAD", f"/v2/{repo}/blobs/{digest}")
            if status == 200:
                continue
            status, headers, body = _registry_call(base, ctx, creds, "POST", f"/v2/{repo}/blobs/uploads/")
            check(status, f"starting the upload of {repo}@{digest}", body)
            location = headers.get("Location") or headers.get("location")
            location = location if location.startswith("https://") else base + location
            sep = "&" if "?" in location else "?"
            status, _, body = _registry_call(base, ctx, creds, "PUT", f"{location}{sep}digest={digest}", data,
                                             "application/octet-stream")
            check(status, f"uploading {repo}@{digest}", body)
        digest = sign._digest(manifest)
        manifests.append(manifest)
        # A second push touches nothing: what is already there by digest stays.
        if _remote_digest(base, ctx, creds, repo, digest) == digest:
            results.append({"repository": repo, "tag": None, "digest": digest, "status": "unchanged signature"})
            continue
        status, _, body = _registry_call(base, ctx, creds, "PUT", f"/v2/{repo}/manifests/{digest}", manifest,
                                         "application/vnd.oci.image.manifest.v1+json")
        check(status, f"pushing the signature {repo}@{digest}", body)
        results.append({"repository": repo, "tag": None, "digest": digest, "status": "signature"})
    index = sign.referrers_index(manifests)
    tag = sign.tag_schema(subject["digest"])
    if _remote_digest(base, ctx, creds, repo, tag) == sign._digest(index):
        results.append({"repository": repo, "tag": tag, "digest": sign._digest(index), "status": "unchanged index"})
        return results
    status, _, body = _registry_call(base, ctx, creds, "PUT", f"/v2/{repo}/manifests/{tag}", index,
                                     "application/vnd.oci.image.index.v1+json")
    check(status, f"pushing the referrers index {repo}:{tag}", body)
    results.append({"repository": repo, "tag": tag, "digest": sign._digest(index), "status": "referrers-index"})
    return results


def _remote_digest(base: str, ctx, creds: str | None, repo: str, reference: str) -> str | None:
    status, headers, _ = _registry_call(base, ctx, creds, "HEAD", f"/v2/{repo}/manifests/{reference}",
                                        accept="application/vnd.oci.image.manifest.v1+json, "
                                               "application/vnd.oci.image.index.v1+json")
    return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest") if status == 200 else None
