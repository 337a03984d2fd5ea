"""The sample release is deterministic, and its layout is a valid OCI layout holding
what DESIGN.md section 4 says a release holds.

The structural checks below deliberately re-derive everything from the bytes on disk
with the standard library (tarfile, gzip, hashlib, json) instead of reusing the
generator's code.
"""

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from sample_release_helpers import build, layout, run_script  # noqa: F401 (layout is a fixture)

# Pinned: the digest of the 2026.11.0 release manifest.  It pins every other digest of
# the release, so any change of any byte anywhere in the sample release changes it.
# If you changed the content on purpose, update this constant; if you did not, the
# generator is not deterministic on this machine, which is a bug.
PINNED_RELEASE = "2026.11.0"
PINNED_RELEASE_MANIFEST_DIGEST = "sha256:1b26b7b1fa92c99b7007e0e40b17447fb72b5bf8b35ec7eae1c64c4ba27c8236"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()
AT_RUNBOOK = "application/vnd.vibedata.runbook.v1"
MT_RUNBOOK_LAYER = "application/vnd.vibedata.runbook.layer.v1.tar+gzip"
AT_MIGRATIONS = "application/vnd.vibedata.migrations.v1"
MT_MIGRATIONS_LAYER = "application/vnd.vibedata.migrations.layer.v1.tar+gzip"
AT_RELEASE = "application/vnd.vibedata.release.manifest.v1+json"
REF = "org.opencontainers.image.ref.name"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
RUNBOOK_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z-_0-9]*$")
SQLX_NAME_RE = re.compile(r"^[0-9]+_[A-Za-z0-9_]+\.sql$")
REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


# helpers ---------------------------------------------------------------------

