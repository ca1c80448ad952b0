"""What failover adds to the rest of the site, through the other apps' hooks.

Connected in FailoverConfig.ready: the site and the security app import
nothing of failover; failover listens to them.
"""

from __future__ import annotations

from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from appliance.permissions import is_administrator
from appliance.signals import Fact
from failover import metrics, schedule
from failover.models import FailoverEvent, FailoverState, Role, ScheduledBackup
from failover.sync import changelog, runs


def ensure_schedule(**_kwargs: object) -> None:
    """After migrate, and when the site's time zone changes: the periodic tasks match."""
    schedule.apply()
    schedule.apply_backup()


def peer_request_refused(message: str, **_kwargs: object) -> None:
    """A refused peer request goes into the status history (and alerts)."""
    FailoverEvent.record(
        FailoverEvent.Kind.AUTH_REFUSED, message, severity=FailoverEvent.Severity.WARNING
    )


def key_note(saved: bool, **_kwargs: object) -> str | None:
    """What an administrator should know about changing the key of a paired site."""
    if FailoverState.load().role == Role.NONE:
        return None
    if saved:
        return (
            "This site is paired: save the same key on the other site too, or the two "
            "sites will refuse each other's requests."
        )
    return (
        "This site is paired. If you change the key, save the same key on the other site at "
        "once: until then they refuse each other's requests."
    )


def rows_written(sender: type[Model], keys: list[int], deleted: bool, **_kwargs: object) -> None:
    """Bulk writes of synced data go into the change log, like saves and deletes do."""
    changelog.record(sender, keys, deleted=deleted)


def role_fact(request: HttpRequest, **_kwargs: object) -> list[Fact]:
    state = FailoverState.load()
    return [Fact("Failover role", state.get_role_display(), badge=state.badge)]


def backup_fact(request: HttpRequest, **_kwargs: object) -> list[Fact]:
    """The daily backup's last outcome, when it is on (for administrators: it names the
    folder)."""
    config = ScheduledBackup.load()
    if not config.enabled or not is_administrator(request.user):
        return []
    if config.last_succeeded is None:
        value = "not run yet"
    else:
        at = timezone.localtime(config.last_finished_at).strftime("%Y-%m-%d %H:%M")
        value = f"succeeded {at}" if config.last_succeeded else f"FAILED {at}: {config.last_error}"
    return [Fact("Daily backup", value, badge=config.badge, test_id="scheduled-backup")]


def metric_families(**_kwargs: object) -> list:
    """Failover's figures on /metrics: role, epoch, peer, last sync, shared IP, counts."""
    return metrics.families()


def worker_ready(**_kwargs: object) -> None:
    """A starting worker takes over the sync retries a dead worker was holding."""
    runs.requeue_released()
