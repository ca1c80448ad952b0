"""Continuous replication: the backup follows the primary's changes as they commit.

The backup's replication worker runs rounds, one after the other (`replicate`):
each asks the primary for the changes after its cursor and the primary holds the
request (a long poll) until there is one, or WAIT_SECONDS pass (`changes_for`).
The answer is a sealed change set like any sync's (failover.sync.stream), of at
most BATCH_CHANGES changes in the order they became visible; the backup applies
it in one transaction with its new cursor (failover.sync.receive.apply), fetches
the recordings that came without their file, and asks again at once. The request
for the next batch carries the cursor: it is the backup's acknowledgement of all
it has applied (`note_ack`), from which the primary reads the lag and releases
writes waiting in synchronous mode (`wait_for_backup`).

A round that fails waits with a growing delay (`backoff`) and tries again; a
cursor the primary no longer serves asks for a full resync (a SyncRun). The beat
runs `keep_replicating` every few seconds, which starts the rounds again should
their worker have died.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from appliance.broker import connection
from failover import jobs, peer
from failover.models import (
    BackupSettings,
    ChangeLog,
    FailoverEvent,
    FailoverState,
    Role,
    SyncCursor,
    SyncRun,
    SyncSource,
)
from failover.peer import PeerError
from failover.sync import changelog, progress, receive, runs
from failover.sync.receive import SyncFailed
from failover.sync.stream import Plan
from failover.sync.throttle import Throttle

logger = logging.getLogger(__name__)

CHANGES_CHANNEL = "appliance-failover:changes"
ACKS_CHANNEL = "appliance-failover:acks"
ACK_KEY = "appliance-failover:replication-ack"
ACK_SAVED_KEY = "appliance-failover:replication-ack-saved"
ALIVE_KEY = "appliance-failover:replicating"
ROUND_LOCK = "appliance-failover:replication-round"
FAILURES_KEY = "appliance-failover:replication-failures"
# How long the primary holds a request for changes when it has none.
WAIT_SECONDS = 20
# Re-check for changes while holding, should a wake-up have been missed.
RECHECK_SECONDS = 2.0
# Changes per batch: a backup far behind catches up in steps it applies quickly.
BATCH_CHANGES = 2000
PENDING_FILES_PER_ROUND = 20
MAX_BACKOFF_SECONDS = 30.0


class ResyncNeeded(Exception):
    """The primary's log no longer holds every change after the backup's cursor."""


class NotFollowing(Exception):
    """The pair's settings sync on a schedule: the primary serves no continuous requests."""


# The primary's side ------------------------------------------------------------------------


def changes_for(generation: str | None, since: int | None, *, wait: float, limit: int) -> Plan:
    """The next batch for a following backup: held until there is a change after `since`
    (at most `wait` seconds; then an empty batch). Raises ResyncNeeded, or NotFollowing
    when the pair's settings no longer sync continuously."""
    deadline = time.monotonic() + max(0.0, wait)
    with _subscribed(CHANGES_CHANNEL) as channel:
        while True:
            # Both sites keep the same settings; changed to a schedule, the backup stops.
            if not BackupSettings.load().is_continuous:
                raise NotFollowing(
                    "The pair syncs on a schedule now, not continuously: replication stops."
                )
            plan = Plan.make(generation, since, False, limit=limit)
            if plan.full:
                raise ResyncNeeded(
                    f"This site's change log no longer holds every change after {since}: a "
                    "full resync is needed."
                )
            left = deadline - time.monotonic()
            if plan.upto > plan.since or left <= 0:
                return plan
            if channel is None:
                time.sleep(min(left, RECHECK_SECONDS))  # Redis is away: look again later
            else:
                channel.get_message(timeout=min(left, RECHECK_SECONDS))


def note_ack(generation: str | None, since: int | None) -> None:
    """A backup's request for changes acknowledges everything it has applied, up to `since`.

    Kept in Redis at once (waiting writers are told on ACKS_CHANNEL) and in the
    database at most once a second (a site that steps down reads it from there).
    """
    if generation is None or since is None:
        return
    source = SyncSource.load()
    if str(source.generation) != str(generation):
        return
    now = timezone.now()
    record = json.dumps({"generation": str(generation), "seq": int(since), "at": now.isoformat()})
    save = True
    with contextlib.suppress(redis.RedisError):
        broker = connection()
        broker.set(ACK_KEY, record)
        broker.publish(ACKS_CHANNEL, str(since))
        save = bool(broker.set(ACK_SAVED_KEY, 1, nx=True, ex=1))
    if save:
        FailoverState.objects.filter(pk=1).update(
            peer_acked_generation=generation, peer_acked_seq=since, peer_acked_at=now
        )
    if since >= source.last_seq:
        _resume_synchronous()


