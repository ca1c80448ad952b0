"""What failover adds to /metrics: the role and epoch, the peer, the last sync, the shared IP,
and how many failovers and role changes the site went through.

Read from the database (and the shared IP's record) at each scrape, through
the site's `metric_families` hook (failover.receivers). Ages and counts are
what the example dashboard graphs and the alert rules compare
(deploy/prometheus/, deploy/grafana/).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from failover import replication, schedule
from failover.models import (
    AlertDelivery,
    BackupSettings,
    FailoverEvent,
    FailoverState,
    Role,
    SyncRun,
)
from failover.shared_ip import holding


def families() -> list[Metric]:
    state = FailoverState.load()
    return [
        *role_families(state),
        *peer_families(state),
        *sync_families(state),
        *replication_families(state),
        *shared_ip_families(),
        *history_families(),
    ]


def _one_of(name: str, documentation: str, current: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["role"])
    for role in Role.values:
        family.add_metric([role], 1 if role == current else 0)
    return family


def _age(moment: object) -> float:
    return max(0.0, (timezone.now() - moment).total_seconds())


def role_families(state: FailoverState) -> Iterable[Metric]:
    yield _one_of("appliance_role", "This site's role: 1 for the role it has.", state.role)
    yield GaugeMetricFamily(
        "appliance_epoch", "The epoch of this site's last role change.", value=state.epoch
    )


def peer_families(state: FailoverState) -> Iterable[Metric]:
    """Only while paired: an unpaired site has no peer to be reachable or not."""
    if not state.is_paired:
        return
    if state.peer_reachable is not None:
        yield GaugeMetricFamily(
            "appliance_peer_reachable",
            "1 when the last check reached the peer, else 0.",
            value=1 if state.peer_reachable else 0,
        )
    if state.peer_checked_at is not None:
        yield GaugeMetricFamily(
            "appliance_peer_last_check_age_seconds",
            "Seconds since this site last checked its peer.",
            value=_age(state.peer_checked_at),
        )
    if state.peer_role:
        yield _one_of(
            "appliance_peer_role",
            "The peer's role as its last check said: 1 for the role it claimed.",
            state.peer_role,
        )


def sync_families(state: FailoverState) -> Iterable[Metric]:
    """The last finished data sync. The backup knows its own runs in full; the primary
    knows when its backup last synced and how, from the peer check."""
    if not state.is_paired:
        return
    if state.role == Role.PRIMARY:
        finished_at, status, run = state.peer_last_sync_at, state.peer_last_sync_status, None
    else:
        run = SyncRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
        finished_at, status = (run.finished_at, run.status) if run else (None, "")
    lag = replication.lag()
    if lag.following and lag.contact_at is not None:
        # Continuously, the data was last known in step at the last word about the log.
        finished_at = lag.contact_at
        status = SyncRun.Status.SUCCEEDED if lag.connected else SyncRun.Status.FAILED
    if finished_at is not None:
        yield GaugeMetricFamily(
            "appliance_last_sync_age_seconds",
            "Seconds since the last data sync finished.",
            value=_age(finished_at),
        )
        yield GaugeMetricFamily(
            "appliance_last_sync_success",
            "1 when the last data sync succeeded, 0 when it failed.",
            value=1 if status == SyncRun.Status.SUCCEEDED else 0,
        )
    if run is not None:
        duration = run.duration
        yield GaugeMetricFamily(
            "appliance_last_sync_duration_seconds",
            "How long the last data sync ran.",
            value=duration.total_seconds() if duration else 0.0,
        )
        yield GaugeMetricFamily(
            "appliance_last_sync_bytes", "Bytes the last data sync received.", value=run.bytes
        )
        yield GaugeMetricFamily(
            "appliance_last_sync_records", "Records the last data sync applied.", value=run.records
        )
    if state.role == Role.BACKUP:
        running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
        yield GaugeMetricFamily(
            "appliance_sync_running", "1 while a data sync runs.", value=1 if running else 0
        )
    backup_settings = BackupSettings.load()
    if backup_settings.enable_backup_operations:
        yield GaugeMetricFamily(
            "appliance_sync_expected_interval_seconds",
            "The longest the sync schedule lets pass between two syncs.",
            value=schedule.longest_gap(backup_settings),
        )


def replication_families(state: FailoverState) -> Iterable[Metric]:
    """Continuous replication: how far behind the backup is, as this site can tell."""
    if not state.is_paired:
        return
    lag = replication.lag()
    if not lag.following:
        return
    yield GaugeMetricFamily(
        "appliance_replication_connected",
        "1 when the sites talked about the change log within the last half minute.",
        value=1 if lag.connected else 0,
    )
    if lag.changes is not None:
        yield GaugeMetricFamily(
            "appliance_replication_lag_changes",
            "Changes of the primary's log the backup has not applied.",
            value=lag.changes,
        )
    if lag.seconds is not None:
        yield GaugeMetricFamily(
            "appliance_replication_lag_seconds",
            "Age of the oldest change the backup has not applied (0 when in step).",
            value=lag.seconds,
        )
    if lag.contact_at is not None:
        yield GaugeMetricFamily(
            "appliance_replication_last_contact_age_seconds",
            "Seconds since the sites last talked about the change log.",
            value=_age(lag.contact_at),
        )
    yield GaugeMetricFamily(
        "appliance_replication_synchronous_suspended",
        "1 while the primary's synchronous replication is suspended (writes go on without "
        "the backup).",
        value=1 if lag.suspended_since else 0,
    )


def shared_ip_families() -> Iterable[Metric]:
    """Per shared address (IPv4 and IPv6), whether this site holds it."""
    held = holding()
    if not held:
        return
    family = GaugeMetricFamily(
        "appliance_shared_ip_held",
        "1 when this site holds the shared IP address on its interface, else 0.",
        labels=["address", "interface"],
    )
    for shared, have in held.items():
        family.add_metric([shared.interface.with_prefixlen, shared.device], 1 if have else 0)
    yield family


def history_families() -> Iterable[Metric]:
    """Counted from the status history, so the counts survive restarts."""
    kinds = FailoverEvent.Kind
    failovers = FailoverEvent.objects.filter(kind=kinds.FAILOVER).count()
    role_changes = FailoverEvent.objects.filter(
        kind__in=[kinds.FAILOVER, kinds.ROLE_CHANGED]
    ).count()
    yield CounterMetricFamily(
        "appliance_failovers",
        "Automatic failovers this site made (it became primary on its own).",
        value=failovers,
    )
    deliveries = AlertDelivery.objects.filter
    yield CounterMetricFamily(
        "appliance_alerts_undeliverable",
        "Alerts recorded as undeliverable after their retry period (ALERT_RETRY_SECONDS).",
        value=deliveries(status=AlertDelivery.Status.UNDELIVERABLE).count(),
    )
    yield GaugeMetricFamily(
        "appliance_alerts_pending",
        "Alerts not delivered yet, being retried.",
        value=deliveries(status=AlertDelivery.Status.PENDING).count(),
    )
    yield CounterMetricFamily(
        "appliance_role_changes",
        "Role changes of this site: automatic failovers and changes by hand or by the peer.",
        value=role_changes,
    )
