"""Nothing written just before a freeze is lost, and a backup refuses API writes it would lose."""

from __future__ import annotations

import threading
import time

import pytest
from rest_framework.test import APIClient

from appliance.models import ApiToken, Report
from failover import writes
from failover.models import FailoverState, Role
from tests.conftest import paired_as


def test_a_freeze_waits_for_a_write_that_started_before_it(peer_redis):
    started, release = threading.Event(), threading.Event()

    def slow_write() -> None:
        with writes.in_flight():
            started.set()
            release.wait(5)

    writer = threading.Thread(target=slow_write)
    writer.start()
    assert started.wait(5)
    assert writes.wait_until_drained(0.2) is False, "drained while a write was still running"
    threading.Timer(0.3, release.set).start()
    began = time.monotonic()
    assert writes.wait_until_drained(5) is True
    assert time.monotonic() - began >= 0.2
    writer.join(5)


def test_a_write_left_behind_by_a_crashed_process_expires(peer_redis):
    from appliance.broker import connection

    connection().zadd(writes.KEY, {"crashed": time.time() - writes.STALE_SECONDS - 1})
    assert writes.wait_until_drained(0.5) is True


def api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")
    return client


def write_a_report(client: APIClient):
    return client.post(
        "/api/v1/reports/",
        {"representative": "rep", "customer_name": "Ada", "started_at": "2026-01-01T10:00:00Z"},
        format="json",
    )


@pytest.fixture
def backup(db) -> FailoverState:
    state = FailoverState.load()
    state.role = Role.BACKUP
    state.peer_name, state.peer_host, state.peer_port = "site-a", "192.0.2.1", 443
    state.save()
    return state


def test_the_backup_refuses_report_writes_through_the_api_and_says_where_to_write(
    backup, admin_user
):
    client = api_client(admin_user)
    response = write_a_report(client)
    assert response.status_code == 409
    assert response.json()["reason"] == "not_primary"
    assert "site-a" in response.json()["detail"]
    assert not Report.objects.exists()
    assert client.get("/api/v1/reports/").status_code == 200, "reading stays allowed"


def test_a_write_that_arrives_as_the_primary_steps_down_is_refused(db, admin_user, monkeypatch):
    """The switchover's last step, seen by a write: the final sync is done and the primary
    steps down (role backup, no longer frozen) just as the write registers itself. It
    reads the state only after registering, so it must be refused, not written on a site
    that is now the backup (where the next sync would silently overwrite it)."""
    paired_as(Role.PRIMARY)
    FailoverState.objects.filter(pk=1).update(switching_over=True)
    registered = writes.in_flight

    def step_down_meanwhile():
        FailoverState.load().demote(epoch=2)
        return registered()

    monkeypatch.setattr(writes, "in_flight", step_down_meanwhile)
    client = api_client(admin_user)
    response = write_a_report(client)
    assert response.status_code == 409, response.content
    assert not Report.objects.exists()
