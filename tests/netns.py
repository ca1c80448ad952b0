"""Network namespaces that a test creates and always removes (CI runs as root).

Every address used lives only inside these namespaces, and every process that
sends to them runs inside them (`Namespace.run`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def require_namespaces() -> None:
    """Skip, saying why, where namespaces cannot be made (not root, no ip(8))."""
    if os.geteuid() != 0:
        pytest.skip("network-namespace tests need root (CI runs them as root)")
    if shutil.which("ip") is None:
        pytest.skip("network-namespace tests need ip(8) from iproute2")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(
        self, *argv: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=check, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def python(self, code: str) -> str:
        """Run Python with the project on its path inside the namespace; returns stdout."""
        env_code = f"import sys; sys.path.insert(0, {ROOT!r})\n" + code
        return self.run(sys.executable, "-c", env_code).stdout

    def ip(self, *args: str) -> str:
        return ip("-n", self.name, *args)

    def mac(self, device: str) -> str:
        return self.ip("-o", "link", "show", device).split("link/ether ")[1].split()[0]


@contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, Namespace]]:
    """Create one namespace per role (names unique to this run); remove them afterwards."""
    tag = uuid.uuid4().hex[:6]
    made = {role: Namespace(f"af-{role[:6]}-{tag}") for role in roles}
    try:
        for space in made.values():
            ip("netns", "add", space.name)
            space.ip("link", "set", "lo", "up")
        yield made
    finally:
        for space in made.values():
            subprocess.run(["ip", "netns", "del", space.name], capture_output=True, check=False)


def link(a: Namespace, a_dev: str, b: Namespace, b_dev: str) -> None:
    """A veth pair created straight into the two namespaces, both ends up."""
    ip("link", "add", a_dev, "netns", a.name, "type", "veth", "peer", b_dev, "netns", b.name)
    a.ip("link", "set", a_dev, "up")
    b.ip("link", "set", b_dev, "up")
