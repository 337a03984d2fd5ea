"""The sample release: what it contains, and how it is assembled into an OCI layout.

Everything is a pure function of the release name: same input, same bytes, on any
machine.  Base layers (``base-os`` and the runtimes) do not depend on the release, so
two releases share them the way real releases do; application layers, image configs
and the release manifest do.  Runbooks and migrations do not depend on the release.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import oci

DEFAULT_RELEASE = "2026.11.0"
CREATED = "2026-11-01T00:00:00Z"
RELEASE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # a valid registry tag

AT_RUNBOOK = "application/vnd.vibedata.runbook.v1"
MT_RUNBOOK_LAYER = "application/vnd.vibedata.runbook.layer.v1.tar+gzip"
AT_MIGRATIONS = "application/vnd.vibedata.migrations.v1"
MT_MIGRATIONS_LAYER = "application/vnd.vibedata.migrations.layer.v1.tar+gzip"
AT_AI = "application/vnd.vibedata.ai.v1"
MT_AI_LAYER = "application/vnd.vibedata.ai.layer.v1.tar+gzip"
MT_HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
MT_HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
AT_RELEASE_MANIFEST = "application/vnd.vibedata.release.manifest.v1+json"
MT_RELEASE_MANIFEST_LAYER = "application/vnd.vibedata.release.manifest.v1+json"

ANN_KIND = "io.vibedata.sample-release.kind"
MIGRATIONS_REPOSITORY = "vibedata/db-migrations"
AI_REPOSITORY = "vibedata/ai-definitions"
RELEASE_MANIFEST_REPOSITORY = "vibedata/release-manifest"
RUNBOOK_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z-_0-9]*$")

DATA_DIR = Path(__file__).resolve().parent / "data"

KiB = 1024


# Content definitions ---------------------------------------------------------

@dataclass(frozen=True)
class ImageDef:
    name: str                 # repository is vibedata/<name>
    runtime: str | None       # shared runtime layer, or None for a static binary
    app_kib: int              # size of the application binary
    extra: tuple[tuple[str, int], ...] = ()  # (layer name, KiB): further image-specific layers
    arches: tuple[str, ...] = ("amd64",)     # more than one: published as an OCI image index
    port: int | None = None


IMAGES: tuple[ImageDef, ...] = (
    ImageDef("api", "native", 192, port=8080),
    ImageDef("auth", "native", 112, port=8081),
    ImageDef("catalog", "python", 64, extra=(("plugins", 24),), port=8082),
    ImageDef("exporter", "native", 40),
    ImageDef("gateway", "native", 128, port=8443),
    ImageDef("health-probe", None, 8),
    ImageDef("ingest", "native", 224, extra=(("connectors", 128),)),
    ImageDef("notifier", "native", 48),
    ImageDef("query-engine", "native", 320, extra=(("udfs", 32),), port=8090),
    ImageDef("scheduler", "native", 96),
    ImageDef("web", "node", 256, extra=(("assets", 64),), arches=("amd64", "arm64"), port=3000),
    ImageDef("worker", "native", 160),
    # The images the Airbyte chart renders, and the hosted agent's image.
    ImageDef("airbyte-server", None, 24, port=8001),
    ImageDef("airbyte-worker", None, 16),
    ImageDef("airbyte-bootloader", None, 8),
    ImageDef("assistant", None, 16, port=8088),
)


@dataclass(frozen=True)
class ChartDef:
    name: str
    version: str
    namespace: str

    @property
    def repository(self) -> str:
        return "vibedata/charts/" + self.name


CHARTS: tuple[ChartDef, ...] = (ChartDef("airbyte", "2.2.0", "airbyte"),)


@dataclass(frozen=True)
class RunbookDef:
    name: str
    runbook_type: str         # PowerShell | Python
    runtime_environment: str

    @property
    def file_name(self) -> str:
        return self.name + (".ps1" if self.runbook_type == "PowerShell" else ".py")

    @property
    def repository(self) -> str:
        return "vibedata/runbooks/" + self.name.lower().replace("_", "-")


RUNBOOKS: tuple[RunbookDef, ...] = (
    RunbookDef("Purge_Staging", "Python", "Python-3.10"),
    RunbookDef("Refresh-Tokens", "PowerShell", "PowerShell-7.4"),
    RunbookDef("Rotate-Keys", "PowerShell", "PowerShell-7.4"),
    RunbookDef("Sync-Registry", "Python", "Python-3.10"),
)

_GOARCH_TO_TRIPLE = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


def _text(s: str) -> bytes:
    return s.encode("utf-8")


def _data_file(rel: str) -> bytes:
    """A checked-in text file, with line endings normalised so a CRLF checkout changes nothing."""
    raw = (DATA_DIR / rel).read_bytes().replace(b"\r\n", b"\n")
    return raw if raw.endswith(b"\n") else raw + b"\n"


# Layers ----------------------------------------------------------------------

def _base_os_files(arch: str) -> dict[str, tuple[bytes, int]]:
    triple = _GOARCH_TO_TRIPLE[arch]
    r = lambda what, kib: oci.pseudo_random(f"base-os/{arch}/{what}", kib * KiB)  # noqa: E731
    return {
        "etc/os-release": (_text(
            'NAME="VibeData Base"\nID=vibedata-base\nVERSION_ID="12.8"\n'
            'PRETTY_NAME="VibeData Base 12.8 (sample)"\nHOME_URL="https://example.invalid/vibedata"\n'), 0o644),
        "etc/passwd": (_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            "vibedata:x:10001:10001:vibedata:/app:/usr/sbin/nologin\n"), 0o644),
        "etc/group": (_text("root:x:0:\nnogroup:x:65534:\nvibedata:x:10001:\n"), 0o644),
        "etc/nsswitch.conf": (_text("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644),
        "etc/ssl/certs/ca-certificates.crt": (r("ca-bundle", 200), 0o644),
        "bin/busybox": (r("busybox", 340), 0o755),
        f"lib/{triple}/libc.so.6": (r("libc", 280), 0o755),
        f"lib/{triple}/libm.so.6": (r("libm", 96), 0o755),
        f"lib/{triple}/libpthread.so.0": (r("libpthread", 20), 0o755),
        "usr/share/zoneinfo/UTC": (r("tz-utc", 1), 0o644),
        "var/lib/vibedata-base/manifest": (_text(f"base-os {arch} 12.8\n"), 0o644),
    }


def _runtime_files(runtime: str, arch: str) -> dict[str, tuple[bytes, int]]:
    triple = _GOARCH_TO_TRIPLE[arch]
    r = lambda what, kib: oci.pseudo_random(f"runtime-{runtime}/{arch}/{what}", kib * KiB)  # noqa: E731
    if runtime == "native":
        return {
            f"usr/lib/{triple}/libssl.so.3": (r("libssl", 180), 0o755),
            f"usr/lib/{triple}/libcrypto.so.3": (r("libcrypto", 300), 0o755),
            f"usr/lib/{triple}/libgcc_s.so.1": (r("libgcc", 32), 0o755),
        }
    if runtime == "node":
        return {
            "usr/local/bin/node": (r("node", 720), 0o755),
            "usr/local/lib/node_modules/.package-lock.json": (_text('{"lockfileVersion": 3, "packages": {}}\n'), 0o644),
        }
    if runtime == "python":
        return {
            "usr/local/bin/python3.12": (r("python", 420), 0o755),
            "usr/local/lib/python3.12/os.py": (r("stdlib-os", 48), 0o644),
            "usr/local/lib/python3.12/lib-dynload/_ssl.so": (r("_ssl", 160), 0o755),
        }
    raise ValueError(runtime)


def _app_files(image: ImageDef, arch: str, release: str) -> dict[str, tuple[bytes, int]]:
    seed = f"app/{image.name}/{arch}/{release}"
    return {
        f"app/vibedata-{image.name}": (oci.pseudo_random(seed + "/bin", image.app_kib * KiB), 0o755),
        "app/VERSION": (_text(release + "\n"), 0o644),
        "app/config.toml": (_text(
            f'[service]\nname = "{image.name}"\nrelease = "{release}"\n'
            + (f"listen = \"0.0.0.0:{image.port}\"\n" if image.port else "")
            + '\n[log]\nformat = "json"\nlevel = "info"\n'), 0o644),
    }


def _extra_files(image: ImageDef, layer: str, kib: int, arch: str, release: str) -> dict[str, tuple[bytes, int]]:
    seed = f"extra/{image.name}/{layer}/{arch}/{release}"
    half = max(1, kib // 2)
    return {
        f"app/{layer}/{layer}-0.bin": (oci.pseudo_random(seed + "/0", half * KiB), 0o644),
        f"app/{layer}/{layer}-1.bin": (oci.pseudo_random(seed + "/1", (kib - half) * KiB + 123), 0o644),
        f"app/{layer}/index.json": (oci.pretty_json({"layer": layer, "image": image.name, "files": 2}), 0o644),
    }


@dataclass
class Layer:
    tar: bytes
    gz: bytes
    created_by: str


def _layer(files: dict[str, tuple[bytes, int]], created_by: str) -> Layer:
    tar = oci.tar_bytes(oci.tree_entries(files))
    return Layer(tar, oci.gzip_stored(tar), created_by)


# Assembly --------------------------------------------------------------------

@dataclass
class Item:
    kind: str                 # image | runbook | migrations | release-manifest
    repository: str
    tag: str
    media_type: str
    manifest: bytes           # the bytes of the top-level manifest or index
    extra_tags: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return oci.sha256_digest(self.manifest)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass
class Release:
    release: str
    blobs: oci.BlobSet = field(default_factory=oci.BlobSet)
    items: list[Item] = field(default_factory=list)
    document: dict | None = None

    def item(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind]

    def index_json(self) -> bytes:
        manifests = []
        for item in self.items:
            manifests.append({
                "mediaType": item.media_type,
                "digest": item.digest,
                "size": len(item.manifest),
                "annotations": {oci.ANN_REF_NAME: item.ref, ANN_KIND: item.kind},
            })
        return oci.pretty_json({"schemaVersion": 2, "mediaType": oci.MT_INDEX, "manifests": manifests})

    def summary(self) -> dict:
        return {
            "release": self.release,
            "releaseManifest": {"repository": RELEASE_MANIFEST_REPOSITORY,
                                "digest": self.item("release-manifest")[0].digest},
            "items": [
                {"kind": i.kind, "repository": i.repository, "tag": i.tag, "digest": i.digest,
                 "mediaType": i.media_type, "ref": i.ref,
                 **({"extraTags": list(i.extra_tags)} if i.extra_tags else {})}
                for i in self.items
            ],
        }


def _image_manifest(rel: Release, image: ImageDef, arch: str, shared: dict) -> bytes:
    def shared_layer(key, make):
        if key not in shared:
            shared[key] = make()
        return shared[key]

    layers = [shared_layer(("base-os", arch),
                           lambda: _layer(_base_os_files(arch), f"ADD base-os-12.8-{arch}.tar /"))]
    if image.runtime:
        layers.append(shared_layer((image.runtime, arch),
                                   lambda: _layer(_runtime_files(image.runtime, arch),
                                                  f"ADD runtime-{image.runtime}-{arch}.tar /")))
    layers.append(_layer(_app_files(image, arch, rel.release), f"COPY vibedata-{image.name} /app/"))
    for name, kib in image.extra:
        layers.append(_layer(_extra_files(image, name, kib, arch, rel.release), f"COPY {name}/ /app/{name}/"))

    config = {
        "architecture": arch,
        "os": "linux",
        **({"variant": "v8"} if arch == "arm64" else {}),
        "created": CREATED,
        "author": "VibeData sample release",
        "config": {
            "User": "10001:10001",
            "WorkingDir": "/app",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    f"VIBEDATA_SERVICE={image.name}"],
            "Entrypoint": [f"/app/vibedata-{image.name}"],
            **({"ExposedPorts": {f"{image.port}/tcp": {}}} if image.port else {}),
            "Labels": {
                "org.opencontainers.image.title": f"vibedata/{image.name}",
                "org.opencontainers.image.version": rel.release,
                "org.opencontainers.image.vendor": "VibeData (sample)",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [oci.sha256_digest(l.tar) for l in layers]},
        "history": [{"created": CREATED, "created_by": l.created_by} for l in layers],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MT_MANIFEST,
        "config": rel.blobs.add_descriptor(oci.MT_CONFIG, oci.canonical_json(config)),
        "layers": [rel.blobs.add_descriptor(oci.MT_LAYER_GZIP, l.gz) for l in layers],
    }
    return oci.canonical_json(manifest)


def _add_image(rel: Release, image: ImageDef, shared: dict) -> Item:
    repository = f"vibedata/{image.name}"
    if len(image.arches) == 1:
        body = _image_manifest(rel, image, image.arches[0], shared)
        return Item("image", repository, rel.release, oci.MT_MANIFEST, body)
    children = []
    for arch in image.arches:
        body = _image_manifest(rel, image, arch, shared)
        platform = {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}
        children.append(rel.blobs.add_descriptor(oci.MT_MANIFEST, body, platform=platform))
    index = oci.canonical_json({"schemaVersion": 2, "mediaType": oci.MT_INDEX, "manifests": children})
    rel.blobs.add(index)
    return Item("image", repository, rel.release, oci.MT_INDEX, index)


def _artifact(rel: Release, artifact_type: str, layer_media_type: str, layer: bytes,
              annotations: dict | None = None) -> bytes:
    rel.blobs.add(oci.EMPTY_JSON)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MT_MANIFEST,
        "artifactType": artifact_type,
        "config": dict(oci.EMPTY_DESCRIPTOR),
        "layers": [rel.blobs.add_descriptor(layer_media_type, layer)],
        **({"annotations": annotations} if annotations else {}),
    }
    body = oci.canonical_json(manifest)
    rel.blobs.add(body)
    return body


def _data_tree(rel: str) -> dict[str, tuple[bytes, int]]:
    """Every file under data/<rel>, keyed by its path relative to data/<rel>, sorted."""
    root = DATA_DIR / rel
    return {p.relative_to(root).as_posix(): (_data_file(f"{rel}/{p.relative_to(root).as_posix()}"), 0o644)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _chart_yaml_as_json(chart_yaml: bytes) -> dict:
    """Chart.yaml's scalar keys as the JSON `helm push` puts in the config (flat files only)."""
    out = {}
    for line in chart_yaml.decode().splitlines():
        if not line.strip() or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        out[key.strip()] = value.strip().strip('"')
    return out


