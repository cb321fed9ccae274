"""A token bucket shared by all calls of one client, with an injectable clock and sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``.

    Waiters are served in arrival order (one lock), so a burst of callers is spread evenly.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0 requests per second")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = now

    def try_acquire(self) -> bool:
        self._refill()
        # The epsilon absorbs float error: elapsed * rate may land a hair under a whole token.
        if self._tokens >= 1 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        if not self._lock.locked() and self.try_acquire():
            return
        async with self._lock:
            while not self.try_acquire():
                await self._sleep(max((1 - self._tokens) / self.rate, 1e-6))
