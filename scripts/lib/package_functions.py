"""Assembles and checks the function app zip: host.json, one folder per function with its
function.json, and the handler binary at the path host.json names. Used by scripts/package-functions.

Checks, on the zip as written (not on the inputs): host.json is a customHandler app in envelope
mode whose defaultExecutablePath is in the zip and executable; every function folder's bindings
parse (one trigger; HTTP triggers name authLevel, methods and a route and have an http output;
timer triggers have a 6-field NCRONTAB or a %APP_SETTING% schedule); the functions are exactly
phase, status and health. Standard library only.
"""

import json
import re
import stat
import sys
import zipfile

EXPECTED = {"phase": "httpTrigger", "status": "httpTrigger", "health": "timerTrigger"}


def fail(msg):
    print(f"package-functions: error: {msg}", file=sys.stderr)
    sys.exit(1)


def check_bindings(name, spec):
    bindings = spec.get("bindings")
    if not isinstance(bindings, list) or not bindings:
        fail(f"{name}/function.json has no bindings")
    for b in bindings:
        for key in ("type", "direction", "name"):
            if not isinstance(b.get(key), str) or not b[key]:
                fail(f"{name}/function.json: a binding lacks {key}: {b}")
    triggers = [b for b in bindings if b["direction"] == "in" and b["type"].endswith("Trigger")]
    if len(triggers) != 1:
        fail(f"{name}/function.json needs exactly one trigger, has {len(triggers)}")
    t = triggers[0]
    if t["type"] != EXPECTED[name]:
        fail(f"{name} must be a {EXPECTED[name]}, is {t['type']}")
    if t["type"] == "httpTrigger":
        if t.get("authLevel") not in ("function", "admin"):
            fail(f"{name}: authLevel must be function (it shows internal names), is {t.get('authLevel')}")
        if not t.get("methods") or not t.get("route"):
            fail(f"{name}: an HTTP trigger needs methods and a route")
        if not any(b["type"] == "http" and b["direction"] == "out" for b in bindings):
            fail(f"{name}: an HTTP trigger needs an http output binding")
    if t["type"] == "timerTrigger":
        s = t.get("schedule", "")
        if not (re.fullmatch(r"%[A-Za-z0-9_]+%", s) or len(s.split()) == 6):
            fail(f"{name}: schedule {s!r} is neither %APP_SETTING% nor a 6-field NCRONTAB")


def build(functions_dir, binary, out):
    with open(f"{functions_dir}/host.json") as f:
        host = json.load(f)
    exe = host.get("customHandler", {}).get("description", {}).get("defaultExecutablePath")
    if not exe:
        fail("host.json has no customHandler.description.defaultExecutablePath")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(f"{functions_dir}/host.json", "host.json")
        for name in sorted(EXPECTED):
            z.write(f"{functions_dir}/{name}/function.json", f"{name}/function.json")
        info = zipfile.ZipInfo(exe, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(binary, "rb") as f:
            z.writestr(info, f.read())


def verify(out):
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        if "host.json" not in names:
            fail("the zip has no host.json at its root")
        host = json.loads(z.read("host.json"))
        ch = host.get("customHandler")
        if host.get("version") != "2.0" or not ch:
            fail("host.json must be version 2.0 with a customHandler section")
        if ch.get("enableProxyingHttpRequest") or ch.get("enableForwardingHttpRequest"):
            fail("the shipped host.json is in envelope mode (proxying needs a recent host)")
        exe = ch["description"]["defaultExecutablePath"]
        if exe not in names:
            fail(f"host.json names {exe}, which the zip lacks")
        mode = (z.getinfo(exe).external_attr >> 16) & 0o777
        if not mode & 0o100:
            fail(f"{exe} is not executable in the zip (mode {oct(mode)})")
        folders = {n.split("/")[0] for n in names if n.endswith("/function.json")}
        if folders != set(EXPECTED):
            fail(f"the function folders are {sorted(folders)}; expected {sorted(EXPECTED)}")
        for name in sorted(folders):
            try:
                spec = json.loads(z.read(f"{name}/function.json"))
            except ValueError as e:
                fail(f"{name}/function.json does not parse: {e}")
            check_bindings(name, spec)
        extra = names - {"host.json", exe} - {f"{n}/function.json" for n in EXPECTED}
        if extra:
            fail(f"the zip holds files the app does not need: {sorted(extra)}")
        print(f"package-functions: {out}: host.json, {exe} (mode {oct(mode)}), functions {', '.join(sorted(folders))}",
              file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(*sys.argv[2:5])
    verify(sys.argv[-1])
