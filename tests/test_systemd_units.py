"""deploy/systemd/: the units systemd-analyze accepts, sandboxed, with the network privilege
in the network worker alone."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.sites import ROOT

UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("web", "worker", "network", "replication", "beat", "migrate")
INSTALL_PREFIX = "/opt/appliance/bin/"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.skip("systemd-analyze is missing: run tests/setup-system as root (Debian's systemd)")
    return found


def directives(service: str) -> dict[str, list[str]]:
    """The unit's settings, each with every value it is given (ExecStart may repeat)."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / f"appliance-{service}.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture
def installed_units(tmp_path) -> Path:
    """The units as on a server whose virtual environment is this one: systemd-analyze
    checks that each command exists and can be executed."""
    bin_dir = str(Path(sys.executable).parent) + "/"
    for name in ("gunicorn", "celery", "appliance"):
        assert Path(bin_dir, name).exists(), f"{name} is not installed in {bin_dir}"
    for unit in UNITS.glob("appliance*.*"):
        if unit.suffix in (".service", ".target"):
            (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALL_PREFIX, bin_dir))
    return tmp_path


def test_systemd_analyze_verifies_every_unit_without_a_word(installed_units):
    units = sorted(str(path) for path in installed_units.iterdir())
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", *units],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_each_service_is_sandboxed_by_systemd_s_own_measure(installed_units):
    for service in SERVICES:
        result = subprocess.run(
            [systemd_analyze(), "security", "--offline=true", "--no-pager",
             str(installed_units / f"appliance-{service}.service")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
        assert level, result.stdout + result.stderr
        assert float(level.group(1)) <= 3.0, (service, level.group(0))


def test_every_service_runs_as_the_dedicated_user_with_no_way_to_gain_privileges():
    for service in SERVICES:
        unit = directives(service)
        assert unit["User"] == ["appliance"], service
        assert unit["NoNewPrivileges"] == ["yes"], service
        assert unit["ProtectSystem"] == ["strict"], service
        assert unit["PrivateTmp"] == ["yes"], service
        assert unit["EnvironmentFile"] == ["/etc/appliance/appliance.env"], service
        assert unit["StateDirectory"] == ["appliance"], service


def test_only_the_network_worker_holds_the_network_capabilities():
    network = directives("network")
    assert network["AmbientCapabilities"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert network["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert directives("web")["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    for service in ("worker", "replication", "beat", "migrate"):
        unit = directives(service)
        assert unit["CapabilityBoundingSet"] == [""], service
        assert "AmbientCapabilities" not in unit, service


def test_every_queue_is_served_by_exactly_one_worker_unit():
    def queues(service: str) -> set[str]:
        words = directives(service)["ExecStart"][0].split()
        return set(words[words.index("--queues") + 1].split(","))

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    for queue in routed | {"celery"}:
        serving = [
            service for service in ("worker", "network", "replication") if queue in queues(service)
        ]
        assert len(serving) == 1, (queue, serving)
    assert queues("network") == {"network"}


def test_the_example_environment_file_sets_only_documented_variables():
    readme = (ROOT / "README.md").read_text()
    example = (UNITS / "appliance.env.example").read_text()
    names = [line.split("=", 1)[0] for line in example.splitlines() if re.match(r"[A-Z_]+=", line)]
    assert "REDIS_URL" in names  # no embedded Redis outside runsite
    for name in names:
        assert f"`{name}`" in readme, name
