"""Run in the client's namespace: ask a DNS server for a name and report when its answer changes.

    dns_watch.py SERVER PORT NAME [--interval 0.02] [--timeout 0.2] [--limit 120]

Asks for the name's A and AAAA records (UDP, unsigned, as a resolver would ask
the authoritative server) every --interval seconds. Prints one JSON line per
change: {"t": wall-clock time of the question, "A": [...], "AAAA": [...]}
(None for a family that got no answer in time). Stops after --limit seconds
or when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time

import dns.exception
import dns.message
import dns.query


def ask(server: str, port: int, name: str, rdtype: str, timeout: float) -> list[str] | None:
    try:
        answer = dns.query.udp(
            dns.message.make_query(name, rdtype), server, port=port, timeout=timeout
        )
    except (dns.exception.DNSException, OSError):
        return None
    return sorted(rdata.to_text() for rrset in answer.answer for rdata in rrset)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("port", type=int)
    parser.add_argument("name")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=0.2)
    parser.add_argument("--limit", type=float, default=120)
    args = parser.parse_args()
    deadline = time.monotonic() + args.limit
    last = None
    while time.monotonic() < deadline:
        started = time.time()
        now = {
            rdtype: ask(args.server, args.port, args.name, rdtype, args.timeout)
            for rdtype in ("A", "AAAA")
        }
        if now != last:
            print(json.dumps({"t": started, **now}), flush=True)
            last = now
        ready, _, _ = select.select([sys.stdin], [], [], args.interval)
        if ready and not sys.stdin.readline():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
