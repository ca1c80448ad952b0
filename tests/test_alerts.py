"""Alerts by e-mail and webhook, and the Send test alert button."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from failover import alerts
from failover.models import AlertDelivery, AlertSettings, FailoverEvent

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
def webhook(settings):
    # The test's receiver listens on loopback, where alerts go only when allowed.
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
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
        "failover.jobs.send_alert",
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
    monkeypatch.setattr("failover.jobs.send_alert", sent.append)
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


def test_a_failing_webhook_is_reported_by_name(admin_client, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # a closed port on loopback
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


class FlakyHook(BaseHTTPRequestHandler):
    """Fails the first `failures` POSTs with HTTP 503, then accepts."""

    failures = 0
    received: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        FlakyHook.received.append(json.loads(self.rfile.read(length)))
        failing = len(FlakyHook.received) <= FlakyHook.failures
        self.send_response(503 if failing else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_webhook(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    FlakyHook.received = []
    server = HTTPServer(("127.0.0.1", 0), FlakyHook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def alerted_event(django_capture_on_commit_callbacks, monkeypatch) -> FailoverEvent:
    queued = []
    monkeypatch.setattr("failover.jobs.send_alert", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        event = FailoverEvent.record(FailoverEvent.Kind.FAILOVER, "site-b became primary")
    assert queued == [event.pk]
    return event


def test_a_failing_channel_is_retried_and_one_that_took_the_alert_is_not(
    flaky_webhook, monkeypatch, django_capture_on_commit_callbacks
):
    FlakyHook.failures = 2
    AlertSettings(email_recipients="ops@example.com", webhook_url=flaky_webhook).save()
    event = alerted_event(django_capture_on_commit_callbacks, monkeypatch)
    for attempt in (1, 2):
        with pytest.raises(alerts.DeliveryFailed, match="answered HTTP 503"):
            alerts.deliver_pending(event.pk)
        assert AlertDelivery.objects.get(event=event).attempts == attempt
    alerts.deliver_pending(event.pk)
    delivery = AlertDelivery.objects.get(event=event)
    assert (delivery.status, delivery.attempts, delivery.channels) == ("delivered", 3, "")
    assert len(mail.outbox) == 1
    assert len(FlakyHook.received) == 3
    alerts.deliver_pending(event.pk)  # a late duplicate delivery sends nothing more
    assert len(FlakyHook.received) == 3


def test_past_the_retry_period_the_alert_is_recorded_as_undeliverable(
    flaky_webhook, monkeypatch, settings, django_capture_on_commit_callbacks
):
    FlakyHook.failures = 1000
    settings.ALERT_RETRY_SECONDS = 60
    AlertSettings(webhook_url=flaky_webhook).save()
    event = alerted_event(django_capture_on_commit_callbacks, monkeypatch)
    with pytest.raises(alerts.DeliveryFailed):
        alerts.deliver_pending(event.pk)
    AlertDelivery.objects.filter(event=event).update(
        created_at=timezone.now() - dt.timedelta(seconds=61)
    )
    alerts.deliver_pending(event.pk)
    delivery = AlertDelivery.objects.get(event=event)
    assert delivery.status == "undeliverable"
    assert "answered HTTP 503" in delivery.error
    recorded = FailoverEvent.objects.filter(kind=FailoverEvent.Kind.ERROR).get()
    assert "could not be delivered in 2 attempts" in recorded.message
    assert not hasattr(recorded, "alert")  # an error event does not alert again


def test_the_last_attempt_gives_up_whatever_the_clock_says(
    flaky_webhook, monkeypatch, django_capture_on_commit_callbacks
):
    FlakyHook.failures = 1000
    AlertSettings(webhook_url=flaky_webhook).save()
    event = alerted_event(django_capture_on_commit_callbacks, monkeypatch)
    alerts.deliver_pending(event.pk, last_attempt=True)
    assert AlertDelivery.objects.get(event=event).status == "undeliverable"


def test_an_alert_the_broker_would_not_take_is_undeliverable_at_once(
    monkeypatch, django_capture_on_commit_callbacks
):
    AlertSettings(email_recipients="ops@example.com").save()

    def broker_down(event_id):
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr("failover.jobs.send_alert", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        event = FailoverEvent.record(FailoverEvent.Kind.FAILOVER, "site-b became primary")
    delivery = AlertDelivery.objects.get(event=event)
    assert delivery.status == "undeliverable"
    assert "could not be queued" in delivery.error


def test_the_failover_page_lists_undeliverable_alerts_with_their_error(admin_client):
    event = FailoverEvent.record(FailoverEvent.Kind.FAILOVER, "site-b became primary")
    AlertDelivery.objects.create(
        event=event,
        channels="webhook",
        status="undeliverable",
        attempts=14,
        error="The webhook http://127.0.0.1:9/hook failed: ConnectionError.",
    )
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert 'data-testid="undeliverable-alerts"' in page
    assert "The webhook http://127.0.0.1:9/hook failed: ConnectionError." in page
    assert "alert undeliverable" in page
    assert "tried again, waiting longer each time, for an hour" in page
