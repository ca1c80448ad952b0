"""Writes in flight on this site, so that a freeze can wait until they are done.

Become Primary with a final sync freezes the primary: from then on it refuses
writes. A write that read "not frozen" just before may still be running, and
must be in the final sync. Each write registers itself in Redis before it reads
the flag; the freeze sets the flag and then waits until none is registered.
An entry a crashed web process left behind expires after STALE_SECONDS.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from appliance.broker import connection

logger = logging.getLogger(__name__)

KEY = "appliance-failover:writes-in-flight"
STALE_SECONDS = 120


@contextmanager
def in_flight() -> Iterator[None]:
    """Register a write for its duration. Without Redis the write still goes ahead
    (the site keeps serving), and a freeze, which needs Redis too, is refused."""
    token = uuid.uuid4().hex
    try:
        connection().zadd(KEY, {token: time.time()})
    except redis.RedisError as error:
        logger.warning("write not registered as in flight (Redis: %s)", error)
        yield
        return
    try:
        yield
    finally:
        try:
            connection().zrem(KEY, token)
        except redis.RedisError:
            logger.warning("in-flight write left registered; it expires in %s s", STALE_SECONDS)


def wait_until_drained(timeout: float) -> bool:
    """True once no write is in flight; False if some still are after `timeout` seconds."""
    broker = connection()
    deadline = time.monotonic() + timeout
    while True:
        broker.zremrangebyscore(KEY, "-inf", time.time() - STALE_SECONDS)
        if broker.zcard(KEY) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
