"""The Network Connectivity Test: can this site reach the outside world?

ICMP echo through icmplib for addresses (privileged raw sockets as root,
unprivileged datagram sockets otherwise), and a TCP connect for `host:port`
targets where ICMP is blocked. All targets are tried at once; the whole test
takes about one timeout.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """An IP address, or address:port / [v6]:port for a TCP connect. Raises ValueError."""
        text = text.strip()
        if text.startswith("["):
            host, _, port = text[1:].partition("]:")
            return cls(str(ipaddress.ip_address(host)), _port(port))
        if text.count(":") == 1:
            host, port = text.split(":")
            return cls(str(ipaddress.ip_address(host)), _port(port))
        return cls(str(ipaddress.ip_address(text)))

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not from 1 to 65535")
    return port


@dataclass(frozen=True)
class Result:
    target: Target
    reachable: bool
    rtt_ms: float | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "target": str(self.target),
            "reachable": self.reachable,
            "rtt_ms": self.rtt_ms,
            "detail": self.detail,
        }


def _ping(target: Target, timeout: float) -> Result:
    from icmplib import ping
    from icmplib.exceptions import ICMPLibError

    try:
        host = ping(target.host, count=1, timeout=timeout, privileged=os.geteuid() == 0)
    except (ICMPLibError, OSError) as error:
        return Result(target, False, None, f"ICMP failed: {error}")
    if host.is_alive:
        return Result(target, True, round(host.avg_rtt, 2), "answered ICMP echo")
    return Result(target, False, None, f"no ICMP echo reply within {timeout:g} s")


def _connect(target: Target, timeout: float) -> Result:
    started = time.monotonic()
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except TimeoutError:
        return Result(target, False, None, f"TCP connect timed out after {timeout:g} s")
    except OSError as error:
        return Result(target, False, None, f"TCP connect failed: {error.strerror or error}")
    return Result(target, True, round((time.monotonic() - started) * 1000, 2), "accepted TCP")


def probe(targets: list[Target], timeout: float = 1.0) -> list[Result]:
    """Test every target at once; one Result each, in the given order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        return list(
            pool.map(lambda t: _connect(t, timeout) if t.port else _ping(t, timeout), targets)
        )