def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(root: Path, digest: str) -> bytes:
    assert DIGEST_RE.match(digest), digest
    return (root / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def fetch(root: Path, desc: dict) -> bytes:
    data = blob(root, desc["digest"])
    assert len(data) == desc["size"], f"size of {desc['digest']}: {len(data)} != {desc['size']}"
    assert sha(data) == desc["digest"]
    return data


def index_entries(root: Path) -> list:
    return json.loads((root / "index.json").read_bytes())["manifests"]


def entries_by_kind(root: Path, kind: str) -> list:
    return [e for e in index_entries(root) if e["annotations"]["io.vibedata.sample-release.kind"] == kind]


def gunzip(data: bytes) -> bytes:
    # Deterministic gzip: MTIME 0 and no FNAME (flag bits all clear).
    assert data[:3] == b"\x1f\x8b\x08", "not gzip/deflate"
    assert data[3] == 0, "gzip flags set (file name, comment or extra field present)"
    assert data[4:8] == b"\0\0\0\0", "gzip MTIME is not 0"
    return gzip.decompress(data)


def tar_members(tar: bytes) -> list:
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        members = tf.getmembers()
        return [(m, tf.extractfile(m).read() if m.isreg() else None) for m in members]


def release_doc(root: Path) -> tuple[dict, bytes]:
    (entry,) = entries_by_kind(root, "release-manifest")
    manifest = json.loads(fetch(root, entry))
    (layer,) = manifest["layers"]
    raw = fetch(root, layer)
    return json.loads(raw), raw


def walk_manifests(root: Path, desc: dict, seen: list) -> None:
    """Every manifest reachable from ``desc``; asserts every descriptor resolves."""
    data = fetch(root, desc)
    doc = json.loads(data)
    assert doc["schemaVersion"] == 2
    assert doc.get("mediaType") == desc["mediaType"]
    seen.append((desc, doc))
    if desc["mediaType"] == MT_INDEX:
        for child in doc["manifests"]:
            walk_manifests(root, child, seen)
    else:
        assert desc["mediaType"] == MT_MANIFEST
        fetch(root, doc["config"])
        for layer in doc["layers"]:
            fetch(root, layer)


# determinism -----------------------------------------------------------------

def test_two_builds_are_byte_identical(layout, tmp_path):
    first, summary = layout
    second = tmp_path / "second"
    assert build(second) == {**summary, "layout": str(second.resolve())}
    a, b = tree(first), tree(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs between two builds"


def test_pinned_release_manifest_digest(layout):
    root, summary = layout
    assert summary["release"] == PINNED_RELEASE
    assert summary["releaseManifest"]["digest"] == PINNED_RELEASE_MANIFEST_DIGEST
    (entry,) = entries_by_kind(root, "release-manifest")
    assert entry["digest"] == PINNED_RELEASE_MANIFEST_DIGEST


def test_rebuild_in_place_changes_nothing(layout, tmp_path):
    root, _ = layout
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    again = build(copy)
    assert again["layoutChanges"] == {"blobsWritten": 0, "blobsKept": len(list((root / "blobs/sha256").iterdir())),
                                      "blobsRemoved": 0}
    assert tree(copy) == tree(root)


def test_other_release_differs_but_shares_base_layers(layout, tmp_path):
    root, summary = layout
    other = tmp_path / "other"
    s2 = build(other, "--release", "2026.12.0")
    assert s2["release"] == "2026.12.0"
    assert s2["releaseManifest"]["digest"] != summary["releaseManifest"]["digest"]
    doc, _ = release_doc(other)
    assert doc["release"] == "2026.12.0"
    assert all(i["tag"] == "2026.12.0" for i in doc["images"])
    blobs1 = set(p.name for p in (root / "blobs/sha256").iterdir())
    blobs2 = set(p.name for p in (other / "blobs/sha256").iterdir())
    assert blobs1 & blobs2, "two releases should share their base layers"
    assert blobs1 != blobs2
    # Rebuilding the first release over the second replaces it exactly (stale blobs pruned).
    build(other)
    assert tree(other) == tree(root)


def test_refuses_to_write_into_a_foreign_directory(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    proc = run_script("build", "--out", foreign, check=False)
    assert proc.returncode == 2
    assert (foreign / "keep.txt").read_text() == "mine"
    assert not (foreign / "blobs").exists()


def test_bad_release_name_is_usage_error(tmp_path):
    proc = run_script("build", "--out", tmp_path / "x", "--release", "../etc", check=False)
    assert proc.returncode == 2


# layout structure ------------------------------------------------------------

def test_layout_files(layout):
    root, _ = layout
    assert json.loads((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_bytes())
    assert index["schemaVersion"] == 2 and index["mediaType"] == MT_INDEX
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_dir():
            assert str(rel) in ("blobs", "blobs/sha256"), rel
        else:
            assert str(rel) in ("oci-layout", "index.json") or rel.parts[:2] == ("blobs", "sha256"), rel


def test_blobs_are_content_addressed(layout):
    root, _ = layout
    for path in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_every_blob_is_referenced_and_every_reference_resolves(layout):
    root, _ = layout
    seen = []
    for entry in index_entries(root):
        walk_manifests(root, entry, seen)
    referenced = set()
    for desc, doc in seen:
        referenced.add(desc["digest"])
        if desc["mediaType"] == MT_MANIFEST:
            referenced.add(doc["config"]["digest"])
            referenced.update(l["digest"] for l in doc["layers"])
    on_disk = {"sha256:" + p.name for p in (root / "blobs" / "sha256").iterdir()}
    assert on_disk == referenced


def test_refs_and_summary(layout):
    root, summary = layout
    entries = index_entries(root)
    refs = [e["annotations"][REF] for e in entries]
    # 16 images, 4 runbooks, the migrations, the chart, the AI definitions, the manifest.
    assert len(refs) == len(set(refs)) == 24
    by_ref = {e["annotations"][REF]: e for e in entries}
    assert [i["ref"] for i in summary["items"]] == refs
    for item in summary["items"]:
        assert item["ref"] == f"{item['repository']}:{item['tag']}"
        assert REPO_RE.match(item["repository"]), item["repository"]
        assert by_ref[item["ref"]]["digest"] == item["digest"]
        assert by_ref[item["ref"]]["mediaType"] == item["mediaType"]
    assert "vibedata/api:2026.11.0" in by_ref
    assert "vibedata/runbooks/rotate-keys:2026.11.0" in by_ref
    assert "vibedata/db-migrations:2026.11.0" in by_ref
    assert "vibedata/release-manifest:2026.11.0" in by_ref
    assert "vibedata/charts/airbyte:2.2.0" in by_ref, "a chart is tagged with its version, as helm push does"
    assert "vibedata/ai-definitions:2026.11.0" in by_ref


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_resolves_every_ref(layout):
    root, _ = layout
    for entry in index_entries(root):
        ref = entry["annotations"][REF]
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{root}:{ref}"], capture_output=True, check=True,
                             timeout=60).stdout
        assert sha(raw) == entry["digest"], ref


# images ----------------------------------------------------------------------

def test_images(layout):
    root, _ = layout
    images = entries_by_kind(root, "image")
    assert 14 <= len(images) <= 18
    indexes = [e for e in images if e["mediaType"] == MT_INDEX]
    assert len(indexes) == 1, "exactly one image is a multi-arch index"
    layer_use: dict[str, int] = {}
    manifests = 0
    for entry in images:
        seen = []
        walk_manifests(root, entry, seen)
        if entry["mediaType"] == MT_INDEX:
            index = seen[0][1]
            platforms = sorted(m["platform"]["architecture"] for m in index["manifests"])
            assert platforms == ["amd64", "arm64"]
            assert all(m["platform"]["os"] == "linux" for m in index["manifests"])
        for desc, doc in seen:
            if desc["mediaType"] != MT_MANIFEST:
                continue
            manifests += 1
            assert "artifactType" not in doc
            assert doc["config"]["mediaType"] == MT_CONFIG
            config = json.loads(fetch(root, doc["config"]))
            assert config["os"] == "linux"
            assert config["architecture"] in ("amd64", "arm64")
            if entry["mediaType"] == MT_MANIFEST:
                assert config["architecture"] == "amd64"
            assert 2 <= len(doc["layers"]) <= 4
            assert config["rootfs"]["type"] == "layers"
            diff_ids = []
            for layer in doc["layers"]:
                assert layer["mediaType"] == MT_LAYER
                tar = gunzip(fetch(root, layer))
                diff_ids.append(sha(tar))
                for member, _ in tar_members(tar):
                    assert member.mtime == 0 and member.uid == 0 and member.gid == 0, member.name
                    assert member.isreg() or member.isdir(), member.name
                    assert not member.name.startswith("/") and ".." not in member.name.split("/")
                names = [m.name for m, _ in tar_members(tar)]
                assert names == sorted(names), "tar entries are sorted"
                if config["architecture"] == "amd64":
                    layer_use[layer["digest"]] = layer_use.get(layer["digest"], 0) + 1
            assert config["rootfs"]["diff_ids"] == diff_ids
            assert len(config["history"]) == len(doc["layers"])
    amd64_manifests = len(images)
    shared = sorted(layer_use.values(), reverse=True)
    assert shared[0] == amd64_manifests, "a base layer is shared by every amd64 image"
    assert shared[1] >= amd64_manifests // 2, "a runtime layer is shared by most images"
    sizes = [len(blob(root, d)) for d in layer_use]
    assert min(sizes) >= 4 * 1024 and max(sizes) <= 1536 * 1024
    assert manifests == len(images) + 1


# artifacts -------------------------------------------------------------------

def artifact_layer(root: Path, entry: dict, artifact_type: str, layer_type: str) -> bytes:
    assert entry["mediaType"] == MT_MANIFEST
    doc = json.loads(fetch(root, entry))
    assert doc["mediaType"] == MT_MANIFEST
    assert doc["artifactType"] == artifact_type
    assert doc["config"] == {"mediaType": MT_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
    assert fetch(root, doc["config"]) == b"{}"
    (layer,) = doc["layers"]
    assert layer["mediaType"] == layer_type
    return fetch(root, layer)


def test_runbooks(layout):
    root, _ = layout
    doc, _ = release_doc(root)
    entries = {e["annotations"][REF]: e for e in entries_by_kind(root, "runbook")}
    assert 3 <= len(doc["runbooks"]) <= 4 and len(entries) == len(doc["runbooks"])
    exts = {"PowerShell": ".ps1", "Python": ".py"}
    types = set()
    for rb in doc["runbooks"]:
        assert RUNBOOK_NAME_RE.match(rb["name"])
        types.add(rb["runbookType"])
        runtime = {"PowerShell": r"^PowerShell-7\.\d+$", "Python": r"^Python-3\.\d+$"}[rb["runbookType"]]
        assert re.match(runtime, rb["runtimeEnvironment"])
        entry = entries[f"{rb['artifact']['repository']}:{doc['release']}"]
        assert entry["digest"] == rb["artifact"]["digest"]
        members = tar_members(gunzip(artifact_layer(root, entry, AT_RUNBOOK, MT_RUNBOOK_LAYER)))
        assert len(members) == 1, "a runbook tar holds exactly one entry"
        (member, content), = members
        assert member.isreg()
        assert member.name == rb["name"] + exts[rb["runbookType"]]
        assert member.mtime == 0 and member.uid == 0 and member.gid == 0
        text = content.decode("utf-8")
        assert b"\r" not in content and text.endswith("\n") and len(text) > 200
        if rb["runbookType"] == "Python":
            compile(text, member.name, "exec")
        else:
            assert "param(" in text
    assert types == {"PowerShell", "Python"}


def test_migrations(layout):
    root, _ = layout
    doc, _ = release_doc(root)
    (entry,) = entries_by_kind(root, "migrations")
    assert entry["digest"] == doc["migrations"]["artifact"]["digest"]
    assert entry["annotations"][REF] == f"{doc['migrations']['artifact']['repository']}:{doc['release']}"
    members = tar_members(gunzip(artifact_layer(root, entry, AT_MIGRATIONS, MT_MIGRATIONS_LAYER)))
    assert 4 <= len(members) <= 6
    names = [m.name for m, _ in members]
    assert names == sorted(names)
    versions = []
    no_tx = 0
    for member, content in members:
        assert member.isreg() and "/" not in member.name and SQLX_NAME_RE.match(member.name), member.name
        versions.append(int(member.name.split("_", 1)[0]))
        text = content.decode("utf-8")
        assert "vibedata_app." in text
        if text.startswith("-- no-transaction\n"):
            no_tx += 1
            assert "CONCURRENTLY" in text
            # sqlx sends a no-transaction file as one simple query; more than one statement would
            # run in an implicit transaction, where CREATE INDEX CONCURRENTLY fails.
            assert text.count(";") == 1
    assert no_tx == 1
    assert len(set(versions)) == len(versions)
    assert "CREATE SCHEMA IF NOT EXISTS vibedata_app;" in members[0][1].decode()


def test_release_manifest_document(layout):
    root, _ = layout
    (entry,) = entries_by_kind(root, "release-manifest")
    artifact_layer(root, entry, AT_RELEASE, AT_RELEASE)
    doc, raw = release_doc(root)
    # Canonical serialization: sorted keys, 2-space indent, trailing newline.
    assert raw == (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    assert set(doc) == {"schemaVersion", "release", "images", "runbooks", "migrations", "charts", "ai"}
    assert doc["schemaVersion"] == 2 and doc["release"] == PINNED_RELEASE
    by_ref = {e["annotations"][REF]: e for e in index_entries(root)}

    def check_repo(repo):
        assert REPO_RE.match(repo), repo
        first = repo.split("/")[0]
        assert "." not in first and ":" not in first and first != "localhost", "repositories are relative"

    assert len(doc["images"]) == len(entries_by_kind(root, "image"))
    for image in doc["images"]:
        assert set(image) == {"repository", "tag", "digest"}
        check_repo(image["repository"])
        assert DIGEST_RE.match(image["digest"])
        assert by_ref[f"{image['repository']}:{image['tag']}"]["digest"] == image["digest"]
    for rb in doc["runbooks"]:
        assert set(rb) == {"name", "runbookType", "runtimeEnvironment", "artifact"}
        assert set(rb["artifact"]) == {"repository", "digest"}
        check_repo(rb["artifact"]["repository"])
        assert rb["artifact"]["repository"].startswith("vibedata/runbooks/")
        assert DIGEST_RE.match(rb["artifact"]["digest"])
    assert set(doc["migrations"]) == {"artifact"}
    assert set(doc["migrations"]["artifact"]) == {"repository", "digest"}
    check_repo(doc["migrations"]["artifact"]["repository"])
    assert DIGEST_RE.match(doc["migrations"]["artifact"]["digest"])


# charts and AI definitions -----------------------------------------------------

def _tgz_members(data: bytes) -> dict[str, bytes]:
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def test_chart_is_a_helm_oci_artifact_with_airbyte_v2_shape(layout):
    root, _ = layout
    (entry,) = entries_by_kind(root, "chart")
    m = json.loads(blob(root, entry["digest"]))
    assert m["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    config = json.loads(blob(root, m["config"]["digest"]))
    assert (config["name"], config["version"], config["apiVersion"]) == ("airbyte", "2.2.0", "v2")
    (layer,) = m["layers"]
    assert layer["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    files = _tgz_members(blob(root, layer["digest"]))
    assert "airbyte/Chart.yaml" in files and "airbyte/values.yaml" in files
    values = files["airbyte/values.yaml"].decode()
    for key in ("secretName: airbyte-config-secrets", "registry:", "connectionStringSecretKey:", "userSecretKey:"):
        assert key in values, key
    templates = "".join(v.decode() for k, v in files.items() if k.startswith("airbyte/templates/"))
    for image in ("server", "worker", "bootloader"):
        assert f'"name" "{image}"' in templates, image
    assert 'eq .Values.global.storage.type "azure"' in templates
    doc, _ = release_doc(root)
    (chart,) = doc["charts"]
    assert chart == {"name": "airbyte", "version": "2.2.0", "namespace": "airbyte",
                     "artifact": {"repository": "vibedata/charts/airbyte", "digest": entry["digest"]}}
    repos = {i["repository"] for i in doc["images"]}
    assert {"vibedata/airbyte-server", "vibedata/airbyte-worker", "vibedata/airbyte-bootloader"} <= repos


def test_ai_definitions_are_one_tar_of_json(layout):
    root, _ = layout
    (entry,) = entries_by_kind(root, "ai")
    data = artifact_layer(root, entry, "application/vnd.vibedata.ai.v1", "application/vnd.vibedata.ai.layer.v1.tar+gzip")
    files = {k: json.loads(v) for k, v in _tgz_members(data).items()}
    assert sorted(files) == ["foundry/agents/assistant.json", "foundry/agents/triage.json",
                             "foundry/indexes/docs-index.json", "search/indexes/vibedata-docs.json",
                             "search/indexes/vibedata-tickets.json"]
    for name, index in files.items():
        if name.startswith("search/indexes/"):
            keys = [f for f in index["fields"] if f.get("key")]
            assert len(keys) == 1 and keys[0]["type"] == "Edm.String", name
    hosted = files["foundry/agents/assistant.json"]["definition"]
    assert hosted["kind"] == "hosted"
    doc, _ = release_doc(root)
    assert hosted["container_configuration"]["image"] in {i["repository"] for i in doc["images"]}
