"""GET /check_health: the unauthenticated answer for load balancers, 200 healthy or 500 not.

As BeyondTrust's: one human-readable line and nothing else. The role and what failed
are behind authentication (the Command API's check_health and /api/v1/health/).
"""

from __future__ import annotations

import socket
import time

import pytest
from django.db import OperationalError, connection

from appliance.models import Heartbeat
from failover import health
from failover.models import FailoverState, Role
from failover.peer import PeerClient
from tests.health_fixtures import make_heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.health_test_urls")]

URL = "/check_health"
HEALTHY = b"This site is healthy.\n"
NOT_HEALTHY = b"This site is not healthy.\n"


def one_line(response) -> bytes:
    """The whole answer: plain text, one line, never cached."""
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert response.content.count(b"\n") == 1 and response.content.endswith(b"\n")
    return response.content


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_200_and_one_line_to_anyone_when_the_site_is_healthy(anon_client):
    response = anon_client.get(URL)
    assert response.status_code == 200
    assert one_line(response) == HEALTHY


@pytest.mark.usefixtures("healthy_site")
@pytest.mark.parametrize("role", [Role.PRIMARY, Role.BACKUP])
def test_it_never_says_the_sites_role(anon_client, role):
    FailoverState.objects.create(pk=1, role=role, epoch=1)
    assert one_line(anon_client.get(URL)) == HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_500_and_one_line_without_naming_a_stale_worker(anon_client):
    make_heartbeat("worker", age_seconds=45)
    response = anon_client.get(URL)
    assert response.status_code == 500
    assert one_line(response) == NOT_HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_500_when_beat_never_sent_a_heartbeat(anon_client):
    Heartbeat.objects.filter(component="beat").delete()
    response = anon_client.get(URL)
    assert response.status_code == 500
    assert one_line(response) == NOT_HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_500_without_saying_where_the_broker_is(anon_client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/absent.sock"
    response = anon_client.get(URL)
    assert response.status_code == 500
    assert one_line(response) == NOT_HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_500_when_the_database_does_not_answer(anon_client, monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = anon_client.get(URL)
    assert response.status_code == 500
    assert one_line(response) == NOT_HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_answers_one_line_whatever_the_client_accepts(anon_client):
    response = anon_client.get(URL, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert one_line(response) == HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_never_reveals_the_brokers_password(anon_client, settings):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    settings.REDIS_URL = "redis://:s3cret-redis-password@127.0.0.1:1/0"
    response = anon_client.get(URL)
    assert response.status_code == 500
    assert "s3cret-redis-password" not in response.content.decode()
    assert "s3cret-redis-password" not in health.site_health().error_message
    assert "Redis at 127.0.0.1:1:" in health.site_health().error_message


@pytest.mark.usefixtures("healthy_site")
def test_it_gives_up_on_a_broker_that_hangs_after_one_second(anon_client, settings, tmp_path):
    # A socket that accepts connections (the kernel's backlog) but never answers.
    path = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(path))
        hung.listen(8)
        settings.REDIS_URL = f"unix://{path}"
        started = time.monotonic()
        response = anon_client.get(URL)
        elapsed = time.monotonic() - started
    assert response.status_code == 500
    assert one_line(response) == NOT_HEALTHY
    assert 0.9 < elapsed < 2.5


@pytest.mark.usefixtures("healthy_site")
def test_it_never_calls_the_peer(anon_client, monkeypatch):
    FailoverState.objects.create(
        pk=1, role=Role.BACKUP, epoch=2, peer_host="127.0.0.1", peer_port=1, peer_scheme="https"
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("/check_health must not call the peer.")

    monkeypatch.setattr(PeerClient, "request", refuse)
    assert one_line(anon_client.get(URL)) == HEALTHY


@pytest.mark.usefixtures("healthy_site")
def test_it_reports_a_database_that_does_not_answer_and_an_unknown_role(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    report = health.site_health()
    assert not report.success
    assert report.failover_role == "unknown"
    assert report.public_errors == ["The database did not answer a query."]
    assert "could not connect to server: Connection refused." in report.error_message
