"""A local stand-in for the Azure Functions host (`func start`), for a custom handler.

Reads host.json and the function folders, starts the handler with FUNCTIONS_CUSTOMHANDLER_PORT,
waits until it listens, and serves /api/* on a local port: in envelope mode each call is wrapped
in the invocation envelope (runtime-contracts §2.2) and the `res` output binding unwrapped
(§2.3); with `enableProxyingHttpRequest` the request is passed through as sent (§2.4). The timer
fires on demand (POST /admin/functions/<name>). When the handler dies, it is started again, as the
host does. It is also the test harness of tests/serve.rs. See README.md for what differs from the
real host. Standard library only.
"""

import argparse
import datetime
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length", "te", "trailer"}


def log(msg):
    print(f"serve-local: {msg}", file=sys.stderr, flush=True)


def event(**kw):
    """One JSON line on stdout: what a test (or a script) waits on."""
    print(json.dumps(kw), flush=True)


def expand(text):
    """%NAME% expands an app setting, as the host does in host.json and bindings."""
    def one(m):
        if m.group(1) not in os.environ:
            raise SystemExit(f"serve-local: error: app setting {m.group(1)} is not set (used as %{m.group(1)}%)")
        return os.environ[m.group(1)]
    return re.sub(r"%([A-Za-z0-9_]+)%", one, text)


def route_regex(route):
    """A Functions route template (`phase/{name}/{action?}`) as a regex over the path after /api/."""
    out = ""
    for seg in route.strip("/").split("/"):
        m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)(\?)?\}", seg)
        if m and m.group(2):
            out += f"(?:/(?P<{m.group(1)}>[^/]+))?"
        elif m:
            out += f"/(?P<{m.group(1)}>[^/]+)"
        else:
            out += "/" + re.escape(seg)
    return re.compile("^" + out.lstrip("/") + "/?$", re.IGNORECASE)


