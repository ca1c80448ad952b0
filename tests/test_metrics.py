"""/metrics: the site in Prometheus's text format, read with prometheus-client's own parser."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from appliance.version import SOFTWARE_VERSION
from failover.models import FailoverEvent, Role, SharedIP, SyncRun
from failover.system.shared_ip import RecordingDriver, SharedAddress
from tests.conftest import paired_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]
TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_loopback_reads_the_metrics_without_a_login():
    samples = scrape()
    assert [labels for name, labels in samples if name == "appliance_info"] == [
        (("site", "test-site"), ("version", SOFTWARE_VERSION))
    ]
    assert value(samples, "appliance_role", role="none") == 1
    assert value(samples, "appliance_role", role="primary") == 0
    assert value(samples, "appliance_epoch") == 0
    for process in ("worker", "beat", "network"):
        assert value(samples, "appliance_process_up", process=process) == 0


def test_another_address_is_refused_saying_how_to_allow_it():
    response = Client(REMOTE_ADDR="192.0.2.7").get("/metrics")
    assert response.status_code == 403
    assert "192.0.2.7 may not read /metrics" in response.content.decode()
    assert "METRICS_ALLOWED_ADDRESSES" in response.content.decode()


def test_a_listed_network_may_read_them(settings):
    from ipaddress import ip_network

    settings.METRICS_ALLOWED_ADDRESSES = [ip_network("192.0.2.0/24")]
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_the_bearer_token_opens_them_from_anywhere_and_a_wrong_one_is_refused(settings):
    settings.METRICS_TOKEN = TOKEN
    far = Client(REMOTE_ADDR="203.0.113.9")
    assert scrape(far, headers={"Authorization": f"Bearer {TOKEN}"})
    wrong = far.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in wrong.content.decode()
    assert far.get("/metrics").status_code == 401


def test_a_request_relayed_by_a_local_proxy_needs_the_token(settings):
    relayed = Client().get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
    assert relayed.status_code == 403
    assert "relayed by a proxy" in relayed.content.decode()


def test_a_backup_reports_its_peer_and_its_last_sync():
    state = paired_as(Role.BACKUP, peer_host="127.0.0.1")
    state.record_peer_check(reachable=False, error="connection refused")
    finished = timezone.now() - dt.timedelta(minutes=5)
    SyncRun.objects.create(
        trigger=SyncRun.Trigger.SCHEDULE,
        status=SyncRun.Status.SUCCEEDED,
        started_at=finished - dt.timedelta(seconds=42),
        finished_at=finished,
        records=1200,
        bytes=345_678,
    )
    samples = scrape()
    assert value(samples, "appliance_role", role="backup") == 1
    assert value(samples, "appliance_epoch") == state.epoch
    assert value(samples, "appliance_peer_reachable") == 0
    assert 0 <= value(samples, "appliance_peer_last_check_age_seconds") < 60
    assert value(samples, "appliance_peer_role", role="primary") == 1
    assert 295 < value(samples, "appliance_last_sync_age_seconds") < 400
    assert value(samples, "appliance_last_sync_success") == 1
    assert value(samples, "appliance_last_sync_duration_seconds") == pytest.approx(42)
    assert value(samples, "appliance_last_sync_bytes") == 345_678
    assert value(samples, "appliance_last_sync_records") == 1200
    assert value(samples, "appliance_sync_running") == 0
    # Continuously (the default): a minute without a word from the primary is too long.
    assert value(samples, "appliance_sync_expected_interval_seconds") == 60


def test_an_unpaired_site_has_no_peer_figures():
    samples = scrape()
    peer = {"appliance_peer_reachable", "appliance_peer_last_check_age_seconds"}
    assert not [name for name, _ in samples if name in peer or name == "appliance_peer_role"]
    assert not [name for name, _ in samples if name.startswith("appliance_last_sync")]


def test_the_shared_ip_held_is_reported_per_address(settings, tmp_path):
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    paired_as(Role.PRIMARY, peer_host="127.0.0.1")
    SharedIP(enabled=True, address="198.51.100.50/24", interface="eth0").save()
    held = {"address": "198.51.100.50/24", "interface": "eth0"}
    assert value(scrape(), "appliance_shared_ip_held", **held) == 0
    RecordingDriver().add(SharedAddress.parse("198.51.100.50/24", "eth0"))
    assert value(scrape(), "appliance_shared_ip_held", **held) == 1


def test_failovers_and_role_changes_are_counted_from_the_history():
    before = scrape()
    FailoverEvent.record(FailoverEvent.Kind.FAILOVER, "site-b became primary: primary down")
    FailoverEvent.record(FailoverEvent.Kind.ROLE_CHANGED, "site-b became backup")
    FailoverEvent.record(FailoverEvent.Kind.PEER_REACHABLE, "peer back")
    after = scrape()
    assert (
        value(after, "appliance_failovers_total") == value(before, "appliance_failovers_total") + 1
    )
    assert value(after, "appliance_role_changes_total") == (
        value(before, "appliance_role_changes_total") + 2
    )


def test_refused_peer_requests_are_counted_by_reason():
    before = value(scrape(), "appliance_peer_requests_refused_total", reason="unsigned")
    assert before is not None
    assert Client().get("/api/peer/v1/hello").status_code == 401
    after = value(scrape(), "appliance_peer_requests_refused_total", reason="unsigned")
    assert after == before + 1
    assert value(scrape(), "appliance_peer_requests_refused_total", reason="replayed") is not None


def test_requests_are_counted_with_their_latency_by_view(admin_client):
    before = scrape()
    admin_client.get("/status/")
    after = scrape()
    labels = {"view": "appliance:status", "method": "GET"}
    count = "appliance_http_request_duration_seconds_count"
    assert value(after, count, **labels) == (value(before, count, **labels) or 0) + 1
    assert value(after, "appliance_http_requests_total", **labels, status="200") >= 1


def test_a_replicating_backup_reports_its_lag_and_counts_its_last_contact_as_its_last_sync():
    from failover.models import SyncCursor, SyncSource

    paired_as(Role.BACKUP, peer_host="127.0.0.1")
    now = timezone.now()
    SyncCursor.objects.create(
        pk=1, generation=SyncSource.load().generation, seq=5, primary_latest=8,
        pending_since=now - dt.timedelta(seconds=2), contact_at=now,
    )  # fmt: skip
    samples = scrape()
    assert value(samples, "appliance_replication_connected") == 1
    assert value(samples, "appliance_replication_lag_changes") == 3
    assert 1 < value(samples, "appliance_replication_lag_seconds") < 60
    assert value(samples, "appliance_replication_synchronous_suspended") == 0
    assert value(samples, "appliance_last_sync_age_seconds") < 60
    assert value(samples, "appliance_last_sync_success") == 1
