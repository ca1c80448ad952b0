"""Management > Backup: the Download Backup button and the daily backup's settings."""

from __future__ import annotations

import datetime as dt
import io
import tarfile

import orjson
import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from appliance.models import AuditEvent, Report, SiteSettings
from appliance.reportgen import generate_reports
from failover import backups, schedule
from failover.models import ScheduledBackup

pytestmark = pytest.mark.django_db
PAGE = reverse("failover:backup")
DOWNLOAD = reverse("failover:download_backup")
SCHEDULE = reverse("failover:backup_schedule")


@pytest.fixture
def folders(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR.mkdir()
    return tmp_path


def test_anonymous_is_sent_to_login_and_a_non_administrator_is_refused(anon_client, user_client):
    assert anon_client.get(PAGE).status_code == 302
    assert anon_client.post(DOWNLOAD).status_code == 302
    assert user_client.get(PAGE).status_code == 403
    assert user_client.post(DOWNLOAD).status_code == 403
    assert user_client.post(SCHEDULE, {"enabled": "on"}).status_code == 403


def test_the_page_says_what_a_backup_holds_and_what_it_does_not(admin_client):
    page = admin_client.get(PAGE).content.decode()
    assert "Download Backup" in page
    assert "password hashes" in page
    assert "Not included:" in page
    assert "pre-shared key" in page
    assert "TLS certificate" in page
    assert "manage.py failover restore FILE" in page


def test_download_streams_a_backup_that_restores(admin_client, folders):
    generate_reports(12, seed=3, with_recordings=2)
    SiteSettings(site_name="Downloaded").save()

    response = admin_client.post(DOWNLOAD)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="site-backup-test-site-'
    )
    data = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        manifest = orjson.loads(archive.extractfile(backups.MANIFEST).read())
    assert manifest["counts"]["appliance.report"] == 12
    assert manifest["files"] == 2
    assert AuditEvent.objects.filter(action="site.backup", actor="admin").exists()

    Report.objects.all().delete()
    path = folders / "downloaded.tar.gz"
    path.write_bytes(data)
    backups.restore(path)
    assert Report.objects.count() == 12
    assert SiteSettings.load().site_name == "Downloaded"


def test_saving_the_daily_backup_schedules_it(admin_client, folders):
    response = admin_client.post(
        SCHEDULE, {"enabled": "on", "folder": str(folders), "keep": "3", "at": "04:30"}
    )

    assert response.status_code == 302
    config = ScheduledBackup.load()
    assert (config.enabled, config.folder, config.keep, config.at) == (
        True,
        str(folders),
        3,
        dt.time(4, 30),
    )
    task = PeriodicTask.objects.get(name=schedule.BACKUP_TASK_NAME)
    assert task.enabled
    assert task.task == "failover.tasks.scheduled_backup"
    assert (task.crontab.hour, task.crontab.minute, task.crontab.day_of_week) == ("4", "30", "*")
    assert str(task.crontab.timezone) == SiteSettings.load().time_zone
    assert AuditEvent.objects.filter(action="site.backup_schedule").exists()


def test_turning_the_daily_backup_off_disables_its_task(admin_client, folders):
    admin_client.post(
        SCHEDULE, {"enabled": "on", "folder": str(folders), "keep": "3", "at": "04:30"}
    )

    admin_client.post(SCHEDULE, {"folder": str(folders), "keep": "3", "at": "04:30"})

    assert not PeriodicTask.objects.get(name=schedule.BACKUP_TASK_NAME).enabled


@pytest.mark.parametrize(
    ("folder", "keep", "message"),
    [
        ("", "3", "Enter the folder the daily backup goes to"),
        ("relative/folder", "3", "is a relative path"),
        ("/nonexistent/backups", "3", "does not exist or is not a folder"),
        ("{tmp}/data/notes.txt", "3", "does not exist or is not a folder"),
        ("{tmp}", "0", "Ensure this value is greater than or equal to 1"),
    ],
)
def test_the_daily_backup_refuses_a_bad_folder_or_count_and_changes_nothing(
    admin_client, folders, folder, keep, message
):
    (folders / "data" / "notes.txt").write_text("a file")
    response = admin_client.post(
        SCHEDULE,
        {"enabled": "on", "folder": folder.format(tmp=folders), "keep": keep, "at": "04:30"},
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ScheduledBackup.objects.exists()
