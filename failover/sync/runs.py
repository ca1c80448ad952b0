"""Requesting and running syncs: the glue between the pages, the CLI, the peer and the worker.

On the backup a request becomes a SyncRun row and a queued task (one sync at a
time); on the primary, Sync Now asks the backup to pull, since the backup holds
the cursor and applies the data. The worker's task calls `execute`.
"""

from __future__ import annotations

import logging
import random
from enum import Enum
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from appliance.models import SiteSettings
from failover import jobs, peer
from failover.models import BackupSettings, FailoverEvent, FailoverState, Role, SyncRun
from failover.peer import SYNC_REQUEST, PeerError
from failover.sync import progress
from failover.sync.receive import SyncFailed, pull

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4


class SyncRefused(Exception):
    """A sync could not even be asked for. `reason` is machine-readable."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"
    SKIPPED = "skipped"


# Asked for by someone waiting for it: a sync that waits to retry is tried again at once.
RETRIED_AT_ONCE = frozenset(
    {SyncRun.Trigger.MANUAL, SyncRun.Trigger.CLI, SyncRun.Trigger.BECOME_PRIMARY}
)


def request_sync(trigger: str, *, full: bool = False, by: str = "system") -> tuple[SyncRun, bool]:
    """On the backup: a new sync, queued once the caller's transaction commits.

    Returns (run, created); when a sync is already pending or running, that one
    is returned and nothing new is queued (one sync at a time). Asked for by a
    person (Sync Now, the CLI, Become Primary), a sync that is waiting to retry
    after a failed attempt is tried again at once instead.
    """
    run, created = SyncRun.request(trigger, full=full, by=by)
    if created or (trigger in RETRIED_AT_ONCE and run.retry_now()):
        transaction.on_commit(lambda: _enqueue(run))
    return run, created


def _enqueue(run: SyncRun) -> None:
    """Queue the run; if the broker cannot take it, close the run saying why."""
    try:
        jobs.run_sync(run.pk)
    except Exception as error:  # kombu raises several kinds when Redis is away
        logger.warning("Could not queue sync #%s: %s", run.pk, error)
        run.finish(
            SyncRun.Status.FAILED,
            "The sync could not be queued: this site's broker (Redis) does not answer. "
            "Check the Status tab, then try again.",
        )


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: about 5 s, 10 s, 20 s between attempts."""
    return 5 * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)


