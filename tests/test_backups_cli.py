"""`manage.py failover backup FILE`, `restore FILE` and `backup-schedule`."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from appliance.models import AuditEvent, Report
from appliance.reportgen import generate_reports
from failover import schedule
from failover.models import ScheduledBackup
from tests.conftest import make_user, paired_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR.mkdir()
    return tmp_path


def failover(*args: str) -> str:
    out = io.StringIO()
    call_command("failover", *args, stdout=out)
    return out.getvalue()


def test_backup_then_restore_from_the_command_line(folders):
    make_user("rita")
    generate_reports(8, seed=2, with_recordings=1)
    path = folders / "site.tar.gz"

    said = failover("backup", str(path))

    assert f"Backup written to {path}" in said
    assert "1 user(s), 0 group(s), 0 API account(s), 8 report(s), 1 recording(s)" in said
    User.objects.all().delete()
    Report.objects.all().delete()

    said = failover("restore", str(path))

    assert "the backup of test-site made" in said
    assert "Everyone signs in again." in said
    assert User.objects.filter(username="rita").exists()
    assert Report.objects.count() == 8
    assert AuditEvent.objects.filter(action="site.restore", actor="cli").exists()


def test_backup_never_replaces_an_existing_file(folders):
    path = folders / "taken.tar.gz"
    path.write_bytes(b"precious")

    with pytest.raises(CommandError, match="already exists"):
        failover("backup", str(path))

    assert path.read_bytes() == b"precious"


def test_backup_into_a_missing_folder_says_so(folders):
    with pytest.raises(CommandError, match=r"Could not write .*No such file or directory"):
        failover("backup", str(folders / "missing" / "site.tar.gz"))


def test_restore_refuses_on_a_paired_site_with_its_reason(folders):
    path = folders / "site.tar.gz"
    failover("backup", str(path))
    paired_as("primary", peer_name="site-b")

    with pytest.raises(CommandError, match="primary of a failover pair with site-b"):
        failover("restore", str(path))


def test_restore_of_a_missing_file_says_so(folders):
    with pytest.raises(CommandError, match=r"Could not open .*No such file or directory"):
        failover("restore", str(folders / "nothing.tar.gz"))


# The daily backup: `failover backup-schedule` ---------------------------------------------


def daily_task() -> PeriodicTask:
    return PeriodicTask.objects.get(name=schedule.BACKUP_TASK_NAME)


def test_backup_schedule_turns_the_daily_backup_on_as_the_page_does(folders):
    folder = folders / "backups"
    folder.mkdir()

    said = failover("backup-schedule", "--folder", str(folder), "--keep", "3", "--at", "02:30")

    assert said == f"Daily backup at 02:30 to {folder}, keeping 3.\n"
    config = ScheduledBackup.load()
    assert (config.enabled, config.folder, config.keep, config.at) == (
        True, str(folder), 3, dt.time(2, 30),
    )  # fmt: skip
    task = daily_task()
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("2", "30")
    assert AuditEvent.objects.get(action="site.backup_schedule").actor == "cli"


def test_backup_schedule_keeps_the_settings_it_is_not_given(folders):
    folder = folders / "backups"
    folder.mkdir()
    failover("backup-schedule", "--folder", str(folder), "--keep", "3", "--at", "02:30")

    said = failover("backup-schedule", "--keep", "10")

    assert said == f"Daily backup at 02:30 to {folder}, keeping 10.\n"
    assert daily_task().description.startswith(f"Site backup every day at 02:30 to {folder}")


def test_backup_schedule_off_turns_it_off_even_once_its_folder_is_gone(folders):
    folder = folders / "backups"
    folder.mkdir()
    failover("backup-schedule", "--folder", str(folder), "--at", "04:00")
    folder.rmdir()

    said = failover("backup-schedule", "--off")

    assert said == "Daily backup turned off.\n"
    config = ScheduledBackup.load()
    assert (config.enabled, config.folder, config.at) == (False, str(folder), dt.time(4, 0))
    assert not daily_task().enabled
    assert "Backup:" not in failover("status")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folder", "{missing}"], "folder: {missing} does not exist or is not a folder"),
        (["--folder", "relative/path"], "folder: relative/path is a relative path"),
        ([], "folder: Enter the folder the daily backup goes to"),
        (["--folder", "{folder}", "--keep", "0"], "keep: Ensure this value is greater than or"),
        (["--folder", "{folder}", "--keep", "many"], "keep: Enter a whole number."),
        (["--folder", "{folder}", "--at", "25:00"], "at: Enter a valid time."),
    ],
    ids=["missing-folder", "relative-folder", "no-folder", "keep-0", "keep-text", "bad-time"],
)
def test_backup_schedule_refuses_what_the_page_refuses_and_changes_nothing(folders, args, message):
    folder = folders / "backups"
    folder.mkdir()
    places = {"missing": folders / "missing", "folder": folder}
    before = ScheduledBackup.load()

    with pytest.raises(CommandError) as refused:
        failover("backup-schedule", *(arg.format(**places) for arg in args))

    assert str(refused.value).startswith("Nothing was changed. ")
    assert message.format(**places) in str(refused.value)
    after = ScheduledBackup.load()
    assert (after.enabled, after.folder, after.keep, after.at) == (
        before.enabled, before.folder, before.keep, before.at,
    )  # fmt: skip
    assert not PeriodicTask.objects.filter(name=schedule.BACKUP_TASK_NAME, enabled=True).exists()
    assert not AuditEvent.objects.filter(action="site.backup_schedule").exists()
