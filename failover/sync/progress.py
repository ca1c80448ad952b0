"""Live progress of the running sync, kept in Redis.

The apply phase runs inside one database transaction, so progress written to
the database would stay invisible until the end. Redis shows it at once, and
its expiry doubles as the worker's pulse: a running sync without a progress key
has lost its worker.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis
from django.conf import settings

from appliance.broker import connection

KEY = "appliance-failover:sync-progress:{run_id}"
# Longer than any single wait of a sync (a peer read may take PEER_TIMEOUT_SECONDS),
# so a live sync never looks dead.
PULSE_SECONDS = max(30, 3 * settings.PEER_TIMEOUT_SECONDS)
MIN_INTERVAL = 0.5


class Progress:
    """Counts of one run, published at most every half second (and at each phase)."""

    def __init__(self, run_id: int, *, expected: int | None = None) -> None:
        self.run_id = run_id
        self.phase = "connecting"
        self.records = 0
        self.expected = expected
        self.bytes = 0
        self.files = 0
        self.started = time.monotonic()
        self._published = 0.0
        self.publish(force=True)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.publish(force=True)

    def add(self, *, records: int = 0, size: int = 0, files: int = 0) -> None:
        self.records += records
        self.bytes += size
        self.files += files
        self.publish()

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes / elapsed
        left = None
        if self.expected and self.records and self.phase == "downloading":
            left = elapsed * (self.expected - self.records) / self.records
        return {
            "phase": self.phase,
            "records": self.records,
            "expected": self.expected,
            "bytes": self.bytes,
            "files": self.files,
            "rate": round(rate),
            "elapsed": round(elapsed, 1),
            "seconds_left": None if left is None else round(max(left, 0.0)),
        }

    def publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._published < MIN_INTERVAL:
            return
        self._published = now
        # Progress is a view: a Redis hiccup must not stop the sync itself.
        with contextlib.suppress(redis.RedisError):
            connection().set(
                KEY.format(run_id=self.run_id), json.dumps(self.snapshot()), ex=PULSE_SECONDS
            )


class Silent(Progress):
    """Counts kept but never published: continuous replication's batches, which have
    no run of their own and no progress view (their lag is what shows)."""

    def __init__(self) -> None:
        super().__init__(0)

    def publish(self, *, force: bool = False) -> None:
        return


def touch(run_id: int) -> None:
    """Start the run's pulse, before its worker claims it.

    Whoever sees the run running then also sees its pulse (until its worker
    dies and the pulse expires), so a run that has just started never looks
    dead, and a dead one is known as soon as its pulse lapses. NX: a worker
    that already runs it (a duplicate delivery) keeps its own progress.
    """
    starting = {
        "phase": "starting", "records": 0, "expected": None, "bytes": 0, "files": 0,
        "rate": 0, "elapsed": 0.0, "seconds_left": None,
    }  # fmt: skip
    with contextlib.suppress(redis.RedisError):
        connection().set(KEY.format(run_id=run_id), json.dumps(starting), ex=PULSE_SECONDS, nx=True)


def forget(run_id: int) -> None:
    """End the run's pulse: once it is closed or released, it has no live progress."""
    with contextlib.suppress(redis.RedisError):
        connection().delete(KEY.format(run_id=run_id))


def is_alive(run_id: int) -> bool | None:
    """Whether the run's worker still publishes progress; None when Redis cannot tell."""
    try:
        return bool(connection().exists(KEY.format(run_id=run_id)))
    except redis.RedisError:
        return None


def read(run_id: int) -> dict[str, Any] | None:
    """The published progress of a run, or None (finished, not started, or its worker died)."""
    try:
        raw = connection().get(KEY.format(run_id=run_id))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None
