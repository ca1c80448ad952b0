"""Backup settings from the other site are kept only if this site's Failover page would
accept them: a refusal is a 400 naming each field, and changes nothing here."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django_celery_beat.models import PeriodicTask

from appliance.models import AuditEvent
from failover import pair_settings, schedule
from failover.models import BackupSettings, SharedIP
from security.models import PreSharedKey
from tests.test_peer_authentication import KEY, send, signed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]
URL = "/api/peer/v1/backup-settings"
GOOD = {
    "enable_backup_operations": True,
    "sync_interval": "hours",
    "sync_every_hours": 6,
    "sync_time": "02:00",
    "sync_weekday": 6,
    "bandwidth_limit": None,
    "automatic_failover": False,
    "poll_interval_seconds": 10,
    "primary_timeout_seconds": 300,
    "connectivity_test_ips": "198.51.100.1",
    "synchronous_replication": False,
    "synchronous_timeout_seconds": 2,
}


@pytest.fixture(autouse=True)
def stored_key(settings) -> None:
    settings.PEER_CLOCK_SKEW_SECONDS = 300
    PreSharedKey.store(KEY, by="test")


def periodic_tasks() -> list:
    return list(
        PeriodicTask.objects.order_by("name").values_list(
            "name", "enabled", "interval_id", "crontab_id", "kwargs"
        )
    )


def hand_over(values: dict):
    return send(signed("POST", URL, values))


def test_settings_the_page_would_accept_are_kept_and_scheduled():
    response = hand_over(GOOD)
    assert response.status_code == 200
    kept = BackupSettings.load()
    assert (kept.sync_interval, kept.sync_every_hours) == ("hours", 6)
    task = PeriodicTask.objects.get(name=schedule.TASK_NAME)
    assert (task.interval.every, task.interval.period) == (6, "hours")


def test_a_setting_the_peer_leaves_out_keeps_this_sites_value():
    BackupSettings(poll_interval_seconds=7, primary_timeout_seconds=70).save()
    values = {k: v for k, v in GOOD.items() if k not in ("poll_interval_seconds",)}
    assert hand_over(values).status_code == 200
    assert BackupSettings.load().poll_interval_seconds == 7


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"poll_interval_seconds": 0}, "poll_interval_seconds", "Poll every 1 to 3600 seconds"),
        ({"sync_every_hours": 0}, "sync_every_hours", "from 2 to 23"),
        ({"sync_interval": "hourly", "sync_every_hours": 0}, "sync_every_hours", "from 2 to 23"),
        ({"primary_timeout_seconds": 0}, "primary_timeout_seconds", "from 2 seconds"),
        ({"sync_interval": "yearly"}, "sync_interval", "not one of the available choices"),
        ({"bandwidth_limit": 12345}, "bandwidth_limit", "not one of the available choices"),
        (
            {"connectivity_test_ips": "not-an-ip; rm -rf /"},
            "connectivity_test_ips",
            "Not an IP address or address:port: not-an-ip;",
        ),
        (
            {"automatic_failover": True},
            "automatic_failover",
            "without a way to point clients at the new primary",
        ),
        ({"automatic_failover": "no"}, "automatic_failover", "Send true or false"),
        (
            {"sync_interval": "continuous", "synchronous_timeout_seconds": 0},
            "synchronous_timeout_seconds",
            "from 1 to 60",
        ),
    ],
)
def test_settings_the_page_would_refuse_are_refused_and_change_nothing(changes, field, reason):
    before = BackupSettings(sync_interval="daily")
    before.save()
    schedule.apply(before)
    tasks = periodic_tasks()
    response = hand_over({**GOOD, **changes})
    assert response.status_code == 400
    body = response.json()
    assert body["reason"] == "invalid_settings"
    assert field in body["errors"]
    assert reason in " ".join(body["errors"][field])
    assert field in body["detail"] and "nothing was changed" in body["detail"]
    after = BackupSettings.load()
    assert (after.sync_interval, after.poll_interval_seconds, after.automatic_failover) == (
        "daily", 10, False,
    )  # fmt: skip
    assert periodic_tasks() == tasks
    assert not AuditEvent.objects.filter(action="failover.backup_settings").exists()


def test_automatic_failover_is_accepted_once_this_site_can_point_clients_at_it():
    SharedIP(enabled=True, address="192.0.2.10/24", interface="eth0").save()
    response = hand_over({**GOOD, "automatic_failover": True})
    assert response.status_code == 200
    assert BackupSettings.load().automatic_failover


def test_settings_that_are_not_an_object_are_refused():
    response = hand_over(["hours"])
    assert response.status_code == 400
    assert response.json()["errors"] == {"settings": ["Send the settings as a JSON object."]}


def test_the_settings_a_site_hands_over_as_saved_are_accepted_as_they_are():
    """The payload pair_settings builds from a saved row, encoded as the peer client does."""
    saved = BackupSettings(sync_interval="weekly", sync_time=dt.time(3, 15), sync_weekday=2)
    saved.save()
    payload = json.loads(
        json.dumps(
            {name: getattr(saved, name) for name in pair_settings.BACKUP_SETTINGS_FIELDS},
            cls=DjangoJSONEncoder,
        )
    )
    BackupSettings().save()
    assert hand_over(payload).status_code == 200
    kept = BackupSettings.load()
    assert (kept.sync_interval, kept.sync_time, kept.sync_weekday) == ("weekly", dt.time(3, 15), 2)