def load_functions(root):
    """Every <root>/<name>/function.json: the trigger binding and what the host needs of it."""
    functions = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "function.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            spec = json.load(f)
        triggers = [b for b in spec.get("bindings", []) if b.get("direction") == "in" and b.get("type", "").endswith("Trigger")]
        if len(triggers) != 1:
            raise SystemExit(f"serve-local: error: {path} needs exactly one trigger binding")
        t = triggers[0]
        fn = {"name": name, "type": t["type"], "binding": t["name"]}
        if t["type"] == "httpTrigger":
            fn["methods"] = [m.upper() for m in t.get("methods", ["get", "post"])]
            fn["route"] = t.get("route", name)
            fn["regex"] = route_regex(fn["route"])
            fn["authLevel"] = t.get("authLevel", "function")
            outs = [b for b in spec["bindings"] if b.get("type") == "http" and b.get("direction") == "out"]
            fn["out"] = outs[0]["name"] if outs else "$return"
        elif t["type"] == "timerTrigger":
            fn["schedule"] = expand(t["schedule"])
        functions[name] = fn
    if not functions:
        raise SystemExit(f"serve-local: error: no function folders in {root}")
    return functions


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    def __init__(self, args):
        with open(args.host_json) as f:
            self.host = json.load(f)
        ch = self.host.get("customHandler")
        if not ch or "description" not in ch:
            raise SystemExit(f"serve-local: error: {args.host_json} has no customHandler.description")
        self.proxy = bool(ch.get("enableProxyingHttpRequest"))
        self.arguments = [expand(a) for a in ch["description"].get("arguments", [])]
        self.functions = load_functions(args.functions)
        self.binary = args.binary
        self.timeout = args.timeout
        self.key = args.key
        self.trigger_as_string = args.trigger_as_string
        self.cwd = os.path.join(args.functions, ch["description"].get("workingDirectory", "") or "")
        self.handler_port = free_port()
        self.proc = None
        self.restarts = 0
        self.stopping = False
        self.lock = threading.Lock()

    # --- the worker ---------------------------------------------------------------------------
    def start_handler(self):
        env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(self.handler_port), FUNCTIONS_WORKER_RUNTIME="Custom")
        t = time.monotonic()
        # The worker's stdout is its log; the host collects it, here on stderr.
        self.proc = subprocess.Popen([self.binary, *self.arguments], cwd=self.cwd, env=env, stdout=sys.stderr, stderr=sys.stderr)
        deadline = t + 60  # the host's limit for the web server to start
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the handler exited with {self.proc.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", self.handler_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        else:
            raise RuntimeError("the handler did not listen within 60 s")
        return time.monotonic() - t

    def watch(self):
        """Starts the worker again when it dies, as the host does after a crash or recycle."""
        while not self.stopping:
            proc = self.proc
            code = proc.wait()
            if self.stopping:
                return
            event(event="handler-exited", code=code, pid=proc.pid)
            with self.lock:
                self.restarts += 1
                self.start_handler()
            event(event="handler-restarted", pid=self.proc.pid, restarts=self.restarts)

    def stop(self):
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    # --- invocations --------------------------------------------------------------------------
    def send(self, method, path, body, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.handler_port, timeout=self.timeout)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def invoke(self, fn, data, metadata):
        """POST /<function> with the envelope; returns the handler's parsed answer."""
        value = data[fn["binding"]]
        if self.trigger_as_string:
            data = {fn["binding"]: json.dumps(value)}
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        metadata = dict(metadata, sys={"MethodName": fn["name"], "UtcNow": now, "RandGuid": str(uuid.uuid4())})
        body = json.dumps({"Data": data, "Metadata": metadata}).encode()
        headers = {"Content-Type": "application/json", "X-Azure-Functions-InvocationId": str(uuid.uuid4())}
        status, _, raw = self.send("POST", "/" + fn["name"], body, headers)
        if status != 200:
            raise InvocationFailed(f"the handler answered {status}: {raw[:500].decode(errors='replace')}")
        result = json.loads(raw)
        for line in result.get("Logs") or []:
            log(f"[{fn['name']}] {line}")
        return result

    def timer_value(self):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"Schedule": {"AdjustForDST": True},
                "ScheduleStatus": {"Last": iso(now - datetime.timedelta(minutes=5)), "Next": iso(now + datetime.timedelta(minutes=5)), "LastUpdated": iso(now)},
                "IsPastDue": False}


class InvocationFailed(Exception):
    pass


