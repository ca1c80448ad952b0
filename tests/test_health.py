from datetime import timedelta

import pytest
from django.utils import timezone

from appliance import health
from appliance.models import Heartbeat

pytestmark = pytest.mark.django_db


def by_component() -> dict[str, health.ProcessHealth]:
    return {process.component: process for process in health.processes()}


def test_processes_without_a_heartbeat_are_down():
    processes = by_component()
    assert not processes["worker"].alive
    assert processes["worker"].detail == "no heartbeat yet"


def test_a_recent_heartbeat_is_alive_and_a_stale_one_is_down(settings):
    settings.HEARTBEAT_SECONDS = 10
    Heartbeat.objects.create(component="worker", last_seen=timezone.now() - timedelta(seconds=5))
    Heartbeat.objects.create(component="beat", last_seen=timezone.now() - timedelta(seconds=31))
    processes = by_component()
    assert processes["worker"].alive
    assert not processes["beat"].alive
    assert "expected every 10 s" in processes["beat"].detail


def test_the_status_tab_warns_when_the_worker_is_down(admin_client):
    response = admin_client.get("/status/")
    assert "The worker is not running" in response.content.decode()
