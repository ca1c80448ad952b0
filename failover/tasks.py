"""Background work of the pair. Thin: each task calls one domain function."""

from celery import shared_task
from django.utils import timezone

from failover import alerts, monitor, roles, services
from failover.models import FailoverEvent, SyncRun
from failover.sync import changelog, runs


@shared_task(ignore_result=True)
def check_peer() -> None:
    """Beat runs this on both sites: ask the peer how it is, record the answer."""
    services.check_peer()


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
    services.scheduled_sync()


@shared_task(ignore_result=True)
def poll_primary() -> None:
    """The backup's monitor tick (at the poll interval, when automatic failover is on)."""
    monitor.poll()


@shared_task(ignore_result=True)
def reconcile_shared_ip(peer_checked: bool = False) -> None:
    """Make the interface match the role (network queue: the worker with the privilege)."""
    roles.reconcile(peer_checked=peer_checked)


@shared_task(ignore_result=True)
def announce_shared_ip(check_holder: bool = False) -> None:
    """The second burst of gratuitous ARP (network queue), after a check for another holder."""
    roles.announce(check_holder=check_holder)


@shared_task(ignore_result=True)
def change_role(action: str, actor: str, flag: bool) -> None:
    """Become Primary (flag: sync first) or Become Backup (flag: force), from the page."""
    try:
        if action == "become_primary":
            roles.become_primary(actor, sync_first=flag)
        else:
            roles.become_backup(actor, force=flag)
    except roles.RoleError as error:
        roles.record_refused_change(action, actor, error)


@shared_task(ignore_result=True)
def send_alert(event_id: int) -> None:
    """E-mail and webhook for one event of the status history."""
    event = FailoverEvent.objects.filter(pk=event_id).first()
    if event is not None:
        alerts.deliver(event)


@shared_task(ignore_result=True)
def prune_change_log() -> None:
    """Daily: forget change-log rows older than a month."""
    changelog.prune()
