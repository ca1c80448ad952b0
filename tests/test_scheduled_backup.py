"""The daily site backup: the task writes and prunes; its outcome shows and a failure alerts."""

from __future__ import annotations

import datetime as dt
import errno
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from appliance.models import Report
from appliance.reportgen import generate_reports
from failover import backups
from failover.models import AlertDelivery, AlertSettings, FailoverEvent, ScheduledBackup
from failover.tasks import scheduled_backup

pytestmark = pytest.mark.django_db


@pytest.fixture
def folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR.mkdir()
    (tmp_path / "backups").mkdir()
    return tmp_path


def turn_on(folder, keep: int = 2) -> ScheduledBackup:
    config = ScheduledBackup(enabled=True, folder=str(folder), keep=keep, at=dt.time(3, 0))
    config.save()
    return config


def status_text() -> str:
    out = io.StringIO()
    call_command("failover", "status", stdout=out)
    return out.getvalue()


def test_the_task_does_nothing_while_the_daily_backup_is_off(folders):
    ScheduledBackup(enabled=False, folder=str(folders / "backups")).save()

    scheduled_backup()

    assert list((folders / "backups").iterdir()) == []
    assert ScheduledBackup.load().last_succeeded is None


def test_the_task_writes_a_backup_that_restores_and_records_its_outcome(folders):
    generate_reports(5, seed=1, with_recordings=1)
    turn_on(folders / "backups")

    scheduled_backup()

    [written] = (folders / "backups").iterdir()
    config = ScheduledBackup.load()
    assert config.last_succeeded is True
    assert config.last_file == str(written)
    assert config.last_size == written.stat().st_size
    assert FailoverEvent.objects.filter(kind=FailoverEvent.Kind.BACKUP).exists()
    Report.objects.all().delete()
    backups.restore(written)
    assert Report.objects.count() == 5


def test_the_task_keeps_the_newest_files_of_this_site_only(folders):
    folder = folders / "backups"
    for day in (1, 2, 3):
        (folder / backups.file_name(dt.datetime(2026, 1, day, tzinfo=dt.UTC))).write_bytes(b"")
    others = [
        "site-backup-other-site-20260101-000000.tar.gz",
        # A site whose name begins with this one's ("test-site"): its backups are its own.
        "site-backup-test-site-b-20260101-000000-000000.tar.gz",
        "site-backup-test-site-20260101-000000.tar.gz.sha256",
        "site-backup-test-site-notes.tar.gz",
    ]
    for name in others:
        (folder / name).write_bytes(b"")
    turn_on(folder, keep=2)

    scheduled_backup()

    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(
        [
            backups.file_name(dt.datetime(2026, 1, 3, tzinfo=dt.UTC)),
            ScheduledBackup.load().last_file.rsplit("/", 1)[1],
            *others,
        ]
    )


@pytest.fixture
def one_moment(monkeypatch):
    """Every backup is made at the same microsecond."""
    moment = dt.datetime(2026, 11, 30, 3, 0, 0, 250_000, tzinfo=dt.UTC)
    monkeypatch.setattr(backups, "timezone", SimpleNamespace(now=lambda: moment))
    return moment


def test_backups_made_at_the_same_moment_each_get_a_file_of_their_own(folders, one_moment):
    folder = folders / "backups"
    generate_reports(3, seed=4)
    turn_on(folder, keep=5)

    scheduled_backup()
    first = ScheduledBackup.load().last_file
    Report.objects.filter(pk=Report.objects.order_by("pk").first().pk).delete()
    scheduled_backup()
    second = ScheduledBackup.load().last_file

    assert [first, second] == [
        str(folder / "site-backup-test-site-20261130-030000-250000.tar.gz"),
        str(folder / "site-backup-test-site-20261130-030000-250000-2.tar.gz"),
    ]
    assert backups.restore(Path(first)).counts["appliance.report"] == 3
    assert backups.restore(Path(second)).counts["appliance.report"] == 2
    assert list(folder.glob(".*")) == []


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_backup_never_replaces_a_file_of_the_name_it_would_take(
    folders, one_moment, monkeypatch, hard_links
):
    if not hard_links:  # a FAT stick or a network share: link() is refused

        def refused(*_args):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(backups.os, "link", refused)
    folder = folders / "backups"
    taken = folder / backups.file_name(one_moment)
    taken.write_bytes(b"another backup, written a moment ago")

    path, _summary = backups.write_dated_backup(folder)

    assert path == folder / backups.file_name(one_moment, counter=2)
    assert taken.read_bytes() == b"another backup, written a moment ago"
    assert backups.restore(path).counts["appliance.report"] == 0
    assert {p.name for p in folder.iterdir()} == {taken.name, path.name}


def test_a_backup_whose_every_name_is_taken_fails_and_replaces_none(folders, one_moment):
    folder = folders / "backups"
    for counter in range(1, backups.NAME_ATTEMPTS + 1):
        (folder / backups.file_name(one_moment, counter)).write_bytes(b"taken")
    turn_on(folder)

    scheduled_backup()

    config = ScheduledBackup.load()
    assert config.last_succeeded is False
    assert f"{backups.NAME_ATTEMPTS} backup names in a row are taken" in config.last_error
    assert {p.read_bytes() for p in folder.iterdir()} == {b"taken"}
    assert len(list(folder.iterdir())) == backups.NAME_ATTEMPTS


def test_pruning_orders_backups_by_their_time_and_counter(folders):
    folder = folders / "backups"
    at = dt.datetime(2026, 11, 30, 3, 0, 0, tzinfo=dt.UTC)
    oldest_style = "site-backup-test-site-20261130-025959.tar.gz"  # before microseconds
    names = [
        oldest_style,
        backups.file_name(at),
        backups.file_name(at, counter=2),
        backups.file_name(at, counter=10),
        backups.file_name(at + dt.timedelta(microseconds=1)),
    ]
    for name in names:
        (folder / name).write_bytes(b"")

    removed = backups.prune(folder, keep=2)

    assert [path.name for path in removed] == names[:3]
    assert sorted(path.name for path in folder.iterdir()) == sorted(names[3:])


def test_a_failed_backup_is_recorded_shown_and_alerted(folders, admin_client):
    AlertSettings(email_recipients="ops@example.com").save()
    config = turn_on(folders / "gone")  # the folder was removed after it was chosen

    scheduled_backup()

    config.refresh_from_db()
    assert config.last_succeeded is False
    assert "failed" in config.last_error
    assert str(folders / "gone") in config.last_error
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.BACKUP_FAILED)
    assert event.severity == FailoverEvent.Severity.DANGER
    assert AlertDelivery.objects.filter(event=event).exists()
    assert list(folders.glob("**/*.partial")) == []
    page = admin_client.get("/status/").content.decode()
    assert 'data-testid="scheduled-backup"' in page
    assert "FAILED" in page
    assert "LAST FAILED" in status_text()


def test_status_tells_the_last_backup(folders):
    turn_on(folders / "backups", keep=4)
    assert "not run yet" in status_text()

    scheduled_backup()

    text = status_text()
    assert f"daily at 03:00 to {folders / 'backups'}, keeping 4" in text
    assert ScheduledBackup.load().last_file in text
    out = io.StringIO()
    call_command("failover", "status", "--json", stdout=out)
    assert json.loads(out.getvalue())["scheduled_backup"]["last_succeeded"] is True


def test_only_administrators_see_the_daily_backup_on_the_status_page(folders, user_client):
    turn_on(folders / "backups")

    page = user_client.get("/status/").content.decode()

    assert user_client.get("/status/").status_code == 200
    assert 'data-testid="scheduled-backup"' not in page
