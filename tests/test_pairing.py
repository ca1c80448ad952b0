"""Two real sites over TLS pair, check each other, and break, through the CLI.

Each site is its own processes (gunicorn over TLS, worker, beat), database and
Redis; they talk signed HTTPS on loopback.
"""

from __future__ import annotations

import pytest

from tests.certs import make_ca
from tests.sites import Site, free_port, wait_until

pytestmark = pytest.mark.processes
KEY = "pairing test shared key 0001"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def sites(tmp_path_factory, ca):
    base = tmp_path_factory.mktemp("pair")
    started = []
    for name in ("primary", "backup"):
        site = Site(name, base, ca=ca, PEER_CHECK_SECONDS="2", PEER_CA_BUNDLE="")
        site.manage("failover", "set-key", stdin=KEY + "\n")
        started.append(site.start())
    yield started
    for site in started:
        site.destroy()


@pytest.fixture
def primary(sites):
    return sites[0]


@pytest.fixture
def backup(sites):
    return sites[1]


@pytest.fixture(autouse=True)
def unpaired(sites):
    """Every test starts and ends with both sites unpaired and holding the same key (the one
    test that changes a key puts it back)."""
    yield
    for site in sites:
        if site.process is None:
            site.start()
        if site.status()["role"] != "none":
            site.manage("failover", "break", "--force")


def establish(primary: Site, backup: Site, *extra: str, check: bool = True):
    return primary.manage(
        "failover", "establish",
        "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        *extra, check=check,
    )  # fmt: skip


def pin(site: Site) -> tuple[str, str]:
    return ("--backup-fingerprint", site.certificate_fingerprint)


def test_establishing_shows_the_backups_certificate_before_pinning_it(primary, backup):
    result = establish(primary, backup, check=False)
    assert result.returncode != 0
    assert f"presents the certificate {backup.certificate_fingerprint}" in result.stderr
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_establishing_pairs_both_sites_with_the_same_epoch(primary, backup):
    result = establish(primary, backup, *pin(backup))
    assert "this site is primary" in result.stdout
    primary_status, backup_status = primary.status(), backup.status()
    assert primary_status["role"] == "primary"
    assert backup_status["role"] == "backup"
    assert primary_status["epoch"] == backup_status["epoch"] > 0
    assert primary_status["peer"]["name"] == "backup"
    assert backup_status["peer"]["name"] == "primary"
    assert backup_status["peer"]["address"] == f"127.0.0.1:{primary.port}"


def test_each_site_checks_the_other_regularly(primary, backup):
    establish(primary, backup, *pin(backup))
    first = primary.status()["peer"]["last_check"]
    assert wait_until(lambda: primary.status()["peer"]["last_check"] != first, timeout=120)
    for site, peer_role in ((primary, "backup"), (backup, "primary")):
        peer = site.status()["peer"]
        assert peer["reachable"] is True
        assert peer["role"] == peer_role


def test_breaking_from_the_backup_returns_both_to_none(primary, backup):
    establish(primary, backup, *pin(backup))
    result = backup.manage("failover", "break")
    assert "has left the relationship too" in result.stdout
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_breaking_from_the_primary_returns_both_to_none(primary, backup):
    establish(primary, backup, *pin(backup))
    primary.manage("failover", "break")
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_a_key_mismatch_is_named_and_changes_nothing(primary, backup):
    backup.manage("failover", "set-key", stdin="a different key entirely\n")
    try:
        result = establish(primary, backup, *pin(backup), check=False)
    finally:
        backup.manage("failover", "set-key", stdin=KEY + "\n")
    assert result.returncode != 0
    assert "key mismatch" in result.stderr
    assert primary.status()["role"] == "none"
    assert backup.status()["role"] == "none"


def test_an_unreachable_backup_is_named(primary):
    port = free_port()
    result = primary.manage(
        "failover", "establish", "--backup-host", "127.0.0.1", "--backup-port", str(port),
        "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        "--backup-fingerprint", "AA" * 32, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"Could not reach 127.0.0.1:{port}: connection refused" in result.stderr


def test_a_changed_certificate_is_refused_naming_both_fingerprints(primary, backup):
    wrong = ":".join(["AB"] * 32)
    result = establish(primary, backup, "--backup-fingerprint", wrong, check=False)
    assert result.returncode != 0
    assert wrong in result.stderr
    assert backup.certificate_fingerprint in result.stderr
    assert backup.status()["role"] == "none"


def test_breaking_needs_force_when_the_peer_is_stopped(primary, backup):
    establish(primary, backup, *pin(backup))
    backup.stop()
    refused = primary.manage("failover", "break", check=False)
    assert refused.returncode != 0
    assert "Use Force" in refused.stderr
    assert primary.status()["role"] == "primary"
    forced = primary.manage("failover", "break", "--force")
    assert "could not be told" in forced.stdout
    assert primary.status()["role"] == "none"


def test_the_backup_sees_the_primary_go_unreachable(primary, backup):
    establish(primary, backup, *pin(backup))
    primary.stop()
    assert wait_until(lambda: backup.status()["peer"]["reachable"] is False, timeout=120)
    assert "Could not reach" in backup.status()["peer"]["error"]
