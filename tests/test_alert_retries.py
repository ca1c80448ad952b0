"""Alerts that arrive: a real worker retries a failing webhook with backoff until it accepts,
and records an alert as undeliverable when the retry period is over."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
RETRY_SECONDS = 20


class Receiver(BaseHTTPRequestHandler):
    """/flaky fails its first two POSTs (HTTP 500) and accepts the third; /down always fails."""

    received: dict[str, list] = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        calls = Receiver.received.setdefault(self.path, [])
        calls.append(body)
        accepted = self.path == "/flaky" and len(calls) > 2
        self.send_response(204 if accepted else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    Receiver.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    running = Site(
        "alerts",
        tmp_path_factory.mktemp("alerts"),
        ALERT_RETRY_BACKOFF_SECONDS="1",
        ALERT_RETRY_SECONDS=str(RETRY_SECONDS),
        # The test's receiver listens on loopback.
        ALERT_WEBHOOK_ALLOW_PRIVATE="1",
    )
    yield running.start()
    running.destroy()


def record_failover(site: Site, webhook: str, message: str) -> int:
    """Point the alerts at `webhook` and record an automatic failover (which alerts)."""
    said = site.shell(
        "from failover.models import AlertSettings, FailoverEvent\n"
        f"AlertSettings(webhook_url={webhook!r}).save()\n"
        f"print(FailoverEvent.record('failover', {message!r}).pk)\n"
    )
    return int(said.split()[-1])


def delivery(site: Site, event_id: int) -> tuple | None:
    found = site.rows(
        "SELECT status, attempts, error FROM failover_alertdelivery WHERE event_id = %s",
        (event_id,),
    )
    return found[0] if found else None


def test_a_webhook_that_fails_twice_gets_the_alert_on_the_third_attempt(site, receiver):
    event_id = record_failover(site, receiver + "/flaky", "site-b became primary")
    done = wait_until(lambda: (d := delivery(site, event_id)) and d[0] != "pending" and d, 120)
    assert done, site.log("worker.log")
    assert done[:2] == ("delivered", 3)
    calls = Receiver.received["/flaky"]
    assert len(calls) == 3
    assert {call["message"] for call in calls} == {"site-b became primary"}


def test_an_alert_nobody_accepts_is_recorded_as_undeliverable_after_the_retry_period(
    site, receiver
):
    event_id = record_failover(site, receiver + "/down", "site-a became primary")
    given_up = wait_until(
        lambda: (d := delivery(site, event_id)) and d[0] == "undeliverable" and d,
        timeout=RETRY_SECONDS + 120,
    )
    assert given_up, site.log("worker.log")
    _status, attempts, error = given_up
    assert attempts >= 2
    assert len(Receiver.received["/down"]) == attempts
    assert "answered HTTP 500" in error
    messages = [
        message
        for (message,) in site.rows(
            "SELECT message FROM failover_failoverevent WHERE kind = 'error' ORDER BY id"
        )
    ]
    assert any("could not be delivered" in message for message in messages)
