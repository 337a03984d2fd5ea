"""Command line of scripts/sample-release."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from . import release as rl
from .push import PushError, push_release, sign_remote

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Build (and push) the deterministic VibeData sample release.

  build  writes an OCI Image Layout holding 12 images (one a multi-arch index),
         4 runbook artifacts, the migrations artifact and the release manifest.
         Same release name, same bytes, on every machine.
  push   builds if needed, then pushes every item with skopeo to a registry
         (default: the local stack's publisher registry) and verifies each tag's
         digest. Idempotent: items already at the right digest are left alone.

  --push is short for `push` with every default (what scripts/rehearse calls).
"""

EPILOG = """\
Layout refs (org.opencontainers.image.ref.name), usable as oci:DIR:REF with skopeo:
  vibedata/<image>:<release>, vibedata/runbooks/<name>:<release>,
  vibedata/db-migrations:<release>, vibedata/release-manifest:<release>
Push defaults come from the stack env (docs/local-stack.md): VIBEDATA_PUBLISHER_REGISTRY,
VIBEDATA_STACK_PUBLISHER_USER / _PASSWORD, and $VIBEDATA_STACK_DIR/ca/certs.d; when they
are not exported, they are read from $VIBEDATA_STACK_DIR/env or .stack/env.
Exit codes: 0 ok, 1 push or verification failed, 2 bad usage or input.
"""


def default_out(release: str) -> Path:
    return REPO_ROOT / "target" / "sample-release" / release


def stack_env() -> dict[str, str]:
    """The process env, completed from the stack's env file when variables are missing."""
    env = dict(os.environ)
    candidates = []
    if env.get("VIBEDATA_STACK_DIR"):
        candidates.append(Path(env["VIBEDATA_STACK_DIR"]) / "env")
    candidates.append(REPO_ROOT / ".stack" / "env")
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                key, value = words[1].split("=", 1)
                env.setdefault(key, value)
        break
    return env


def _add_build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="layout directory (default: target/sample-release/<release>)")
    p.add_argument("--release", default=rl.DEFAULT_RELEASE, help=f"release name (default {rl.DEFAULT_RELEASE})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sample-release", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--push", action="store_true", help="same as `push` with all defaults")
    sub = p.add_subparsers(dest="command", metavar="{build,push,trust,sign}")
    g = sub.add_parser("sign", help="push the fixture signatures of an already pushed manifest (tests)")
    g.add_argument("--repository", default="vibedata/release-manifest", help="repository (default vibedata/release-manifest)")
    g.add_argument("--tag", required=True, help="the tag whose manifest to sign")
    sub.add_parser("trust", help="print the export lines of the fixture signer's trust store and identity")
    b = sub.add_parser("build", help="write the OCI layout and print a JSON summary")
    _add_build_args(b)
    u = sub.add_parser("push", help="build if needed, push with skopeo, verify digests")
    _add_build_args(u)
    u.add_argument("--registry", help="HOST:PORT (default $VIBEDATA_PUBLISHER_REGISTRY)")
    u.add_argument("--creds", help="USER:PASS (default $VIBEDATA_STACK_PUBLISHER_USER:_PASSWORD)")
    u.add_argument("--cert-dir", help="skopeo cert dir with ca.crt (default $VIBEDATA_STACK_DIR/ca/certs.d)")
    u.add_argument("--jobs", type=int, default=4, help="parallel skopeo copies (default 4)")
    u.add_argument("--force", action="store_true", help="copy even items whose tag is already at the digest")
    return p


def _build(release: str, out: Path | None) -> tuple[rl.Release, Path, dict]:
    rel = rl.build_release(release)
    out = out or default_out(release)
    counts = rl.write_layout(rel, out)
    return rel, out, counts


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.push and args.command:
        p.error("--push takes no subcommand")
    if args.push:
        args = p.parse_args(["push"])
    if not args.command:
        p.print_help(sys.stderr)
        return EXIT_USAGE
    # Concurrent invocations (parallel test processes) would rewrite the same layout directory
    # and push the same blobs at once; CNCF distribution's filesystem driver answers concurrent
    # uploads of one digest with "digest invalid". One invocation at a time on this machine; the
    # next finds everything in place and is a fast no-op.
    if args.command == "trust":
        # One line each, for env files read line by line: the PEM's newlines escaped as \\n.
        from . import sign
        pem = sign.trust_store_pem().replace("\n", "\\n")
        print(f"export VIBEDATA_RELEASE_TRUST_STORE='{pem}'")
        print("export VIBEDATA_RELEASE_TRUSTED_IDENTITIES='" + json.dumps([sign.TRUSTED_IDENTITY]) + "'")
        return EXIT_OK
    if args.command == "sign":
        env = stack_env()
        creds = f"{env['VIBEDATA_STACK_PUBLISHER_USER']}:{env.get('VIBEDATA_STACK_PUBLISHER_PASSWORD', '')}"
        cert_dir = str(Path(env["VIBEDATA_STACK_DIR"]) / "ca" / "certs.d")
        try:
            out = sign_remote(env["VIBEDATA_PUBLISHER_REGISTRY"], creds, cert_dir, args.repository, args.tag)
        except (PushError, OSError) as err:
            print(f"sample-release: sign failed: {err}", file=sys.stderr)
            return EXIT_FAIL
        print(json.dumps(out, indent=2, sort_keys=True))
        return EXIT_OK
    lock = open(os.path.join(tempfile.gettempdir(), "vibedata-sample-release.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        rel, out, counts = _build(args.release, args.out)
    except (ValueError, rl.LayoutError) as err:
        print(f"sample-release: {err}", file=sys.stderr)
        return EXIT_USAGE

    summary = {"layout": str(out.resolve()), **rel.summary(), "layoutChanges": counts}
    if args.command == "build":
        print(json.dumps(summary, indent=2, sort_keys=True))
        return EXIT_OK

    env = stack_env()
    registry = args.registry or env.get("VIBEDATA_PUBLISHER_REGISTRY")
    if not registry:
        print("sample-release: no registry: pass --registry or set VIBEDATA_PUBLISHER_REGISTRY "
              "(source the stack's env file)", file=sys.stderr)
        return EXIT_USAGE
    if "/" in registry or "://" in registry:
        print(f"sample-release: --registry wants HOST:PORT, not {registry!r}", file=sys.stderr)
        return EXIT_USAGE
    creds = args.creds
    if creds is None and env.get("VIBEDATA_STACK_PUBLISHER_USER"):
        creds = f"{env['VIBEDATA_STACK_PUBLISHER_USER']}:{env.get('VIBEDATA_STACK_PUBLISHER_PASSWORD', '')}"
    cert_dir = args.cert_dir
    if cert_dir is None and env.get("VIBEDATA_STACK_DIR"):
        candidate = Path(env["VIBEDATA_STACK_DIR"]) / "ca" / "certs.d"
        if candidate.is_dir():
            cert_dir = str(candidate)
    try:
        result = push_release(rel, out, registry, creds, cert_dir, jobs=args.jobs, force=args.force)
    except PushError as err:
        print(f"sample-release: push failed: {err}", file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps({"layout": summary["layout"], "releaseManifest": summary["releaseManifest"], **result},
                     indent=2, sort_keys=True))
    return EXIT_OK
