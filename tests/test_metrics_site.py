"""/metrics of a running site: gunicorn's workers counted together, read as Prometheus would."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sites import Site, wait_until

pytestmark = pytest.mark.processes
REQUESTS = 12
PROCESSES = ("worker", "beat", "network")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    running = Site("metrics", tmp_path_factory.mktemp("metrics"), web_workers=2)
    yield running.start()
    running.destroy()


def scrape(site: Site) -> dict[tuple[str, tuple], float]:
    """GET /metrics as `curl 127.0.0.1:<port>/metrics` would, parsed by the official parser."""
    with urllib.request.urlopen(site.url + "/metrics", timeout=10) as response:  # noqa: S310
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# A path nothing else asks for: the suite's own readiness checks GET /login, and one of
# them that timed out on a busy machine is still answered, and counted, later.
UNKNOWN_PAGE = "/no-such-page-for-the-metrics-test"


def unknown_pages(samples) -> float:
    return samples.get(
        (
            "appliance_http_requests_total",
            (("method", "GET"), ("status", "404"), ("view", "unmatched")),
        ),
        0,
    )


def test_a_running_site_reports_its_role_and_live_processes(site):
    def processes_up():
        samples = scrape(site)
        up = [samples.get(("appliance_process_up", (("process", p),))) for p in PROCESSES]
        return samples if up == [1, 1, 1] else None

    samples = wait_until(processes_up, timeout=120)
    assert samples, site.log("worker.log")
    assert samples[("appliance_role", (("role", "none"),))] == 1
    assert samples[("appliance_epoch", ())] == 0
    for process in PROCESSES:
        assert 0 <= samples[("appliance_heartbeat_age_seconds", (("process", process),))] < 30


def test_requests_answered_by_every_web_worker_are_counted_together(site):
    before = unknown_pages(scrape(site))
    for _ in range(REQUESTS):
        assert site.get(UNKNOWN_PAGE) == 404
    samples = scrape(site)
    assert unknown_pages(samples) == before + REQUESTS
    latency = samples[
        (
            "appliance_http_request_duration_seconds_count",
            (("method", "GET"), ("view", "unmatched")),
        )
    ]
    assert latency >= REQUESTS


def test_a_refused_peer_request_is_counted_by_reason(site):
    key = ("appliance_peer_requests_refused_total", (("reason", "unsigned"),))
    before = scrape(site)[key]
    assert site.get("/api/peer/v1/hello") == 401
    assert scrape(site)[key] == before + 1