def execute(run_id: int) -> Outcome:
    """Claim the run and carry it out; its outcome is recorded on its SyncRun row."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None:
        return Outcome.SKIPPED
    progress.touch(run_id)
    if not run.claim():
        return Outcome.SKIPPED
    # Again: the attempt before this one may have ended its pulse since the first touch.
    progress.touch(run_id)
    try:
        return _run_claimed(run)
    finally:
        progress.forget(run_id)


def _run_claimed(run: SyncRun) -> Outcome:
    state = FailoverState.load()
    try:
        if state.role != Role.BACKUP:
            raise SyncFailed(f"This site is {state.role}, not a backup.", transient=False)
        with peer.client_for_state(state) as client:
            received = pull(run, client)
    except SyncFailed as failure:
        totals = {"records": run.records, "bytes": run.bytes, "files": run.files}
        if failure.transient and run.attempts < MAX_ATTEMPTS:
            delay = retry_delay(run.attempts)
            run.release(f"Attempt {run.attempts} failed: {failure.message}", retry_in=delay)
            logger.warning(
                "Sync #%s: attempt %s of %s failed, retrying in %.0f s: %s",
                run.pk, run.attempts, MAX_ATTEMPTS, delay, failure.message,
            )  # fmt: skip
            return Outcome.RETRY
        run.finish(SyncRun.Status.FAILED, failure.message, **totals)
        FailoverEvent.record(
            FailoverEvent.Kind.SYNC_FAILED,
            f"Sync #{run.pk} failed after {run.attempts} attempt(s): {failure.message}",
            severity=FailoverEvent.Severity.DANGER,
        )
        return Outcome.DONE
    except Exception as error:
        logger.exception("Sync #%s crashed", run.pk)
        run.finish(
            SyncRun.Status.FAILED,
            f"The sync stopped on an unexpected error ({error.__class__.__name__}); the backup's "
            "data was left as it was. See the worker's log.",
        )
        raise
    run.finish(
        SyncRun.Status.SUCCEEDED,
        full=bool(received.header["full"]),
        records=received.records,
        bytes=run.bytes,
        files=run.files,
    )
    logger.info(
        "Sync #%s from %s succeeded: %s records, %s bytes, %s files",
        run.pk, state.peer_name, received.records, run.bytes, run.files,
    )  # fmt: skip
    if received.header["full"]:
        FailoverEvent.record(
            FailoverEvent.Kind.SYNC_SUCCEEDED,
            f"Full sync #{run.pk} from {state.peer_name} completed: {received.records} records.",
        )
    return Outcome.DONE


def requeue_released() -> int:
    """At worker start: queue again the retries a dead worker was holding.

    A retry waits in the worker that released it; if that worker dies, the
    broker returns the message only after its visibility timeout (an hour).
    A duplicate delivery later finds the run claimed and does nothing.
    """
    released = SyncRun.objects.filter(status=SyncRun.Status.PENDING, retry_at__isnull=False)
    count = 0
    for run in released:
        jobs.run_sync(run.pk, countdown=max(0.0, (run.retry_at - timezone.now()).total_seconds()))
        count += 1
    return count


# Asking for a sync ----------------------------------------------------------------------


def sync_now(actor: object, *, full: bool = False, trigger: str = SyncRun.Trigger.MANUAL) -> str:
    """Start a sync from either site; returns a sentence saying which sync runs.

    On the backup the sync is queued here; on the primary the backup is asked
    to pull, since it is the backup that holds the cursor and applies the data.
    """
    state = FailoverState.load()
    by = getattr(actor, "username", None) or str(actor or "system")
    if state.role == Role.BACKUP:
        run, created = request_sync(trigger, full=full, by=by)
        return describe_request(run, created)
    if state.role != Role.PRIMARY:
        raise SyncRefused("This site is not paired: there is nothing to sync.", reason="not_paired")
    try:
        with peer.client_for_state(state) as client:
            answer = client.post(SYNC_REQUEST, {"full": full, "by": by, "trigger": trigger})
    except PeerError as error:
        raise SyncRefused(
            f"Could not ask the backup {state.peer_name} to sync: {error.message}",
            reason=error.reason,
        ) from None
    return f"The backup {state.peer_name}: {answer['detail']}"


def describe_request(run: SyncRun, created: bool) -> str:
    kind = "Full sync" if run.full_requested else "Sync"
    if created:
        return f"{kind} #{run.pk} started."
    if run.status == SyncRun.Status.PENDING and run.attempts:
        return (
            f"Sync #{run.pk} was waiting to retry after attempt {run.attempts} failed; "
            "it is tried again now."
        )
    since = run.created_at.astimezone(ZoneInfo(SiteSettings.load().time_zone))
    return f"Sync #{run.pk} is already {run.status} (since {since:%H:%M:%S}); wait for it."


def accept_sync_request(payload: dict) -> str:
    """On the backup, at the primary's request: start a sync."""
    state = FailoverState.load()
    if state.role != Role.BACKUP:
        raise SyncRefused(f"This site is {state.role}, not a backup.", reason="not_backup")
    trigger = payload.get("trigger") or SyncRun.Trigger.MANUAL
    run, created = request_sync(
        trigger,
        full=bool(payload.get("full")),
        by=f"{payload.get('by', 'peer')} on {state.peer_name}",
    )
    return describe_request(run, created)


def scheduled_sync() -> None:
    """The schedule's tick: sync if this site is a backup with backup operations enabled."""
    state = FailoverState.load()
    if state.role == Role.BACKUP and BackupSettings.load().enable_backup_operations:
        request_sync(SyncRun.Trigger.SCHEDULE)