def _add_chart(rel: Release, chart: ChartDef) -> Item:
    files = {f"{chart.name}/{k}": v for k, v in _data_tree(f"chart/{chart.name}").items()}
    tgz = oci.gzip_stored(oci.tar_bytes(oci.tree_entries(files)))
    config = oci.canonical_json(_chart_yaml_as_json(files[f"{chart.name}/Chart.yaml"][0]))
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MT_MANIFEST,
        "config": rel.blobs.add_descriptor(MT_HELM_CONFIG, config),
        "layers": [rel.blobs.add_descriptor(MT_HELM_CHART, tgz)],
        # What `helm push` writes, pinned: helm takes it from the .tgz mtime.
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    body = oci.canonical_json(manifest)
    rel.blobs.add(body)
    return Item("chart", chart.repository, chart.version, oci.MT_MANIFEST, body)


def build_release(release: str = DEFAULT_RELEASE) -> Release:
    if not RELEASE_RE.match(release):
        raise ValueError(f"release {release!r} is not a valid registry tag")
    rel = Release(release)
    shared: dict = {}

    for image in IMAGES:
        item = _add_image(rel, image, shared)
        rel.blobs.add(item.manifest)
        rel.items.append(item)

    for rb in RUNBOOKS:
        assert RUNBOOK_NAME_RE.match(rb.name), rb.name
        script = _data_file("runbooks/" + rb.file_name)
        layer = oci.gzip_stored(oci.tar_bytes([oci.TarEntry(rb.file_name, script, 0o644)]))
        body = _artifact(rel, AT_RUNBOOK, MT_RUNBOOK_LAYER, layer)
        rel.items.append(Item("runbook", rb.repository, release, oci.MT_MANIFEST, body))

    mig_dir = DATA_DIR / "migrations"
    mig_files = {p.name: (_data_file("migrations/" + p.name), 0o644)
                 for p in mig_dir.iterdir() if p.is_file() and p.name.endswith(".sql")}
    layer = oci.gzip_stored(oci.tar_bytes(oci.tree_entries(mig_files, with_dirs=False)))
    body = _artifact(rel, AT_MIGRATIONS, MT_MIGRATIONS_LAYER, layer)
    migrations = Item("migrations", MIGRATIONS_REPOSITORY, release, oci.MT_MANIFEST, body)
    rel.items.append(migrations)

    for chart in CHARTS:
        rel.items.append(_add_chart(rel, chart))

    # Release-independent, like the runbooks: the same definitions give the same digest.
    layer = oci.gzip_stored(oci.tar_bytes(oci.tree_entries(_data_tree("ai"), with_dirs=False)))
    body = _artifact(rel, AT_AI, MT_AI_LAYER, layer)
    ai = Item("ai", AI_REPOSITORY, release, oci.MT_MANIFEST, body)
    rel.items.append(ai)

    doc = {
        "schemaVersion": 2,
        "release": release,
        "images": [{"repository": i.repository, "tag": i.tag, "digest": i.digest} for i in rel.item("image")],
        "runbooks": [
            {"name": rb.name, "runbookType": rb.runbook_type, "runtimeEnvironment": rb.runtime_environment,
             "artifact": {"repository": item.repository, "digest": item.digest}}
            for rb, item in zip(RUNBOOKS, rel.item("runbook"))
        ],
        "migrations": {"artifact": {"repository": migrations.repository, "digest": migrations.digest}},
        "charts": [
            {"name": c.name, "version": c.version, "namespace": c.namespace,
             "artifact": {"repository": item.repository, "digest": item.digest}}
            for c, item in zip(CHARTS, rel.item("chart"))
        ],
        "ai": {"artifact": {"repository": ai.repository, "digest": ai.digest}},
    }
    rel.document = doc
    body = _artifact(rel, AT_RELEASE_MANIFEST, MT_RELEASE_MANIFEST_LAYER, oci.pretty_json(doc),
                     annotations={"org.opencontainers.image.version": release,
                                  "org.opencontainers.image.created": CREATED})
    rel.items.append(Item("release-manifest", RELEASE_MANIFEST_REPOSITORY, release, oci.MT_MANIFEST, body,
                          extra_tags=("latest",)))
    return rel