@dataclass(frozen=True)
class Ack:
    generation: str
    seq: int
    at: dt.datetime


def acknowledged() -> Ack | None:
    """How far the backup has applied this site's log, as it last said."""
    try:
        raw = connection().get(ACK_KEY)
    except redis.RedisError:
        raw = None
    if raw:
        record = json.loads(raw)
        return Ack(record["generation"], record["seq"], dt.datetime.fromisoformat(record["at"]))
    state = FailoverState.load()
    if state.peer_acked_generation is None or state.peer_acked_seq is None:
        return None
    return Ack(str(state.peer_acked_generation), state.peer_acked_seq, state.peer_acked_at)


class _Written:
    """The changes one transaction logged, for what follows its commit (one callback each,
    however many rows a bulk write logged)."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.callback = self.committed

    def committed(self) -> None:
        _after_commit(self.ids)


_writing = threading.local()


def changes_logged(ids: list[int], **_kwargs: object) -> None:
    """Receiver of changelog.changes_logged, in the writer's transaction.

    Once it commits: the backup's held request is woken; in synchronous mode the
    writer then waits until the backup has committed these changes.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _after_commit(list(ids))  # autocommit: written already
        return
    written = getattr(_writing, "current", None)
    # A new transaction (the last one committed or rolled back, and its callback with
    # it) gets a new collection.
    if written is None or not any(
        entry[1] is written.callback for entry in connection.run_on_commit
    ):
        written = _writing.current = _Written()
        transaction.on_commit(written.callback)
    written.ids.extend(ids)


def _after_commit(ids: list[int]) -> None:
    _announce()
    if _synchronous_applies():
        wait_for_backup(ids)


def _announce() -> None:
    with contextlib.suppress(redis.RedisError):
        connection().publish(CHANGES_CHANNEL, "1")


def _synchronous_applies() -> bool:
    state = FailoverState.load()
    if state.role != Role.PRIMARY or state.synchronous_suspended_at is not None:
        return False
    return BackupSettings.load().replicates_synchronously


def wait_for_backup(ids: list[int]) -> bool:
    """Synchronous mode: wait until the backup has committed the changes logged as `ids`.

    True once it has. After the configured time without its word, the primary goes
    on alone: synchronous replication is suspended (an event and an alert say so)
    until the backup has caught up again.
    """
    timeout = BackupSettings.load().synchronous_timeout_seconds
    deadline = time.monotonic() + timeout
    generation = str(SyncSource.load().generation)
    with _subscribed(ACKS_CHANNEL) as channel:
        while True:
            if _covered(ids, generation):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if channel is None:
                time.sleep(min(left, 0.05))
            else:
                channel.get_message(timeout=min(left, 0.25))
    suspend(
        f"the backup did not confirm a write within {timeout} s "
        f"({FailoverState.load().peer_name or 'the backup'} is away or behind)"
    )
    return False


def _covered(ids: list[int], generation: str) -> bool:
    seqs = list(ChangeLog.objects.filter(id__in=ids).values_list("seq", flat=True))
    if any(seq is None for seq in seqs):
        return False
    ack = acknowledged()
    return not seqs or (ack is not None and ack.generation == generation and ack.seq >= max(seqs))


def suspend(reason: str) -> None:
    """Writes go on without the backup's word; recorded once per suspension."""
    suspended = FailoverState.objects.filter(pk=1, synchronous_suspended_at__isnull=True).update(
        synchronous_suspended_at=timezone.now()
    )
    if suspended:
        FailoverEvent.record(
            FailoverEvent.Kind.SYNCHRONOUS_SUSPENDED,
            f"Synchronous replication suspended: {reason}. Writes are acknowledged without "
            "the backup until it has caught up; what it lacks meanwhile could be lost with "
            "this site.",
            severity=FailoverEvent.Severity.DANGER,
        )


def _resume_synchronous() -> None:
    resumed = FailoverState.objects.filter(pk=1, synchronous_suspended_at__isnull=False).update(
        synchronous_suspended_at=None
    )
    if resumed:
        FailoverEvent.record(
            FailoverEvent.Kind.SYNCHRONOUS_RESUMED,
            "Synchronous replication resumed: the backup has caught up.",
        )


@contextlib.contextmanager
def _subscribed(channel_name: str) -> Iterator[redis.client.PubSub | None]:
    """A subscription to one channel (None when Redis is away: callers poll instead)."""
    try:
        channel = connection().pubsub(ignore_subscribe_messages=True)
        channel.subscribe(channel_name)
    except redis.RedisError:
        yield None
        return
    try:
        yield channel
    finally:
        with contextlib.suppress(redis.RedisError):
            channel.close()


# The backup's side -------------------------------------------------------------------------


