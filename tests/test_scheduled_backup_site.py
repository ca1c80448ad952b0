"""A real site's beat sends the daily backup at its time and its worker writes the file."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
ADMIN_PASSWORD = "a long enough administrator password 7"


@pytest.fixture
def site(tmp_path):
    running = Site("solo", tmp_path)
    yield running.start()
    running.destroy()


def backup_time() -> dt.time:
    """The next whole minute in UTC (the site's zone), or the one after when it is close:
    the schedule must be saved before its minute begins."""
    now = dt.datetime.now(dt.UTC)
    ahead = 1 if now.second < 45 else 2
    return (now.replace(second=0, microsecond=0) + dt.timedelta(minutes=ahead)).time()


def last_backup(site: Site) -> tuple | None:
    rows = site.rows(
        "SELECT last_succeeded, last_file, last_error FROM failover_scheduledbackup "
        "WHERE last_succeeded IS NOT NULL"
    )
    return rows[0] if rows else None


def test_the_beat_and_worker_run_the_daily_backup_at_its_time(site, tmp_path):
    site.generate_reports(40, "--with-recordings", "3")
    site.manage("ensureadmin", "admin", stdin=ADMIN_PASSWORD + "\n")
    session = site.session("admin", ADMIN_PASSWORD)
    folder = tmp_path / "backups"
    folder.mkdir()
    at = backup_time()

    page = site.post_form(
        session,
        "/management/failover/backup/",
        "/management/failover/backup/schedule/",
        enabled="on",
        folder=str(folder),
        keep="2",
        at=at.strftime("%H:%M"),
    )
    assert f"Daily backup at {at:%H:%M} to {folder}, keeping 2." in page

    # Beat notices the changed schedule, sends the task at that minute, the worker runs it.
    outcome = wait_until(lambda: last_backup(site), timeout=240)
    assert outcome, site.log("worker.log") + site.log("beat.log")
    succeeded, file, error = outcome
    assert succeeded, error
    [written] = folder.iterdir()
    assert str(written) == file
    with session.open(site.url + "/status/", timeout=30) as response:
        assert 'data-testid="scheduled-backup"><span class="badge text-bg-success">succeeded' in (
            response.read().decode()
        )

    restored = site.manage("failover", "restore", file)
    assert "40 report(s), 3 recording(s)" in restored.stdout
