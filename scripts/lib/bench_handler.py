"""Handler start-up: the time from starting `vibedata-bootstrap serve` to its first successful
response, as the Functions host sees it (it waits for the port, then invokes). Each run starts
the handler on a free port, asks GET / (the readiness answer) as fast as it can, and stops it
with SIGTERM. Prints one JSON line: the median, min and max in milliseconds. Used by scripts/bench.

usage: bench_handler.py BINARY RUNS
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def once(binary):
    port = free_port()
    env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(port))
    t = time.monotonic()
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bench_handler: the handler exited with {proc.returncode}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/")
                if c.getresponse().status == 200:
                    return (time.monotonic() - t) * 1000
            except OSError:
                time.sleep(0.001)
            if time.monotonic() - t > 60:
                raise SystemExit("bench_handler: no successful response within 60 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def main():
    binary, runs = sys.argv[1], int(sys.argv[2])
    ms = [once(binary) for _ in range(runs)]
    print(json.dumps({"handlerStartMedianMs": round(statistics.median(ms), 1), "minMs": round(min(ms), 1),
                      "maxMs": round(max(ms), 1), "runs": runs}))


if __name__ == "__main__":
    main()
