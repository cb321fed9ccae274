"""One order per Buy tap: a double-tapped Buy places one order, on one replica or several.

Taps on one card message (user id, message id) are handled one at a time in this process, and
a message whose order is still pending places no other. With REDIS_URL the message's state is
kept in Redis too, so a second tap that reaches another replica (Telegram webhooks behind a
load balancer) sees it. Once that order is cancelled, expired or paid, Buy on the same
message — the card shown there again — is a new purchase.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("bot.buy_guard")

# Compare and set: the message still names the order that is over (or nothing) → "placing".
_RETAKE = """
local value = redis.call('GET', KEYS[1])
if value == false or value == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

Key = tuple[int, int]  # (Telegram user id, message id of the card)


class Claim(Enum):
    FREE = "free"  # nothing placed from this message: go ahead
    BUSY = "busy"  # a tap on another replica is placing an order from it right now


class _Turn:
    """One message's lock and how many taps hold it or wait for it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.taps = 0


class BuyGuard:
    """This process's guard (what SharedBuyGuard adds Redis to)."""

    def __init__(self, remember: int = 10_000) -> None:
        self.turns: dict[Key, _Turn] = {}
        self.placed: dict[Key, int] = {}
        self.remember = remember

    @asynccontextmanager
    async def turn(self, key: Key) -> AsyncIterator[None]:
        """Taps on one message, one at a time (in this process)."""
        turn = self.turns.get(key)
        if turn is None:
            turn = self.turns[key] = _Turn()
        turn.taps += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.taps -= 1
            # Dropped only when no tap waits for it: a later tap must queue on the same lock.
            if turn.taps == 0:
                del self.turns[key]

    async def claim(self, key: Key) -> Claim | int:
        """FREE (and this tap may place the order), BUSY, or the id of the order placed
        from this message — which the caller asks `retake` for when it is no longer pending."""
        placed = self.placed.get(key)
        return Claim.FREE if placed is None else placed

    async def retake(self, key: Key, order_id: int) -> bool:
        """The order placed from this message is over: may this tap place a new one?"""
        return True

    async def done(self, key: Key, order_id: int | None) -> None:
        """The tap's checkout ended: with `order_id` when it placed that order."""
        if order_id is None:
            return
        self.placed[key] = order_id
        if len(self.placed) > self.remember:
            self.placed.pop(next(iter(self.placed)))


class SharedBuyGuard(BuyGuard):
    """The guard with each message's state in Redis: "placing" while a tap places the order
    (expiring after PLACING_TTL, should that replica die), then the order id. SET NX decides
    which tap places; a compare-and-set hands a message whose order is over to exactly one
    new tap. When Redis cannot be reached, this process's guard alone applies."""

    PREFIX = "shop:buy:v1"
    PLACING = "placing"
    PLACING_TTL = 120  # seconds: longer than a checkout with all its retries
    PLACED_TTL = 2 * 86_400  # seconds: longer than an invoice lives

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self.redis = redis

    def _key(self, key: Key) -> str:
        return f"{self.PREFIX}:{key[0]}:{key[1]}"

    async def claim(self, key: Key) -> Claim | int:
        try:
            if await self.redis.set(self._key(key), self.PLACING, nx=True, ex=self.PLACING_TTL):
                return Claim.FREE
            value = await self.redis.get(self._key(key))
        except RedisError as error:
            log.warning("buy guard without Redis (%s): this replica's taps only", error)
            return await super().claim(key)
        text = value.decode() if isinstance(value, bytes) else value
        # None: it expired between the two calls — rare enough to ask for another tap.
        return int(text) if text and text.isdigit() else Claim.BUSY

    async def retake(self, key: Key, order_id: int) -> bool:
        try:
            return bool(
                await self.redis.eval(
                    _RETAKE, 1, self._key(key), str(order_id), self.PLACING, self.PLACING_TTL
                )
            )
        except RedisError as error:
            log.warning("buy guard without Redis (%s): this replica's taps only", error)
            return True

    async def done(self, key: Key, order_id: int | None) -> None:
        await super().done(key, order_id)
        try:
            if order_id is None:
                await self.redis.delete(self._key(key))
            else:
                await self.redis.set(self._key(key), str(order_id), ex=self.PLACED_TTL)
        except RedisError as error:
            log.warning("buy guard could not record the tap in Redis: %s", error)


def buy_guard(redis: Redis | None) -> BuyGuard:
    """The guard: shared through Redis when there is one, else this process's."""
    return BuyGuard() if redis is None else SharedBuyGuard(redis)
