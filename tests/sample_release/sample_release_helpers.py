"""Shared helpers for the sample-release tests (stdlib + pytest only)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "sample-release"


def run_script(*args, check=True, env=None):
    proc = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"sample-release {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def build(out, *extra):
    return json.loads(run_script("build", "--out", out, *extra).stdout)


@pytest.fixture(scope="session")
def layout(tmp_path_factory):
    """One build of the default release: (directory, printed summary)."""
    out = tmp_path_factory.mktemp("layout") / "oci"
    return out, build(out)