def make_handler(host):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            log(fmt % a)

        def reply(self, status, body, headers=None, content_type="application/json"):
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            self.send_response(status)
            sent = {k.lower() for k in (headers or {})}
            if "content-type" not in sent:
                self.send_header("Content-Type", content_type)
            for k, v in (headers or {}).items():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def error(self, status, message):
            self.reply(status, {"error": {"code": "Host", "message": message}})

        def authorized(self, query, master=False):
            if not host.key:
                return True
            given = self.headers.get("x-functions-key") or (query.get("code") or [None])[0]
            return given == host.key

        def handle_any(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                if url.path.startswith("/admin/"):
                    return self.admin(url.path, query)
                if not url.path.startswith("/api/"):
                    return self.error(404, f"no route {url.path}")
                rest = url.path[len("/api/"):]
                for fn in host.functions.values():
                    if fn["type"] != "httpTrigger":
                        continue
                    m = fn["regex"].match(rest)
                    if not m:
                        continue
                    if self.command not in fn["methods"]:
                        continue
                    if fn["authLevel"] != "anonymous" and not self.authorized(query):
                        return self.error(401, "a function key is required (code= or x-functions-key)")
                    params = {k: v for k, v in m.groupdict().items() if v is not None}
                    return self.http_function(fn, url, query, params, body)
                return self.error(404, f"no function serves {self.command} {url.path}")
            except TimeoutError:
                self.error(504, f"the function did not answer within {host.timeout} s (the host's HTTP limit)")
            except (InvocationFailed, OSError, ValueError) as e:
                self.error(500, f"invocation failed: {e}")

        def http_function(self, fn, url, query, params, body):
            if host.proxy:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                path = url.path + ("?" + url.query if url.query else "")
                status, rh, raw = host.send(self.command, path, body, headers)
                return self.reply(status, raw, dict(rh))
            req = {
                "Url": f"http://{self.headers.get('Host', '127.0.0.1')}{self.path}",
                "Method": self.command,
                # The host sends the query as a JSON string of name -> value.
                "Query": json.dumps({k: v[-1] for k, v in query.items()}),
                "Headers": {k: self.headers.get_all(k) for k in self.headers.keys()},
                "Params": params,
                "Body": body.decode(errors="replace"),
            }
            metadata = dict(params, Query=req["Query"], Headers=req["Headers"])
            result = host.invoke(fn, {fn["binding"]: req}, metadata)
            res = (result.get("Outputs") or {}).get(fn["out"]) if fn["out"] != "$return" else result.get("ReturnValue")
            if not isinstance(res, dict):
                return self.reply(204, b"")
            status = int(str(res.get("statusCode", "200")))
            out = res.get("body", "")
            if not isinstance(out, str):
                out = json.dumps(out)
            return self.reply(status, out, res.get("headers") or {})

        def admin(self, path, query):
            if path == "/admin/host/status":
                with host.lock:
                    pid = host.proc.pid if host.proc else None
                return self.reply(200, {"state": "Running", "handlerPid": pid, "handlerPort": host.handler_port,
                                        "restarts": host.restarts, "mode": "proxy" if host.proxy else "envelope",
                                        "functions": sorted(host.functions)})
            m = re.fullmatch(r"/admin/functions/([A-Za-z0-9_-]+)", path)
            if m and self.command == "POST":
                fn = host.functions.get(m.group(1))
                if not fn:
                    return self.error(404, f"no function {m.group(1)}")
                if not self.authorized(query, master=True):
                    return self.error(401, "the master key is required (x-functions-key)")
                if fn["type"] != "timerTrigger":
                    return self.error(400, f"{fn['name']} is an HTTP function; call it on /api/{fn['route']}")
                # The real host answers 202 at once; waiting for the result is what a test needs.
                result = host.invoke(fn, {fn["binding"]: host.timer_value()}, {})
                return self.reply(200, result)
            return self.error(404, f"no admin route {self.command} {path}")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser(prog="serve-local")
    p.add_argument("--functions", required=True)
    p.add_argument("--host-json")
    p.add_argument("--binary", required=True)
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--timeout", type=float, default=230.0)
    p.add_argument("--key")
    p.add_argument("--trigger-as-string", action="store_true")
    args = p.parse_args()
    args.functions = os.path.abspath(args.functions)
    args.host_json = args.host_json or os.path.join(args.functions, "host.json")
    host = Host(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(host))
    server.daemon_threads = True
    started = host.start_handler()
    threading.Thread(target=host.watch, daemon=True).start()

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    mode = "proxy" if host.proxy else "envelope"
    for fn in host.functions.values():
        if fn["type"] == "httpTrigger":
            log(f"{fn['name']}: [{','.join(fn['methods'])}] http://127.0.0.1:{server.server_port}/api/{fn['route']}")
        else:
            log(f"{fn['name']}: {fn['type']} ({fn.get('schedule', '')}), fire with POST http://127.0.0.1:{server.server_port}/admin/functions/{fn['name']}")
    event(event="ready", url=f"http://127.0.0.1:{server.server_port}", mode=mode, handlerPid=host.proc.pid,
          handlerPort=host.handler_port, handlerStartMs=round(started * 1000, 1))
    try:
        server.serve_forever()
    finally:
        host.stop()
        event(event="stopped")


if __name__ == "__main__":
    main()
