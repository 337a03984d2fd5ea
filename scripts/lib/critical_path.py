#!/usr/bin/env python3
"""The Day-0 sequence's critical path, from the latencies the emulator simulated.

Usage: critical_path.py OUTPUTS_DIR LATENCY_JSON [--bound OPERATION=N ...]

OUTPUTS_DIR holds `run all --outputs-dir` (one <phase>.json per phase, with startedAt and
durationMs); LATENCY_JSON is the emulator's GET /_emulator/latency (one record per long-running
operation: operation, startedMs, simulatedMs). Each operation belongs to the phase whose run
window holds its start. The path: phases in order (they never overlap); within a phase, each
operation kind's records in start order, cut into batches of that kind's bound (how many the
phase runs at once), the slowest of each batch. Work the emulator does for real (an import's
copy, a command's helm run) and our own is not on the path: that is what the ratio measures.

Prints one JSON object: wallMs (the first phase's start to the last one's end), criticalPathMs,
ratio, and per phase its wall time and path.
"""
import json
import sys
from datetime import datetime
from pathlib import Path

# What each phase runs at once, by operation kind (the configuration's defaults): imports
# VIBEDATA_IMPORT_CONCURRENCY, runbook drafts and publishes VIBEDATA_RUNBOOK_CONCURRENCY, AKS
# commands and hosted agents' provisioning one at a time (AI Deployment writes agents in order).
BOUNDS = {"importImage": 8, "draft": 4, "publish": 4, "runCommand": 1, "hostedAgent": 1}


def ms(stamp):
    """Unix milliseconds of an RFC 3339 UTC time with any number of fraction digits."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() * 1000 + float("0." + (frac or "0")) * 1000


def main(argv):
    outputs, latency = Path(argv[1]), json.loads(Path(argv[2]).read_text())
    bounds = dict(BOUNDS)
    for arg in argv[3:]:
        if arg == "--bound":
            continue
        kind, _, n = arg.partition("=")
        bounds[kind] = int(n)
    phases = []
    for f in sorted(outputs.glob("*.json")):
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        if not isinstance(doc, dict) or "startedAt" not in doc or doc.get("phase") == "preflight":
            continue
        start = ms(doc["startedAt"])
        phases.append({"phase": doc["phase"], "start": start, "end": start + doc["durationMs"]})
    phases.sort(key=lambda p: p["start"])
    if not phases:
        sys.exit(f"no phase outputs in {outputs}")
    total = 0
    report = []
    for p in phases:
        ops = [o for o in latency if p["start"] <= o["startedMs"] <= p["end"]]
        path = 0
        kinds = sorted({o["operation"] for o in ops})
        for kind in kinds:
            mine = sorted((o for o in ops if o["operation"] == kind), key=lambda o: o["startedMs"])
            bound = bounds.get(kind, 1)
            path += sum(max(o["simulatedMs"] for o in mine[i:i + bound]) for i in range(0, len(mine), bound))
        total += path
        report.append({"phase": p["phase"], "wallMs": round(p["end"] - p["start"]), "pathMs": path,
                       "operations": {k: sum(1 for o in ops if o["operation"] == k) for k in kinds}})
    wall = phases[-1]["end"] - phases[0]["start"]
    print(json.dumps({"wallMs": round(wall), "criticalPathMs": total,
                      "ratio": round(wall / total, 3) if total else None, "phases": report}))


if __name__ == "__main__":
    main(sys.argv)
