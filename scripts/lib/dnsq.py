#!/usr/bin/env python3
"""Usage: dnsq.py [--server HOST:PORT] [--want IP|NXDOMAIN] NAME

Asks a DNS server for NAME's A records over UDP (standard library only: no dig on this machine)
and prints one address per line, or NXDOMAIN. Exits 0 when the server answered (and, with
--want, when the answer is exactly that address, or NXDOMAIN), 1 otherwise, 2 on bad usage.
scripts/stack uses it to wait for the DNS stand-in; tests may use it too.
"""

import argparse
import random
import socket
import struct
import sys


def query(server: str, port: int, name: str, timeout: float = 1.0):
    """(rcode, [ipv4 addresses]) for NAME's A records."""
    tid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", tid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode("idna")
    packet += b"\x00" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, port))
        while True:
            data, _ = s.recvfrom(4096)
            if struct.unpack(">H", data[:2])[0] == tid:
                break
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    off = 12

    def skip_name(off):
        while True:
            n = data[off]
            if n == 0:
                return off + 1
            if n & 0xC0 == 0xC0:
                return off + 2
            off += 1 + n

    for _ in range(qd):
        off = skip_name(off) + 4
    ips = []
    for _ in range(an):
        off = skip_name(off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(data[off:off + 4]))
        off += rdlen
    return flags & 0xF, ips


def main() -> int:
    p = argparse.ArgumentParser(add_help=True)
    p.add_argument("--server", default="127.0.0.1:53")
    p.add_argument("--want")
    p.add_argument("name")
    a = p.parse_args()
    host, _, port = a.server.rpartition(":")
    try:
        rcode, ips = query(host or "127.0.0.1", int(port), a.name)
    except (OSError, ValueError) as e:
        print(f"dnsq: no answer from {a.server}: {e}", file=sys.stderr)
        return 1
    got = "NXDOMAIN" if rcode == 3 else ",".join(ips)
    print("\n".join(ips) if ips else ("NXDOMAIN" if rcode == 3 else f"rcode {rcode}, no A record"))
    if a.want is not None:
        return 0 if got == a.want else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
