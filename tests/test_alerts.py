"""Alerts by e-mail and webhook, and the Send test alert button."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.urls import reverse

from failover import alerts
from failover.models import AlertSettings, FailoverEvent

pytestmark = pytest.mark.django_db


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Hook.received
    server.shutdown()


@pytest.fixture(autouse=True)
def locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_a_failover_event_alerts_by_mail_and_webhook(
    webhook, monkeypatch, django_capture_on_commit_callbacks
):
    url, received = webhook
    AlertSettings(email_recipients="ops@example.com\noncall@example.com", webhook_url=url).save()
    monkeypatch.setattr(
        "failover.tasks.send_alert.delay",
        lambda pk: alerts.deliver(FailoverEvent.objects.get(pk=pk)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        FailoverEvent.record(
            FailoverEvent.Kind.FAILOVER, "backup became primary: the primary is down"
        )
    assert mail.outbox[0].to == ["ops@example.com", "oncall@example.com"]
    assert "Automatic failover" in mail.outbox[0].subject
    assert received[0]["kind"] == "failover"
    assert received[0]["message"] == "backup became primary: the primary is down"


def test_routine_events_do_not_alert(monkeypatch, django_capture_on_commit_callbacks):
    AlertSettings(email_recipients="ops@example.com").save()
    sent = []
    monkeypatch.setattr("failover.tasks.send_alert.delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        FailoverEvent.record(FailoverEvent.Kind.PEER_REACHABLE, "peer back")
    assert sent == []


def test_the_test_button_sends_through_every_channel(admin_client, webhook):
    url, received = webhook
    response = admin_client.post(
        reverse("failover:alerts"),
        {"email_recipients": "ops@example.com", "webhook_url": url, "test": "1"},
        follow=True,
    )
    assert "a test alert sent" in response.content.decode()
    assert len(mail.outbox) == 1
    assert "Test alert sent by admin" in received[0]["message"]


def test_a_failing_webhook_is_reported_by_name(admin_client):
    url = "http://127.0.0.1:9/hook"
    response = admin_client.post(
        reverse("failover:alerts"), {"webhook_url": url, "test": "1"}, follow=True
    )
    assert f"The webhook {url} failed" in response.content.decode()


def test_bad_recipients_are_refused_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        reverse("failover:alerts"), {"email_recipients": "ops@example.com\nnot-an-address"}
    )
    assert response.status_code == 400
    assert "Not an e-mail address: not-an-address" in response.content.decode()
    assert AlertSettings.load().email_recipients == ""


def test_only_administrators_change_alerts(user_client):
    assert user_client.post(reverse("failover:alerts"), {"webhook_url": ""}).status_code == 403
