"""deploy/: the Prometheus alert rules and the Grafana dashboard match what /metrics serves.

promtool (Debian's prometheus package, installed by tests/setup-system) checks
the rules and runs their unit tests (deploy/prometheus/alerts.test.yml).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess

import pytest
import yaml
from django.utils import timezone

from appliance.models import Heartbeat
from failover.models import FailoverEvent, Role, SharedIP, SyncCursor, SyncRun, SyncSource
from tests.conftest import paired_as
from tests.sites import ROOT
from tests.test_metrics import scrape

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "appliance-failover.json"
METRIC = re.compile(r"\bappliance_[a-z_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is missing: run tests/setup-system as root (Debian's prometheus)")
    return found


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_promtool_accepts_the_rules():
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_fire_when_they_should_and_only_then():
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True, text=True, timeout=120, cwd=RULE_TESTS.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_cover_failover_stale_syncs_an_unreachable_peer_and_two_primaries():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    names = {rule["alert"] for group in groups for rule in group["rules"]}
    assert {
        "ApplianceFailoverHappened",
        "ApplianceSyncStale",
        "AppliancePeerUnreachable",
        "ApplianceTwoPrimaries",
    } <= names


@pytest.mark.django_db
@pytest.mark.usefixtures("peer_redis")
def test_every_metric_the_rules_and_the_dashboard_use_is_served(settings, tmp_path):
    """A site with everything to report: a paired backup, a sync, the shared IP, an alert."""
    settings.SHARED_IP_DRIVER = "recording"
    settings.DATA_DIR = tmp_path
    state = paired_as(Role.BACKUP, peer_host="127.0.0.1")
    state.record_peer_check(reachable=True, role=Role.PRIMARY, epoch=state.epoch)
    now = timezone.now()
    SyncRun.objects.create(
        trigger=SyncRun.Trigger.SCHEDULE, status=SyncRun.Status.SUCCEEDED,
        started_at=now - dt.timedelta(seconds=3), finished_at=now,
    )  # fmt: skip
    SharedIP(enabled=True, address="198.51.100.50/24", interface="eth0").save()
    SyncCursor.objects.create(
        pk=1, generation=SyncSource.load().generation, seq=5, primary_latest=6,
        pending_since=now - dt.timedelta(seconds=1), contact_at=now,
    )  # fmt: skip
    FailoverEvent.record(FailoverEvent.Kind.PEER_REACHABLE, "peer back")
    Heartbeat.beat(Heartbeat.Component.WORKER, "host", 1)
    scrape()  # a request, so the request counters have samples
    served = {name for name, _labels in scrape()}
    used = {
        name
        for expr in rule_expressions() + dashboard_expressions()
        for name in METRIC.findall(expr)
    }
    assert used - served == set()


def test_the_dashboard_reads_from_the_prometheus_it_is_imported_with():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert len(dashboard["panels"]) >= 10
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
