"""The Data-Sync Bandwidth Limit: a token bucket on the bytes read from the peer.

Reading slower than the peer sends fills the socket buffers, and TCP's flow
control then slows the sender: the limit holds for the bytes on the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Allows `rate` bytes per second on average, with bursts of at most `burst` bytes."""

    def __init__(
        self,
        bits_per_second: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = bits_per_second / 8 if bits_per_second else None
        # A quarter second of traffic: smooth, yet large enough for 16 KiB reads.
        self.burst = max(16 * 1024, self.rate / 4) if self.rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def consume(self, size: int) -> None:
        """Account for `size` bytes just read, sleeping as long as the limit requires.

        A debt is paid by sleeping but kept on the books: time a sleep overshoots
        is credited at the next call, so oversleeping does not lower the rate.
        """
        if self.rate is None:
            return
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= size
        if self._tokens < 0:
            self._sleep(-self._tokens / self.rate)
