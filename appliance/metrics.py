"""/metrics: the site in Prometheus's text format, for whoever METRICS_* lets read it.

Two kinds of figures. What the site *is* (its role, its peer, its last sync, its
processes' heartbeats, whether it holds the shared IP, how many failovers it
went through) is read from the database at each scrape, so every process of
the site agrees and nothing is lost when one restarts; the site's own facts are
here, the other apps add theirs through `appliance.signals.metric_families`.
What the web *does* (requests and their latencies, refused peer requests) is
counted as it happens; the web's workers are separate processes, so under
gunicorn prometheus-client adds up their counts from files in
PROMETHEUS_MULTIPROC_DIR (appliance.gunicorn_config).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.models import Heartbeat
from appliance.signals import metric_families
from appliance.version import SOFTWARE_VERSION

# The classic text format, which every Prometheus reads (newer clients default to 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Counted by the web as it answers (not registered globally: /metrics gathers them).
REQUESTS = Counter(
    "appliance_http_requests",
    "Requests answered, by view, method and status.",
    ["view", "method", "status"],
    registry=None,
)
REQUEST_LATENCY = Histogram(
    "appliance_http_request_duration_seconds",
    "Time to answer a request, by view and method.",
    ["view", "method"],
    registry=None,
)
PEER_REQUESTS_REFUSED = Counter(
    "appliance_peer_requests_refused",
    "Requests to the peer API refused (bad, missing, stale or replayed signature), by reason.",
    ["reason"],
    registry=None,
)
LIVE_METRICS = (REQUESTS, REQUEST_LATENCY, PEER_REQUESTS_REFUSED)


def observe_request(request: HttpRequest, status: int, seconds: float) -> None:
    match = getattr(request, "resolver_match", None)
    view = (match.view_name or "unnamed") if match else "unmatched"
    REQUESTS.labels(view, request.method, str(status)).inc()
    REQUEST_LATENCY.labels(view, request.method).observe(seconds)


class SiteCollector(Collector):
    """The site's state, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("appliance", "This site: its name and software version.")
        info.add_metric([], {"site": settings.APPLIANCE_NAME, "version": SOFTWARE_VERSION})
        yield info
        yield from heartbeat_families()
        for _receiver, families in metric_families.send(sender=None):
            yield from families


def heartbeat_families() -> Iterable[Metric]:
    age = GaugeMetricFamily(
        "appliance_heartbeat_age_seconds",
        "Seconds since the process's last heartbeat (absent: none yet).",
        labels=["process"],
    )
    up = GaugeMetricFamily(
        "appliance_process_up",
        "1 when the process's heartbeat is recent (within three periods), else 0.",
        labels=["process"],
    )
    seen = {beat.component: beat for beat in Heartbeat.objects.all()}
    now = timezone.now()
    for component in Heartbeat.Component.values:
        beat = seen.get(component)
        up.add_metric([component], 1 if beat and beat.is_alive() else 0)
        if beat is not None:
            age.add_metric([component], max(0.0, (now - beat.last_seen).total_seconds()))
    return [age, up]


def registry() -> CollectorRegistry:
    """What one scrape reads: the live counts (of every web process) and the site's state."""
    scrape = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)
    else:
        for metric in LIVE_METRICS:
            scrape.register(metric)
    scrape.register(SiteCollector())
    return scrape


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not read the metrics, or None when it may.

    A bearer token (METRICS_TOKEN) opens them from anywhere. Otherwise the
    client's address must be in METRICS_ALLOWED_ADDRESSES (loopback by default),
    unless a proxy relayed the request: its address is not the client's.
    """
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        if hmac.compare_digest(header.removeprefix("Bearer ").strip(), token):
            return None
        return _refuse(401, "The bearer token is not this site's METRICS_TOKEN.")
    address = request.META.get("REMOTE_ADDR", "")
    relayed = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if not relayed and _address_allowed(address):
        return None
    how = "send the bearer token of METRICS_TOKEN" if token else "set METRICS_TOKEN"
    if relayed:
        return _refuse(
            403 if not token else 401,
            f"/metrics answers a request relayed by a proxy only with a bearer token: {how}.",
        )
    return _refuse(
        403 if not token else 401,
        f"{address or 'This address'} may not read /metrics: add it to "
        f"METRICS_ALLOWED_ADDRESSES or {how}.",
    )


def _address_allowed(address: str) -> bool:
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in network for network in settings.METRICS_ALLOWED_ADDRESSES)


def _refuse(status: int, sentence: str) -> HttpResponse:
    response = HttpResponse(sentence + "\n", status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refused = refusal(request)
    if refused is not None:
        return refused
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