def applied_cursor() -> dict[str, object] | None:
    """This site's cursor in its primary's log, when it has applied any of it: what a
    backup tells the primary it holds (in its hello, and when it takes over)."""
    cursor = SyncCursor.load()
    if cursor.generation is None:
        return None
    return {"generation": str(cursor.generation), "seq": cursor.seq}


def own_log() -> dict[str, object]:
    """Where this site's own change log stands: a backup taking over hands it to the old
    primary, whose data is then the same, to follow the new primary's log from there."""
    return {"generation": str(SyncSource.load().generation), "seq": changelog.sequence()}


def following(state: FailoverState, settings_: BackupSettings) -> bool:
    """Whether this site follows its primary continuously."""
    return (
        state.role == Role.BACKUP and settings_.enable_backup_operations and settings_.is_continuous
    )


def keep_replicating() -> bool:
    """The beat's watchdog: start the rounds when they should run and none is alive."""
    if not following(FailoverState.load(), BackupSettings.load()):
        return False
    try:
        if connection().exists(ALIVE_KEY):
            return False
    except redis.RedisError:
        return False
    _alive(WAIT_SECONDS + 30)
    jobs.replicate()
    return True


def replicate() -> str:
    """One round in the replication worker; it queues the next. Returns what it did."""
    state, settings_ = FailoverState.load(), BackupSettings.load()
    if not following(state, settings_):
        return "not following a primary"
    round_seconds = WAIT_SECONDS + 3 * settings.PEER_TIMEOUT_SECONDS + 30
    try:
        lock = connection().lock(ROUND_LOCK, timeout=round_seconds, blocking=False)
        if not lock.acquire():
            return "another round is running"
    except redis.RedisError:
        return "Redis does not answer"
    started = time.monotonic()
    try:
        _alive(round_seconds)
        outcome, delay = _round(state, settings_)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()
    if not delay and outcome.startswith("applied 0 ") and time.monotonic() - started < 1:
        delay = 1.0  # the primary did not hold the request: do not ask in a busy loop
    _alive(delay + round_seconds)
    jobs.replicate(countdown=delay or None)
    return outcome


def _round(state: FailoverState, settings_: BackupSettings) -> tuple[str, float]:
    active = SyncRun.objects.filter(
        status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).first()
    if active is not None:
        return f"waiting for sync #{active.pk}", 1.0
    cursor = SyncCursor.load()
    if cursor.generation is None:
        return _resync("this site holds no copy of the primary's data yet"), 1.0
    spool = spool_root()
    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    throttle = _throttle(settings_.bandwidth_limit)
    body = receive.request_body(cursor, False, follow=True, wait=WAIT_SECONDS, limit=BATCH_CHANGES)
    try:
        with peer.client_for_state(
            state, read_timeout=WAIT_SECONDS + settings.PEER_TIMEOUT_SECONDS
        ) as client:
            received = receive.download(client, body, spool, throttle, progress.Silent())
            applied = _take(received)
            fetched, pending = receive.fetch_pending(
                client, throttle, limit=PENDING_FILES_PER_ROUND
            )
    except PeerError as error:
        payload = error.payload if isinstance(error.payload, dict) else {}
        if payload.get("reason") == "resync_needed":
            return _resync(str(payload.get("detail") or error.message)), 1.0
        if payload.get("reason") == "not_following":
            # The settings changed on the primary; this site's own follow in a moment.
            return _failed(state, str(payload.get("detail") or error.message))
        return _failed(state, error.message)
    except SyncFailed as failure:
        return _failed(state, failure.message)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    _recovered(state)
    files = f", {fetched} recording(s) fetched" if fetched else ""
    waiting = f", {pending} waiting" if pending else ""
    return f"applied {applied} change(s){files}{waiting}", 0.0


def _take(received: receive.Received) -> int:
    """Apply a batch (or, when it holds nothing, note the contact); how many records."""
    header = received.header
    if header.get("full"):
        raise SyncFailed(
            "The primary sent everything where changes were asked for.", transient=True
        )
    if header["upto"] == header["since"]:
        cursor = SyncCursor.load()
        receive.note_primary_log(cursor, header)
        SyncCursor.objects.filter(pk=1).update(
            contact_at=timezone.now(),
            primary_latest=cursor.primary_latest,
            pending_since=cursor.pending_since,
            replication_error="",
        )
        return 0
    removed = receive.apply(received, progress.Silent(), files_follow=True)
    for name in removed:
        default_storage.delete(name)
    return received.records


def _resync(why: str) -> str:
    run, created = runs.request_sync(SyncRun.Trigger.RESYNC, full=True, by="replication")
    said = "requested" if created else "already under way"
    return f"full resync #{run.pk} {said}: {why}"


