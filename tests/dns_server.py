"""A real authoritative DNS server for the DNS swing's tests: Knot DNS from Debian (knotd).

`Knot` serves one zone that accepts dynamic updates signed with one TSIG key,
on loopback (in-process tests) or on an address inside a namespace the test
made (the lab). Nothing else is contacted. `answer` asks the server the way a
client would (unsigned), from the server's namespace when it has one, so the
tests read the record independently of the product's own code.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

ROOT = Path(__file__).resolve().parent.parent
ZONE = "failover.test"
NAME = f"support.{ZONE}"
KEY_NAME = "failover-key"
ALGORITHM = "hmac-sha256"

ASK = """
import json, sys
import dns.message, dns.query
host, port, name, rdtype = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
answer = dns.query.tcp(dns.message.make_query(name, rdtype), host, port=port, timeout=5)
print(json.dumps(sorted(r.to_text() for rrset in answer.answer for r in rrset)))
"""


def require_knot() -> None:
    """Skip, saying what is missing, where knotd is not installed (tests/setup-system)."""
    if shutil.which("knotd") is None:
        pytest.skip("the DNS swing's tests need knotd (Debian's knot; tests/setup-system)")


def make_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Knot:
    """One knotd process with its configuration, zone and journal in a folder of its own."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 53,
        *,
        netns: str | None = None,
        secret: str | None = None,
        records: tuple[str, ...] = (),
    ) -> None:
        self.host, self.port, self.netns = host, port, netns
        self.secret = secret or make_secret()
        # A short path: knotd's control socket lives in it (at most 107 characters).
        self.folder = Path(tempfile.mkdtemp(prefix="knot-"))
        self.records = records
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.folder / "knot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _configure(self) -> Path:
        (self.folder / "db").mkdir()
        (self.folder / f"{ZONE}.zone").write_text(
            "\n".join(
                [
                    "$TTL 60",
                    f"@ SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
                    f"@ NS ns.{ZONE}.",
                    f"ns A {self.host}" if ":" not in self.host else f"ns AAAA {self.host}",
                    *self.records,
                    "",
                ]
            )
        )
        conf = self.folder / "knot.conf"
        conf.write_text(
            f"""server:
    listen: {self.host}@{self.port}
    rundir: {self.folder}
    pidfile: {self.folder}/knot.pid
database:
    storage: {self.folder}/db
log:
  - target: stderr
    any: info
key:
  - id: {KEY_NAME}
    algorithm: {ALGORITHM}
    secret: {self.secret}
acl:
  - id: swing
    key: {KEY_NAME}
    action: update
template:
  - id: default
    storage: {self.folder}
    zonefile-sync: -1
    journal-content: all
zone:
  - domain: {ZONE}
    file: {ZONE}.zone
    acl: swing
"""
        )
        return conf

    def start(self, timeout: float = 30) -> Knot:
        conf = self._configure()
        argv = ["knotd", "-c", str(conf)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(self.folder / "knot.log", "wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while "server started" not in self.log or f"[{ZONE}.] loaded" not in self.log:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"knotd did not start:\n{self.log}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Knot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, name: str = NAME, rdtype: str = "A") -> list[str]:
        """What the server answers a client for `name` (unsigned), from its own namespace."""
        if not self.netns:
            query = dns.message.make_query(name, rdtype)
            found = dns.query.tcp(query, self.host, port=self.port, timeout=5)
            return sorted(rdata.to_text() for rrset in found.answer for rdata in rrset)
        argv = ["ip", "netns", "exec", self.netns, sys.executable, "-c", ASK, self.host,
                str(self.port), name, rdtype]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        return json.loads(done.stdout)

    def serial(self) -> int:
        return int(self.answer(ZONE, "SOA")[0].split()[2])
