"""Continuous replication between two real sites: the backup follows each change as it commits.

Real processes (web, workers, beat, Redis) on loopback, signed HTTP. Continuously is
the default sync interval of a new pair; the tests that need another mode set it and
put it back. The namespace lab has the power-off and link-cut trials
(tests/test_lab_replication.py).
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.sites import Site, wait_until
from tests.syncing import SYNCED, media_files

pytestmark = [pytest.mark.processes, pytest.mark.database]
KEY = "replication sites shared key 1"
TOKEN = "7" * 40
_names = itertools.count()


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[Site, Site]]:
    base = tmp_path_factory.mktemp("replication")
    primary = Site("primary", base, PEER_CHECK_SECONDS="2")
    backup = Site("backup", base, PEER_CHECK_SECONDS="2")
    backup.prepare(key=KEY)
    primary.prepare(
        key=KEY,
        python=(
            "from django.contrib.auth.models import User\n"
            "from appliance.models import ApiToken\n"
            "admin = User.objects.create_superuser('writer', 'w@example.com', 'long password 12')\n"
            f"ApiToken.objects.create(user=admin, digest=ApiToken.digest_of({TOKEN!r}))"
        ),
    )
    primary.generate_reports(200, "--seed", "5", "--with-recordings", "2")
    try:
        for site in (primary, backup):
            site.start()
        primary.manage(
            "failover", "establish",
            "--backup-host", "127.0.0.1", "--backup-port", str(backup.port),
            "--reverse-host", "127.0.0.1", "--reverse-port", str(primary.port),
        )  # fmt: skip
        assert in_step(primary, backup), "the first sync did not bring the backup level"
        yield primary, backup
    finally:
        for site in (primary, backup):
            site.destroy()


def reports(site: Site) -> int:
    return site.count("appliance_report")


def in_step(primary: Site, backup: Site, timeout: float = 300) -> bool:
    """Wait until the backup holds what the primary holds (rows, then files)."""
    return bool(
        wait_until(lambda: reports(backup) == reports(primary) > 0, timeout, interval=0.1)
        and wait_until(
            lambda: (
                backup.dump(*SYNCED) == primary.dump(*SYNCED)
                and media_files(backup) == media_files(primary)
            ),
            timeout,
            interval=1,
        )
    )


def sync_runs(site: Site) -> list[tuple[int, str, bool]]:
    found = site.rows('SELECT id, trigger, "full" FROM failover_syncrun ORDER BY id')
    return [(key, trigger, bool(full)) for key, trigger, full in found]


def post_report(site: Site, name: str) -> int:
    """A report written through the API as a client would; the HTTP status."""
    request = urllib.request.Request(  # noqa: S310 - the site's own loopback URL
        site.url + "/api/v1/reports/",
        data=json.dumps(
            {
                "representative": "r",
                "customer_name": name,
                "started_at": "2026-11-30T10:00:00Z",
                "outcome": "resolved",
            }
        ).encode(),
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
        return answer.status


def has_report(site: Site, name: str) -> bool:
    return site.count("appliance_report", "WHERE customer_name = %s", (name,)) == 1


def configure(site: Site, *args: str) -> None:
    site.manage("failover", "configure", *args)


def test_a_write_on_the_primary_reaches_the_backup_with_its_file_and_no_sync_run(pair):
    primary, backup = pair
    runs_before = sync_runs(backup)
    primary.generate_reports(40, "--seed", "6", "--with-recordings", "3")
    primary.shell(
        "from appliance.models import Report\n"
        "first = Report.objects.order_by('id').first(); first.outcome = 'escalated'; first.save()\n"
        "Report.objects.order_by('id')[1].delete()"
    )
    assert in_step(primary, backup)
    assert sync_runs(backup) == runs_before, "continuous replication needs no sync run"
    assert backup.count("failover_pendingrecording") == 0
    for site in (primary, backup):
        lag = site.cli_status()["replication"]
        assert lag["following"] and lag["connected"], lag
        assert wait_until(lambda s=site: s.cli_status()["replication"]["changes_behind"] == 0, 60)


def test_a_backup_away_for_a_while_catches_up_without_a_full_resync(pair):
    primary, backup = pair
    backup.stop()
    primary.generate_reports(3000, "--seed", "7")
    runs_before = sync_runs(backup)
    backup.start()
    assert in_step(primary, backup)
    assert sync_runs(backup) == runs_before, "caught up by replication, not by a resync"


def test_a_cursor_the_primary_no_longer_serves_brings_a_full_resync(pair):
    primary, backup = pair
    backup.stop()
    primary.generate_reports(5, "--seed", "8")
    # The log is pruned past the backup's cursor, as it would be after a long absence.
    primary.shell(
        "from failover.models import ChangeLog, SyncSource\n"
        "from failover.sync import changelog\n"
        "last = changelog.sequence()\n"
        "SyncSource.objects.update(horizon=last)\n"
        "ChangeLog.objects.filter(seq__lte=last).delete()"
    )
    backup.start()
    resync = wait_until(
        lambda: next((r for r in sync_runs(backup) if r[1] == "resync"), None), timeout=120
    )
    assert resync, sync_runs(backup)
    assert in_step(primary, backup)
    run = backup.sync_run(resync[0])
    assert (run["status"], run["full"]) == ("succeeded", True), run


def test_in_synchronous_mode_a_write_is_answered_once_the_backup_holds_it(pair):
    primary, backup = pair
    configure(primary, "--replication", "synchronous", "--synchronous-timeout", "2")
    try:
        assert wait_until(lambda: backup.status()["role"] == "backup", 10)
        for _ in range(10):
            name = f"sync-{next(_names)}"
            assert post_report(primary, name) == 201
            assert has_report(backup, name), f"{name} was acknowledged before the backup had it"

        backup.stop()
        name = f"alone-{next(_names)}"
        assert post_report(primary, name) == 201, "the primary goes on alone"
        assert "sync_suspended" in primary.event_kinds()
        suspended = primary.cli_status()["replication"]["synchronous_suspended_since"]
        assert suspended is not None
        backup.start()
        assert wait_until(lambda: "sync_resumed" in primary.event_kinds(), 300)
        assert has_report(backup, name)
        name = f"again-{next(_names)}"
        assert post_report(primary, name) == 201
        assert has_report(backup, name)
    finally:
        configure(primary, "--replication", "asynchronous")


def test_a_primary_stepping_down_keeps_what_its_successor_lacks_and_both_sites_say_so(pair):
    primary, backup = pair
    configure(primary, "--sync-interval", "hourly")  # no replication: the writes stay behind
    try:
        assert in_step(primary, backup)
        names = [f"unsent-{next(_names)}" for _ in range(3)]
        for name in names:
            assert post_report(primary, name) == 201
        said = backup.manage("failover", "become-primary").stdout
        assert "now primary" in said
        old = primary.rows(
            "SELECT role, unsent_changes, unsent_export FROM failover_failoverstate WHERE id = 1"
        )[0]
        assert old[:2] == ("backup", 3), old
        exported = json.loads((primary.data_dir / "exports" / old[2]).read_text())
        assert sorted(r["fields"]["customer_name"] for r in exported["records"]) == names
        assert "unsent_changes" in primary.event_kinds()
        assert wait_until(
            lambda: (
                backup.rows("SELECT peer_unsent_changes FROM failover_failoverstate")[0][0] == 3
            ),
            60,
        ), "the new primary does not know what the old one kept"
    finally:
        configure(backup, "--sync-interval", "continuous")
        # Back to the starting roles for the tests after this one.
        primary.manage("failover", "become-primary", "--sync-first")