def _failed(state: FailoverState, message: str) -> tuple[str, float]:
    """A failed round: say so once, then wait a growing delay before the next."""
    try:
        failures = int(connection().incr(FAILURES_KEY))
        connection().expire(FAILURES_KEY, 3600)
    except redis.RedisError:
        failures = 1
    SyncCursor.objects.filter(pk=1).update(replication_error=message)
    logger.warning("replication round %s failed: %s", failures, message)
    if failures == 1:
        FailoverEvent.record(
            FailoverEvent.Kind.REPLICATION,
            f"Replication from {state.peer_name} broke off: {message} It retries by itself.",
            severity=FailoverEvent.Severity.WARNING,
        )
    return f"failed: {message}", backoff(failures)


def _recovered(state: FailoverState) -> None:
    try:
        failures = int(connection().getdel(FAILURES_KEY) or 0)
    except redis.RedisError:
        failures = 0
    if failures:
        SyncCursor.objects.filter(pk=1).update(replication_error="")
        FailoverEvent.record(
            FailoverEvent.Kind.REPLICATION, f"Replication from {state.peer_name} resumed."
        )


def backoff(failures: int) -> float:
    """About 1, 2, 4 ... seconds after consecutive failures, at most half a minute."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1)) * random.uniform(0.8, 1.2)


def _alive(seconds: float) -> None:
    with contextlib.suppress(redis.RedisError):
        connection().set(ALIVE_KEY, 1, ex=max(1, int(seconds)))


_throttles: dict[int | None, Throttle] = {}


def _throttle(limit: int | None) -> Throttle:
    """The bandwidth limit holds across rounds: one bucket per limit, kept by the worker."""
    if limit not in _throttles:
        _throttles.clear()
        _throttles[limit] = Throttle(limit)
    return _throttles[limit]


def spool_root() -> Path:
    return settings.DATA_DIR / "replication"


# Lag -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    """How far the backup is behind the primary, as this site can tell."""

    following: bool  # continuous replication is on and this site takes part
    changes: int | None  # None: unknown
    seconds: float | None
    contact_at: dt.datetime | None  # the last word between the sites about it
    connected: bool
    error: str = ""
    suspended_since: dt.datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "following": self.following,
            "changes_behind": self.changes,
            "seconds_behind": None if self.seconds is None else round(self.seconds, 3),
            "last_contact": self.contact_at.isoformat() if self.contact_at else None,
            "connected": self.connected,
            "error": self.error,
            "synchronous_suspended_since": (
                self.suspended_since.isoformat() if self.suspended_since else None
            ),
        }

    @property
    def in_step(self) -> bool:
        return self.connected and self.changes == 0


def describe_lag_at_takeover() -> str:
    """How far behind this backup was when it took over, for the failover event."""
    cursor = SyncCursor.load()
    if cursor.generation is None:
        return "This site held no copy of the primary's data."
    known = lag()
    heard = (
        f" (as the primary last said, at {timezone.localtime(cursor.contact_at):%H:%M:%S})"
        if cursor.contact_at
        else ""
    )
    if known.changes == 0:
        return f"It had applied every change of the primary's log{heard}."
    seconds = f", {known.seconds:.1f} s" if known.seconds is not None else ""
    return f"It was {known.changes} change(s){seconds} behind{heard}."


def lag() -> Lag:
    """The lag as this site sees it: the backup from its cursor, the primary from the ack."""
    state, settings_ = FailoverState.load(), BackupSettings.load()
    now = timezone.now()
    stale_after = dt.timedelta(seconds=WAIT_SECONDS + 2 * settings.PEER_TIMEOUT_SECONDS + 5)
    if state.role == Role.BACKUP:
        cursor = SyncCursor.load()
        behind = max(0, cursor.primary_latest - cursor.seq) if cursor.generation else None
        seconds = None
        if behind == 0:
            seconds = 0.0
        elif behind and cursor.pending_since:
            seconds = max(0.0, (now - cursor.pending_since).total_seconds())
        connected = cursor.contact_at is not None and now - cursor.contact_at < stale_after
        return Lag(
            following(state, settings_), behind, seconds, cursor.contact_at, connected,
            cursor.replication_error,
        )  # fmt: skip
    if state.role == Role.PRIMARY:
        ack = acknowledged()
        source = SyncSource.load()
        if ack is None or ack.generation != str(source.generation):
            return Lag(
                settings_.is_continuous, None, None, None, False,
                suspended_since=state.synchronous_suspended_at,
            )  # fmt: skip
        latest = changelog.sequence()
        behind = max(0, latest - ack.seq)
        first = ChangeLog.objects.filter(seq__gt=ack.seq).order_by("seq").first()
        seconds = 0.0 if not behind or first is None else (now - first.at).total_seconds()
        return Lag(
            settings_.is_continuous, behind, max(0.0, seconds), ack.at, now - ack.at < stale_after,
            suspended_since=state.synchronous_suspended_at,
        )  # fmt: skip
    return Lag(False, None, None, None, False)
