"""Taps that cost Crypto Pay calls (Buy, Check payment, Cancel), kept to a human pace.

One shopper tapping as fast as they can must not spend the Crypto Pay budget that the
reconciliation job and other buyers need. `TapThrottle` is a token bucket per Telegram user:
a short burst (8) passes, then one tap a second; a tap over the pace gets a friendly answer
and costs nothing. `RecentChecks` keeps Check payment's answer from Crypto Pay for a second
per order, and lets one check of an order run at a time, so a burst of Check taps costs one
getInvoices call. (A second, not more: a buyer who taps Check payment, pays, and taps again
must not be told from the cache that nothing has arrived.)

With REDIS_URL the throttle is kept in Redis (`SharedTapThrottle`), so a shopper whose taps
reach several replicas has one pace; when Redis cannot be reached, this process's bucket
applies. Check payment's answers stay in each process (a second, one call per replica).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("bot.taps")

# GCRA, the token bucket kept as one number: the time the user's bucket is full again ("tat").
# A tap passes while that is at most `burst` intervals ahead of now, and moves it on by one.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
if tat + interval > now + burst * interval then return 0 end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""


class TapThrottle:
    """A token bucket per user: `burst` taps at once, refilled at `per_second`."""

    def __init__(self, burst: int = 8, per_second: float = 1.0, remember: int = 10_000) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("TapThrottle needs burst >= 1 and per_second > 0")
        self.burst = burst
        self.per_second = per_second
        self.remember = remember
        self._buckets: dict[int, tuple[float, float]] = {}  # user → (tokens, at)

    async def allow(self, user_id: int, now: float) -> bool:
        """Take a token for this tap (True), or refuse it (False: nothing taken)."""
        tokens, at = self._buckets.get(user_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(now - at, 0.0) * self.per_second)
        allowed = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.remember:
            self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        """Drop users whose bucket has refilled: forgetting them changes nothing."""
        refill = self.burst / self.per_second
        self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < refill}


class SharedTapThrottle(TapThrottle):
    """The throttle kept in Redis: one pace per shopper across the replicas."""

    PREFIX = "shop:taps:v1"

    def __init__(
        self, redis: Redis, *, prefix: str = PREFIX, burst: int = 8, per_second: float = 1.0
    ) -> None:
        super().__init__(burst, per_second)
        self.redis = redis
        self.prefix = prefix

    async def allow(self, user_id: int, now: float) -> bool:
        try:
            passed = await self.redis.eval(
                _GCRA,
                1,
                f"{self.prefix}:{user_id}",
                f"{now:.3f}",
                str(1 / self.per_second),
                str(self.burst),
            )
        except RedisError as error:
            log.warning("tap throttle without Redis (%s): this replica's taps only", error)
            return await super().allow(user_id, now)
        return bool(passed)


def tap_throttle(redis: Redis | None) -> TapThrottle:
    """The throttle: shared through Redis when there is one, else this process's."""
    return TapThrottle() if redis is None else SharedTapThrottle(redis)


class RecentChecks:
    """Check payment's last answer from Crypto Pay per order, for `ttl` seconds."""

    def __init__(self, ttl: float = 1.0, remember: int = 10_000) -> None:
        self.ttl = ttl
        self.remember = remember
        self._answers: dict[int, tuple[str, float]] = {}  # order → (invoice status, at)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}  # order → (lock, waiters)

    @asynccontextmanager
    async def turn(self, order_id: int) -> AsyncIterator[None]:
        """One check of an order at a time: taps that arrive meanwhile wait and then find
        its answer here instead of asking Crypto Pay again."""
        lock, waiters = self._locks.get(order_id, (asyncio.Lock(), 0))
        self._locks[order_id] = (lock, waiters + 1)
        try:
            async with lock:
                yield
        finally:
            lock, waiters = self._locks[order_id]
            if waiters == 1:
                del self._locks[order_id]
            else:
                self._locks[order_id] = (lock, waiters - 1)

    def get(self, order_id: int, now: float) -> str | None:
        found = self._answers.get(order_id)
        if found is None or now - found[1] >= self.ttl:
            return None
        return found[0]

    def put(self, order_id: int, invoice_status: str, now: float) -> None:
        self._answers[order_id] = (invoice_status, now)
        if len(self._answers) > self.remember:
            self._answers = {o: a for o, a in self._answers.items() if now - a[1] < self.ttl}
