"""Requesting and running syncs: the glue between the pages, the CLI and the worker."""

from __future__ import annotations

import logging
import random
from enum import Enum

from django.db import transaction

from failover.models import FailoverEvent, FailoverState, Role, SyncRun
from failover.sync.receive import SyncFailed, pull

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
REQUEST_SYNC = "/api/peer/v1/sync/request"


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"
    SKIPPED = "skipped"


def request_sync(trigger: str, *, full: bool = False, by: str = "system") -> tuple[SyncRun, bool]:
    """On the backup: a new sync, queued once the caller's transaction commits.

    Returns (run, created); when a sync is already pending or running, that one
    is returned and nothing new is queued (one sync at a time).
    """
    from failover import tasks

    run, created = SyncRun.request(trigger, full=full, by=by)
    if created:
        transaction.on_commit(lambda: _enqueue(tasks.run_sync, run))
    return run, created


def _enqueue(task: object, run: SyncRun) -> None:
    """Queue the run; if the broker cannot take it, close the run saying why."""
    try:
        task.delay(run.pk)
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
    """Run one claimed sync and record its outcome on its SyncRun row."""
    from failover.services import client_for_state

    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None or not run.claim():
        return Outcome.SKIPPED
    state = FailoverState.load()
    try:
        if state.role != Role.BACKUP:
            raise SyncFailed(f"This site is {state.role}, not a backup.", transient=False)
        with client_for_state(state) as client:
            received = pull(run, client)
    except SyncFailed as failure:
        totals = {"records": run.records, "bytes": run.bytes, "files": run.files}
        if failure.transient and run.attempts < MAX_ATTEMPTS:
            run.release(
                f"Attempt {run.attempts} failed: {failure.message}",
                retry_in=retry_delay(run.attempts),
            )
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
    from django.utils import timezone

    from failover import tasks

    released = SyncRun.objects.filter(status=SyncRun.Status.PENDING, retry_at__isnull=False)
    count = 0
    for run in released:
        countdown = max(0.0, (run.retry_at - timezone.now()).total_seconds())
        tasks.run_sync.apply_async((run.pk,), countdown=countdown)
        count += 1
    return count
