"""Byte-exact, dependency-free writers for the pieces of an OCI Image Layout.

Everything here is deterministic by construction: the output depends only on the
arguments, never on the clock, the user, the locale, the Python version or the
zlib build.  That is why tar and gzip are written by hand instead of with
``tarfile``/``gzip``:

* tar: POSIX ustar headers, mtime 0, uid/gid 0, empty user/group names, entries in
  the order given (callers sort them), two zero blocks at the end;
* gzip: a fixed 10-byte header (no file name, MTIME 0, OS 255) around *stored*
  deflate blocks.  zlib implementations (zlib, zlib-ng, patched distro builds) do
  not all produce the same compressed bytes for the same input, but a stored block
  is fully specified by RFC 1951, so the bytes are the same everywhere.  The sample
  content is pseudo-random and would not compress anyway.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

# Media types -----------------------------------------------------------------

OCI_LAYOUT_VERSION = "1.0.0"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_EMPTY = "application/vnd.oci.empty.v1+json"

ANN_REF_NAME = "org.opencontainers.image.ref.name"

EMPTY_JSON = b"{}"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    """Compact JSON with sorted keys: the form every OCI manifest/config here uses."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def pretty_json(obj) -> bytes:
    """Sorted keys, 2-space indent, trailing newline: for documents people read."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def pseudo_random(label: str, size: int) -> bytes:
    """``size`` bytes of SHAKE-256 output keyed by ``label`` (FIPS 202: stable everywhere)."""
    return hashlib.shake_256(b"vibedata-sample-release/v1\0" + label.encode("utf-8")).digest(size)


# tar -------------------------------------------------------------------------

_BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    """NUL-terminated, zero-padded octal field of ``width`` bytes."""
    text = format(value, "o").encode("ascii")
    if len(text) > width - 1:
        raise ValueError(f"value {value} does not fit a {width}-byte tar field")
    return text.rjust(width - 1, b"0") + b"\0"


def _ustar_header(name: str, size: int, mode: int, typeflag: bytes) -> bytes:
    raw = name.encode("utf-8")
    prefix = b""
    if len(raw) > 100:
        # Split at a '/' so that prefix <= 155 and name <= 100 bytes.
        cut = raw.rfind(b"/", 0, 156)
        while cut > 0 and len(raw) - cut - 1 > 100:
            cut = raw.rfind(b"/", 0, cut)
        if cut <= 0:
            raise ValueError(f"tar path too long for ustar: {name}")
        prefix, raw = raw[:cut], raw[cut + 1:]
    fields = [
        raw.ljust(100, b"\0"),            # name
        _octal(mode, 8),                  # mode
        _octal(0, 8),                     # uid
        _octal(0, 8),                     # gid
        _octal(size, 12),                 # size
        _octal(0, 12),                    # mtime
        b" " * 8,                         # chksum (placeholder)
        typeflag,                         # typeflag
        b"\0" * 100,                      # linkname
        b"ustar\x0000",                   # magic + version
        b"\0" * 32,                       # uname
        b"\0" * 32,                       # gname
        _octal(0, 8),                     # devmajor
        _octal(0, 8),                     # devminor
        prefix.ljust(155, b"\0"),         # prefix
        b"\0" * 12,                       # pad
    ]
    header = bytearray(b"".join(fields))
    assert len(header) == _BLOCK
    checksum = sum(header)
    header[148:156] = format(checksum, "o").encode("ascii").rjust(6, b"0") + b"\0 "
    return bytes(header)


class TarEntry:
    __slots__ = ("path", "data", "mode", "is_dir")

    def __init__(self, path: str, data: bytes = b"", mode: int = 0o644, is_dir: bool = False):
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"bad tar path {path!r}")
        self.path = path
        self.data = data
        self.mode = mode
        self.is_dir = is_dir


def tar_bytes(entries: list[TarEntry]) -> bytes:
    """A ustar archive of ``entries`` in the given order."""
    out = bytearray()
    for entry in entries:
        if entry.is_dir:
            name = entry.path.rstrip("/") + "/"
            out += _ustar_header(name, 0, entry.mode, b"5")
        else:
            out += _ustar_header(entry.path, len(entry.data), entry.mode, b"0")
            out += entry.data
            out += b"\0" * (-len(entry.data) % _BLOCK)
    out += b"\0" * (2 * _BLOCK)
    return bytes(out)


def tree_entries(files: dict[str, tuple[bytes, int]], with_dirs: bool = True) -> list[TarEntry]:
    """Sorted entries for ``{path: (data, mode)}``, adding parent directories (0755)."""
    entries: dict[str, TarEntry] = {}
    for path, (data, mode) in files.items():
        if with_dirs:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i]) + "/"
                entries.setdefault(d, TarEntry(d, mode=0o755, is_dir=True))
        entries[path] = TarEntry(path, data, mode)
    return [entries[k] for k in sorted(entries)]


# gzip ------------------------------------------------------------------------

_GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
_STORED_MAX = 0xFFFF


def gzip_stored(data: bytes) -> bytes:
    """RFC 1952 gzip member whose deflate stream is made of stored blocks only."""
    out = bytearray(_GZIP_HEADER)
    pos = 0
    n = len(data)
    while True:
        chunk = data[pos:pos + _STORED_MAX]
        pos += len(chunk)
        final = pos >= n
        out.append(1 if final else 0)  # BFINAL, BTYPE=00, then pad to the byte boundary
        out += struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF)
        out += chunk
        if final:
            break
    out += struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, n & 0xFFFFFFFF)
    return bytes(out)


# descriptors and manifests ---------------------------------------------------

def descriptor(media_type: str, data: bytes, **extra) -> dict:
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update(extra)
    return d


EMPTY_DESCRIPTOR = descriptor(MT_EMPTY, EMPTY_JSON)


class BlobSet:
    """The content-addressed blobs of one layout, keyed by digest."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self.blobs.setdefault(digest, data)
        return digest

    def add_descriptor(self, media_type: str, data: bytes, **extra) -> dict:
        self.add(data)
        return descriptor(media_type, data, **extra)
