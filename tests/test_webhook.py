"""The alert webhook reaches only the address it was given: no redirects, and not this
machine's own or link-local services unless ALERT_WEBHOOK_ALLOW_PRIVATE allows them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse

from failover import alerts, webhook
from failover.models import AlertSettings, FailoverEvent

pytestmark = pytest.mark.django_db


class Receiver(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:
        Receiver.paths.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    Receiver.paths = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def alert_to(url: str) -> str | None:
    config = AlertSettings(webhook_url=url)
    event = FailoverEvent.record(FailoverEvent.Kind.FAILOVER, "site-b became primary")
    return alerts.send(alerts.WEBHOOK, event, config)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_alert_is_not_sent_to_this_machines_own_services(receiver, host):
    failure = alert_to(f"http://{host}:{receiver}/hook")
    assert "a loopback or link-local address" in failure
    assert "ALERT_WEBHOOK_ALLOW_PRIVATE=1" in failure
    assert Receiver.paths == []


def test_an_alert_reaches_a_loopback_receiver_when_the_setting_allows_it(settings, receiver):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    assert alert_to(f"http://127.0.0.1:{receiver}/hook") is None
    assert Receiver.paths == ["/hook"]


def test_a_redirect_is_not_followed_and_fails_the_delivery(settings, receiver):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    failure = alert_to(f"http://127.0.0.1:{receiver}/moved")
    assert "HTTP 307" in failure and "redirects are not followed" in failure
    assert Receiver.paths == ["/moved"]


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "::", "::ffff:127.0.0.1"],
)
def test_loopback_link_local_and_unspecified_addresses_are_forbidden(address):
    assert webhook.forbidden(address)


@pytest.mark.parametrize("address", ["192.0.2.10", "10.1.2.3", "2001:db8::1"])
def test_other_addresses_are_allowed(address):
    assert not webhook.forbidden(address)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/hook", "http://[::1]:8080/", "http://169.254.169.254/latest"]
)
def test_the_alerts_form_refuses_a_webhook_on_this_machine_or_link_local(admin_client, url):
    response = admin_client.post(reverse("failover:alerts"), {"webhook_url": url})
    assert response.status_code == 400
    assert "a loopback or link-local address" in response.content.decode()
    assert AlertSettings.load().webhook_url == ""
