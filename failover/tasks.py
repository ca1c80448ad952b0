"""Background work of the pair. Thin: each task calls one behaviour function.

Behaviour modules queue these by name through failover.jobs, never by importing
this module (which imports them).
"""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from failover import (
    alerts,
    backups,
    monitor,
    relationship,
    replication,
    shared_ip,
    switchover,
    takeover,
)
from failover.models import SyncRun
from failover.sync import changelog, runs


@shared_task(ignore_result=True)
def check_peer() -> None:
    """Beat runs this on both sites: ask the peer how it is, record the answer."""
    relationship.check_peer()


@shared_task(bind=True, ignore_result=True, max_retries=runs.MAX_ATTEMPTS)
def run_sync(self, run_id: int) -> None:
    """Pull the primary's data into this backup; transient failures retry with backoff."""
    if runs.execute(run_id) is runs.Outcome.RETRY:
        run = SyncRun.objects.get(pk=run_id)
        countdown = max(0.0, (run.retry_at - timezone.now()).total_seconds())
        raise self.retry(countdown=countdown)


@shared_task(ignore_result=True)
def scheduled_sync() -> None:
    """django-celery-beat runs this on the administrator's schedule."""
    runs.scheduled_sync()


@shared_task(ignore_result=True)
def scheduled_backup() -> None:
    """django-celery-beat, daily when the administrator turned it on: back the site up to
    its folder (Management > Backup)."""
    backups.run_scheduled()


@shared_task(ignore_result=True)
def replicate() -> str:
    """One round of continuous replication (replication queue); it queues the next."""
    return replication.replicate()


@shared_task(ignore_result=True)
def keep_replicating() -> None:
    """Beat, every few seconds: start the rounds again if their worker died."""
    replication.keep_replicating()


@shared_task(ignore_result=True)
def poll_primary() -> None:
    """The backup's monitor tick (at the poll interval, when automatic failover is on)."""
    monitor.poll()


@shared_task(ignore_result=True)
def follow_role(peer_checked: bool = False) -> None:
    """After a role change and every period: the shared IP, the DNS swing and the hooks
    follow the role (network queue: the worker with the privilege)."""
    takeover.follow(peer_checked=peer_checked)


@shared_task(ignore_result=True)
def announce_shared_ip(check_holder: bool = False) -> None:
    """The second burst of announcements (network queue), after a check for another holder."""
    shared_ip.announce(check_holder=check_holder)


@shared_task(ignore_result=True)
def change_role(action: str, actor: str, flag: bool, token: str = "") -> None:
    """Become Primary (flag: sync first) or Become Backup (flag: force), under its claim."""
    switchover.change_role(action, actor, flag, token)


@shared_task(
    bind=True,
    ignore_result=True,
    autoretry_for=(alerts.DeliveryFailed,),
    retry_backoff=settings.ALERT_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=alerts.MAX_ATTEMPTS - 1,
)
def send_alert(self, event_id: int) -> None:
    """E-mail and webhook for one event of the status history, retried until delivered."""
    alerts.deliver_pending(event_id, last_attempt=self.request.retries >= self.max_retries)


@shared_task(ignore_result=True)
def prune_change_log() -> None:
    """Daily: forget change-log rows older than a month."""
    changelog.prune()