# Writing the layout ----------------------------------------------------------

class LayoutError(Exception):
    """The output directory is not ours to write (exit 2)."""


def _is_sample_layout(index_path: Path) -> bool:
    import json
    try:
        index = json.loads(index_path.read_bytes())
        entries = index.get("manifests", [])
        return all(ANN_KIND in (e.get("annotations") or {}) for e in entries)
    except (OSError, ValueError, AttributeError):
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_layout(rel: Release, out: Path) -> dict:
    """Make ``out`` hold exactly ``rel``; write only what differs.  Returns counts."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise LayoutError(f"{out} exists and is not a directory")
        present = [p.name for p in out.iterdir()]
        if present and not (out / "index.json").is_file():
            raise LayoutError(f"{out} is not empty and holds no OCI layout; refusing to write into it")
        if present and not _is_sample_layout(out / "index.json"):
            raise LayoutError(f"{out} holds an OCI layout that sample-release did not write; refusing to change it")
    blob_dir = out / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)

    written = kept = removed = 0
    wanted = {d.split(":", 1)[1]: data for d, data in rel.blobs.blobs.items()}
    for hexd, data in sorted(wanted.items()):
        path = blob_dir / hexd
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            kept += 1
            continue
        _atomic_write(path, data)
        written += 1
    _atomic_write(out / "oci-layout", oci.pretty_json({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}))
    _atomic_write(out / "index.json", rel.index_json())
    for path in blob_dir.iterdir():
        if path.name not in wanted:
            path.unlink()
            removed += 1
    return {"blobsWritten": written, "blobsKept": kept, "blobsRemoved": removed}
