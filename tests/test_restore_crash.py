"""A restore killed (SIGKILL) after it moved this site's file of the same name aside and
before its commit: the next start, or the next restore, puts that file back.

The restore runs as its own process (`manage.py failover restore`). The test holds the
site's database so that the restore, having placed its files, waits for its transaction:
whatever it has done by then, it cannot have committed. Then it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sites import ROOT, Site, wait_until

pytestmark = pytest.mark.processes
SHARED = "recordings/shared-name.rec"
FROM_THE_BACKUP = b"the recording as the backup holds it\n" * 50
THE_SITES_OWN = b"this site's own recording of that name\n" * 40


@contextlib.contextmanager
def database_held(site: Site) -> Iterator[None]:
    """The site's database locked for writing by this test until the block ends."""
    if site.env.get("DATABASE_URL", "").startswith("postgres"):
        import psycopg

        with psycopg.connect(site.env["DATABASE_URL"]) as connection:
            connection.execute("LOCK TABLE failover_failoverstate IN EXCLUSIVE MODE")
            yield
            connection.rollback()
        return
    import sqlite3

    connection = sqlite3.connect(site.data_dir / "db.sqlite3", isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    made = Site("solo", tmp_path)
    made.generate_reports(20, "--seed", "3", "--with-recordings", "3")
    made.shell(
        "import datetime as dt\n"
        "from django.core.files.base import ContentFile\n"
        "from django.core.files.storage import default_storage\n"
        "from appliance.models import Report\n"
        "from failover.models import FailoverState, SyncSource\n"
        "FailoverState.load(); SyncSource.load()\n"
        f"name = default_storage.save({SHARED!r}, ContentFile({FROM_THE_BACKUP!r}))\n"
        "Report.objects.create(representative='rep', customer_name='c', recording=name,\n"
        "    outcome='resolved',\n"
        "    started_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))\n"
    )
    yield made
    made.destroy()


def media(site: Site) -> Path:
    return site.data_dir / "media"


def killed_restore(site: Site, backup: Path) -> None:
    """Run a restore of `backup` and SIGKILL it once its files are in place."""
    displaced = site.data_dir / "restore-displaced" / "0"
    with database_held(site):
        restore = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "failover", "restore", str(backup)],
            env=site.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            placed = wait_until(
                lambda: (
                    restore.poll() is not None
                    or (displaced.is_file() and content(media(site) / SHARED) == FROM_THE_BACKUP)
                ),
                timeout=120,
                interval=0.01,
            )
            assert placed and restore.poll() is None, restore.communicate()[0]
            os.killpg(restore.pid, signal.SIGKILL)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(restore.pid, signal.SIGKILL)
            restore.wait()
    assert restore.returncode == -signal.SIGKILL


def content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # between the moves
        return None


def the_sites_data(site: Site) -> list:
    return site.rows("SELECT id, customer_name, recording FROM appliance_report ORDER BY id")


def test_the_next_start_puts_back_the_file_a_killed_restore_moved_aside(site, tmp_path):
    backup = tmp_path / "site.tar.gz"
    site.manage("failover", "backup", str(backup))
    # The site moves on: a report goes, its recording too, and its own file takes the name.
    gone = site.rows(
        "SELECT recording FROM appliance_report WHERE recording != '' AND recording != %s",
        (SHARED,),
    )[0][0]
    site.shell(
        f"from appliance.models import Report\nReport.objects.filter(recording={gone!r}).delete()"
    )
    (media(site) / gone).unlink()
    (media(site) / SHARED).write_bytes(THE_SITES_OWN)
    before = the_sites_data(site)

    killed_restore(site, backup)

    # What the kill left: the data as it was, the backup's files in the media folder.
    assert the_sites_data(site) == before
    assert (media(site) / SHARED).read_bytes() == FROM_THE_BACKUP
    assert (media(site) / gone).exists()

    said = site.manage("failover", "start-check").stdout

    assert (
        "A restore stopped before it committed: 1 file(s) it had moved aside were put back." in said
    )
    assert (media(site) / SHARED).read_bytes() == THE_SITES_OWN
    assert not (media(site) / gone).exists()
    assert the_sites_data(site) == before
    assert not (site.data_dir / "restore-displaced").exists()
    assert not (site.data_dir / "restore-displaced.json").exists()


def test_the_next_restore_puts_it_back_first_then_restores(site, tmp_path):
    backup = tmp_path / "site.tar.gz"
    site.manage("failover", "backup", str(backup))
    (media(site) / SHARED).write_bytes(THE_SITES_OWN)
    site.shell(
        "from appliance.models import Report\n"
        "Report.objects.filter(customer_name='c').update(customer_name='changed')"
    )

    killed_restore(site, backup)
    restored = site.manage("failover", "restore", str(backup))

    assert "21 report(s)" in restored.stdout
    assert (media(site) / SHARED).read_bytes() == FROM_THE_BACKUP
    assert site.count("appliance_report", "WHERE customer_name = %s", ("c",)) == 1
    assert not (site.data_dir / "restore-displaced").exists()
