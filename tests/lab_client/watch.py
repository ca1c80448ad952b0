"""Run in the client's namespace: watch an address and report when it stops and answers again.

    watch.py HOST PORT [--tls] [--interval 0.05] [--timeout 0.2] [--connect-timeout T]
             [--limit 120]

Prints one JSON line per change of state: {"t": wall-clock time, "up": bool,
"body": first bytes of the answer}. A probe is a TCP connection that sends an
HTTP GET for /check_health and reads the answer, so an address that ARP
answers for but whose service is dead counts as down. Stops after --limit
seconds or when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import ssl
import sys
import time


def probe(host: str, port: int, tls: bool, timeout: float, connect_timeout: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=connect_timeout) as raw:
            conn = raw
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                conn = context.wrap_socket(raw, server_hostname=host)
            conn.settimeout(timeout)
            name = f"[{host}]" if ":" in host else host
            conn.sendall(f"GET /check_health HTTP/1.0\r\nHost: {name}\r\n\r\n".encode())
            data = b""
            while len(data) < 8192 and (chunk := conn.recv(4096)):  # HTTP/1.0: read to close
                data += chunk
            if not data:
                return None
            return data.decode(errors="replace").split("\r\n\r\n", 1)[-1][:200]
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=0.2)
    # A live host answers a connection at once (its kernel does); only the request may take
    # a while. A short connect timeout sees a moved address sooner.
    parser.add_argument("--connect-timeout", type=float, default=None)
    parser.add_argument("--limit", type=float, default=120)
    args = parser.parse_args()
    deadline = time.monotonic() + args.limit
    last: bool | None = None
    while time.monotonic() < deadline:
        started = time.time()
        connect = args.connect_timeout or args.timeout
        body = probe(args.host, args.port, args.tls, args.timeout, connect)
        up = body is not None
        if up != last:
            print(json.dumps({"t": started, "up": up, "body": body}), flush=True)
            last = up
        ready, _, _ = select.select([sys.stdin], [], [], args.interval)
        if ready and not sys.stdin.readline():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
