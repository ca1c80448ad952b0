"""Role changes between two real sites: Become Primary/Backup and the automatic monitor.

The shared IP is handled by the recording driver here (both sites share one
machine's loopback); the Linux driver moves a real address in
tests/test_shared_ip_driver.py and in the namespace lab.
"""

from __future__ import annotations

import socket

import pytest

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
KEY = "failover sites shared key 01"
SHARED = "198.51.100.50/24"


@pytest.fixture(scope="module")
def outside():
    """A TCP listener standing for the outside world that the connectivity test reaches."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def pair(tmp_path, outside):
    sites = []
    for name in ("primary", "backup"):
        site = Site(name, tmp_path, SHARED_IP_DRIVER="recording", PEER_CHECK_SECONDS="1")
        site.manage("failover", "set-key", stdin=KEY + "\n")
        site.shell(
            "from failover.models import SharedIP\n"
            f"SharedIP(enabled=True, address={SHARED!r}, interface='lo').save()"
        )
        sites.append(site.start())
    primary, backup = sites
    primary.manage(
        "failover", "establish",
        "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
    )  # fmt: skip
    yield primary, backup
    for site in sites:
        site.destroy()


def holds(site: Site) -> bool:
    return (
        site.shell("from failover import roles; print(roles.holds_shared_ip())").strip() == "True"
    )


def role(site: Site) -> str:
    return site.status()["role"]


def automatic_failover(backup: Site, test_ip: str, timeout: int = 3) -> None:
    backup.shell(
        "from failover.models import BackupSettings\nfrom failover import schedule\n"
        "s = BackupSettings.load(); s.automatic_failover = True; s.poll_interval_seconds = 1\n"
        f"s.primary_timeout_seconds = {timeout}; s.connectivity_test_ips = {test_ip!r}\n"
        "s.save(); schedule.apply(s)"
    )


def test_the_primary_holds_the_shared_ip_and_the_backup_does_not(pair):
    primary, backup = pair
    assert wait_until(lambda: holds(primary), timeout=20)
    assert not holds(backup)


def test_become_primary_with_a_final_sync_swaps_roles_and_moves_the_address(pair):
    primary, backup = pair
    assert wait_until(lambda: holds(primary), timeout=20)
    primary.manage("generate_reports", "25", "--seed", "5")
    result = backup.manage("failover", "become-primary", "--sync-first")
    assert "now primary" in result.stdout
    assert role(backup) == "primary"
    assert wait_until(lambda: role(primary) == "backup", timeout=10)
    assert not holds(primary)
    assert wait_until(lambda: holds(backup), timeout=20)
    assert backup.dump("appliance.report") == primary.dump("appliance.report")
    assert backup.status()["epoch"] > primary.status()["epoch"] - 1


def test_become_backup_hands_the_role_to_the_other_site(pair):
    primary, backup = pair
    assert wait_until(lambda: holds(primary), timeout=20)
    primary.manage("failover", "become-backup")
    assert wait_until(lambda: role(backup) == "primary", timeout=30)
    assert role(primary) == "backup"
    assert wait_until(lambda: holds(backup) and not holds(primary), timeout=20)


def test_the_backup_takes_over_when_the_primary_dies_and_the_old_primary_returns_as_backup(
    pair, outside
):
    primary, backup = pair
    assert wait_until(lambda: holds(primary), timeout=20)
    automatic_failover(backup, outside)
    primary.stop()
    assert wait_until(lambda: role(backup) == "primary", timeout=60), backup.log("worker.log")
    assert wait_until(lambda: holds(backup), timeout=20)
    history = backup.shell(
        "from failover.models import FailoverEvent\n"
        "print([e.kind for e in FailoverEvent.objects.order_by('id')])"
    )
    assert "'primary_down'" in history and "'failover'" in history
    primary.start()
    # No automatic failback: the old primary learns of the newer epoch and steps down.
    assert wait_until(lambda: role(primary) == "backup", timeout=30)
    assert wait_until(lambda: not holds(primary), timeout=20)
    assert role(backup) == "primary"


def test_an_isolated_backup_does_not_fail_over(pair):
    primary, backup = pair
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"127.0.0.1:{closed.getsockname()[1]}"
    automatic_failover(backup, unreachable)
    primary.stop()

    def isolated() -> bool:
        return "isolated" in backup.shell(
            "from failover.models import FailoverEvent\n"
            "print(list(FailoverEvent.objects.values_list('kind', flat=True)))"
        )

    assert wait_until(isolated, timeout=60), backup.log("worker.log")
    assert role(backup) == "backup"
    assert not holds(backup)
