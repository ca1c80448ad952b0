"""Replay protection for peer signatures: each nonce is accepted once.

A nonce is remembered in this site's Redis for twice the allowed clock skew: a
signature is accepted while its creation time is within the skew of our clock,
in either direction, so after 2 x skew a replay is refused as stale anyway and
the nonce can be forgotten.
"""

from __future__ import annotations

import redis

from appliance.broker import connection

KEY_PREFIX = "appliance-failover:peer-nonce:"


class NonceStoreUnavailable(Exception):
    """This site's Redis cannot be reached, so a replay cannot be ruled out."""


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
