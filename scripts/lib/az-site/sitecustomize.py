"""Name resolution for the az CLI that `scripts/stack az` runs (it puts this folder on PYTHONPATH).

In Azure a private DNS zone resolves each platform name (kv-vibedata-local.vault.azure.net, ...) to
its private endpoint. The stack serves those names on 127.0.0.1 at ports of its own, and its DNS
stand-in answers only on its own port. This module plays that zone for one az process: a name in
the stack's inventory (DIR/inventory.json, "dns") asked for on its service's default port (443,
Postgres 5432) resolves to the address and port where the stack serves it. TLS is unchanged: the
client still verifies the name against the stack's certificate, which names every inventory name.
Every other name resolves as usual.
"""

import json
import os
import socket


def _records():
    path = os.environ.get("VIBEDATA_STACK_INVENTORY")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return {d["name"].lower(): (d["ip"], int(d["port"])) for d in json.load(f)["dns"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


_RECORDS = _records()
_DEFAULT_PORTS = {None, 443, 5432, "443", "5432", "https"}

if _RECORDS:
    _system_getaddrinfo = socket.getaddrinfo

    def _stack_getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        record = _RECORDS.get(name.lower().rstrip(".")) if isinstance(name, str) else None
        if record and port in _DEFAULT_PORTS:
            return _system_getaddrinfo(record[0], record[1], *args, **kwargs)
        return _system_getaddrinfo(host, port, *args, **kwargs)

    socket.getaddrinfo = _stack_getaddrinfo
