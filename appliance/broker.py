"""This site's Redis, for what is not a Celery message: nonces, live progress, locks."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_pool: redis.ConnectionPool | None = None
_pool_url: str | None = None
_pool_lock = threading.Lock()


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
