"""Replay protection for peer signatures: each nonce is accepted once.

A nonce is remembered in this site's Redis for twice the allowed clock skew: a
signature is accepted while its creation time is within the skew of our clock,
in either direction, so after 2 x skew a replay is refused as stale anyway and
the nonce can be forgotten.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

KEY_PREFIX = "appliance-failover:peer-nonce:"

_pool: redis.ConnectionPool | None = None
_pool_url: str | None = None
_pool_lock = threading.Lock()


class NonceStoreUnavailable(Exception):
    """This site's Redis cannot be reached, so a replay cannot be ruled out."""


def connection() -> redis.Redis:
    """A client on the module's connection pool for settings.REDIS_URL.

    The pool is rebuilt when REDIS_URL changes (tests override it), and redis-py
    resets it in a forked child, so worker processes never share sockets.
    """
    global _pool, _pool_url
    url = settings.REDIS_URL
    with _pool_lock:
        if _pool is None or _pool_url != url:
            if _pool is not None:
                _pool.disconnect()
            _pool = redis.ConnectionPool.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _pool_url = url
        return redis.Redis(connection_pool=_pool)


def claim(nonce: str, *, ttl_seconds: int) -> bool:
    """Remember the nonce; True the first time it is seen, False on every later call.

    One atomic SET NX, so two workers receiving the same request cannot both accept it.
    """
    try:
        first = connection().set(f"{KEY_PREFIX}{nonce}", 1, nx=True, ex=max(1, ttl_seconds))
    except redis.RedisError as error:
        raise NonceStoreUnavailable(
            f"Cannot check the request for replay: this site's Redis does not answer ({error})."
        ) from error
    return bool(first)
