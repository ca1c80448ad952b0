"""Role changes between two real sites: Become Primary/Backup and the automatic monitor.

The shared IP is handled by the recording driver here (both sites share one
machine's loopback); the Linux driver moves a real address in
tests/test_shared_ip_driver.py and in the namespace lab.
"""

from __future__ import annotations

import socket

import pytest

from tests.sites import Site, shared_ip_pair, wait_until

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


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """One pair for the module; each test starts from the roles the last one left."""
    with shared_ip_pair(tmp_path_factory, KEY, SHARED) as pair:
        yield pair


@pytest.fixture
def pair(sites):
    """(primary, backup) as the sites say now: both running, no automatic failover, and
    the primary holding the shared IP."""
    for site in sites:
        if site.process is None:
            site.start()
        set_automatic_failover(site, enabled=False)

    def settled():
        roles = {site: role(site) for site in sites}
        primaries = [site for site in sites if roles[site] == "primary"]
        return len(primaries) == 1 and holds(primaries[0]) and primaries[0]

    primary = wait_until(settled, timeout=120)
    assert primary, {site.name: role(site) for site in sites}
    return primary, next(site for site in sites if site is not primary)


def holds(site: Site) -> bool:
    """Whether the site holds the shared IP (what its recording driver was told to do)."""
    return f"{SHARED} on lo" in site.recorded_shared_ips()


def role(site: Site) -> str:
    return site.role()


def set_automatic_failover(site: Site, *, enabled: bool, test_ip: str = "", timeout: int = 3):
    site.shell(
        "from failover.models import BackupSettings\nfrom failover import schedule\n"
        f"s = BackupSettings.load(); s.automatic_failover = {enabled!r}\n"
        f"s.poll_interval_seconds = 1; s.primary_timeout_seconds = {timeout}\n"
        f"s.connectivity_test_ips = {test_ip!r}; s.save(); schedule.apply(s)"
    )


def test_become_primary_with_a_final_sync_swaps_roles_and_moves_the_address(pair):
    primary, backup = pair
    assert not holds(backup)
    primary.manage("generate_reports", "25", "--seed", "5")
    result = backup.manage("failover", "become-primary", "--sync-first")
    assert "now primary" in result.stdout
    assert role(backup) == "primary"
    assert wait_until(lambda: role(primary) == "backup", timeout=120)
    assert not holds(primary)
    assert wait_until(lambda: holds(backup), timeout=120)
    assert backup.dump("appliance.report") == primary.dump("appliance.report")
    assert backup.status()["epoch"] > primary.status()["epoch"] - 1


def test_become_backup_hands_the_role_to_the_other_site(pair):
    primary, backup = pair
    primary.manage("failover", "become-backup")
    assert wait_until(lambda: role(backup) == "primary", timeout=120)
    assert role(primary) == "backup"
    assert wait_until(lambda: holds(backup) and not holds(primary), timeout=120)


def test_the_backup_takes_over_when_the_primary_dies_and_the_old_primary_returns_as_backup(
    pair, outside
):
    primary, backup = pair
    seen = len(kinds(backup))
    set_automatic_failover(backup, enabled=True, test_ip=outside)
    primary.stop()
    assert wait_until(lambda: role(backup) == "primary", timeout=120), backup.log("worker.log")
    assert wait_until(lambda: holds(backup), timeout=120)
    history = kinds(backup)[seen:]
    assert "primary_down" in history and "failover" in history
    primary.start()
    # No automatic failback: the old primary learns of the newer epoch and steps down.
    assert wait_until(lambda: role(primary) == "backup", timeout=120)
    assert wait_until(lambda: not holds(primary), timeout=120)
    assert role(backup) == "primary"


def kinds(site: Site) -> list[str]:
    return site.event_kinds()


def test_an_isolated_backup_does_not_fail_over(pair):
    primary, backup = pair
    seen = len(kinds(backup))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"127.0.0.1:{closed.getsockname()[1]}"
    set_automatic_failover(backup, enabled=True, test_ip=unreachable)
    primary.stop()

    assert wait_until(lambda: "isolated" in kinds(backup)[seen:], timeout=120), backup.log(
        "worker.log"
    )
    assert role(backup) == "backup"
    assert not holds(backup)
