"""Two real sites: values from the primary that the backup's own pages would refuse never
reach the backup's tables, and the backup keeps serving.

The bad values are written straight into the primary's database, past every form, as a
damaged or hostile primary would hold them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.sites import Site, wait_until

pytestmark = [pytest.mark.processes, pytest.mark.database]
KEY = "peer values sites shared key 1"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[Site, Site]]:
    base = tmp_path_factory.mktemp("peer-values")
    primary = Site("primary", base)
    backup = Site("backup", base)
    for site in (primary, backup):
        # Syncs on request only: each test asks for the one it watches.
        site.prepare(
            key=KEY,
            python=(
                "from failover.models import BackupSettings\n"
                "s = BackupSettings.load(); s.sync_interval = 'daily'; s.save()\n"
            )
            + (
                "from appliance.models import SiteSettings\n"
                "s = SiteSettings.load(); s.site_name = 'Acme Support'; s.save()"
                if site is primary
                else ""
            ),
        )
    try:
        for site in (primary, backup):
            site.start()
        primary.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        )  # fmt: skip
        first = wait_until(lambda: finished_run(backup), timeout=300)
        assert first["status"] == "succeeded", first
        yield primary, backup
    finally:
        for site in (primary, backup):
            site.destroy()


def finished_run(site: Site, after: int = 0) -> dict | None:
    run = site.latest_run()
    if run and run["id"] > after and run["status"] in ("succeeded", "failed"):
        return run
    return None


def site_settings(site: Site) -> tuple:
    return site.rows("SELECT site_name, time_zone FROM appliance_sitesettings WHERE id = 1")[0]


def full_sync_after_writing(primary: Site, backup: Site, assignment: str) -> dict:
    """Write `assignment` into the primary's site settings row, past validation, and run a
    full sync on the backup; the run as it ended."""
    primary.shell(
        "from appliance.models import SiteSettings\n"
        f"SiteSettings.objects.filter(pk=1).update({assignment})"
    )
    before = backup.latest_run()["id"]
    backup.manage("failover", "sync-now", "--full")
    return wait_until(lambda: finished_run(backup, after=before), timeout=300)


@pytest.mark.parametrize(
    ("assignment", "field", "reason"),
    [
        ("time_zone='Not/AZone'", "time_zone", "'Not/AZone' is not one of its choices"),
        pytest.param(
            "site_name='S' * 5000",
            "site_name",
            "5000 characters long; at most 100",
            marks=pytest.mark.skipif(
                os.environ.get("DATABASE_URL", "").startswith("postgres"),
                reason="PostgreSQL refuses a 5000-character site name at the primary already "
                "(varchar(100)); SQLite stores it, so the first pass sends it",
            ),
        ),
    ],
)
def test_a_site_settings_value_the_backup_cannot_serve_with_refuses_the_sync(
    pair, assignment, field, reason
):
    primary, backup = pair
    kept = site_settings(backup)
    try:
        run = full_sync_after_writing(primary, backup, assignment)
        assert run["status"] == "failed"
        assert (
            f"appliance.sitesettings record with key 1 has a value in field {field}" in run["error"]
        )
        assert reason in run["error"]
        assert run["attempts"] == 1, "the same record would come again: no retry"
        assert site_settings(backup) == kept == ("Acme Support", "UTC")
        assert backup.get("/login") == 200
    finally:
        primary.shell(
            "from appliance.models import SiteSettings\n"
            "SiteSettings.objects.filter(pk=1).update(site_name='Acme Support', time_zone='UTC')"
        )


def backup_settings(site: Site) -> tuple:
    return site.rows(
        "SELECT sync_interval, poll_interval_seconds, connectivity_test_ips, automatic_failover "
        "FROM failover_backupsettings WHERE id = 1"
    )[0]


def test_backup_settings_the_backups_page_would_refuse_are_refused_with_the_reason(pair):
    primary, backup = pair
    kept = backup_settings(backup)
    note = primary.shell(
        "from failover import pair_settings\n"
        "from failover.models import BackupSettings\n"
        "s = BackupSettings.load()\n"
        "s.poll_interval_seconds = 0\n"
        "s.connectivity_test_ips = 'not-an-ip; rm -rf /'\n"
        "s.automatic_failover = True\n"
        "print(pair_settings.save_backup_settings(s, 'test'))"
    )
    assert "refused" in note and "HTTP 400" in note
    assert "poll_interval_seconds: Poll every 1 to 3600 seconds." in note
    assert "Not an IP address or address:port: not-an-ip;" in note
    assert "without a way to point clients at the new primary" in note
    assert backup_settings(backup) == kept
    assert backup.get("/login") == 200


def pair_key(site: Site) -> tuple:
    return site.rows("SELECT pair_salt, pair_key_id FROM security_presharedkey WHERE id = 1")[0]


def test_establish_agreed_one_random_pair_key_and_rekey_agrees_a_new_one(pair):
    primary, backup = pair
    salt, key_id = pair_key(primary)
    assert len(salt) == 64 and key_id.startswith("pair-")
    assert pair_key(backup) == (salt, key_id)
    # A pair from before per-pair salts: both sites sign with the bootstrap key.
    for site in (primary, backup):
        site.shell("from security.models import PreSharedKey\nPreSharedKey.set_pair('', '')")
    said = primary.manage("failover", "rekey").stdout
    assert "New pair signing key agreed with backup" in said
    upgraded = pair_key(primary)
    assert upgraded[1].startswith("pair-") and upgraded != (salt, key_id)
    assert pair_key(backup) == upgraded
    before = backup.latest_run()["id"]
    backup.manage("failover", "sync-now")
    run = wait_until(lambda: finished_run(backup, after=before), timeout=300)
    assert run["status"] == "succeeded", run
