"""Refund confirmations waiting for an admin's tap: in this process, or in Redis (REDIS_URL)
so that any replica can take the tap."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.shop.refunds import CONFIRM_TTL_SECONDS, RefundPlan

log = logging.getLogger("bot.refunds")


@dataclass(frozen=True)
class _Pending:
    plan: RefundPlan
    expires_at: datetime


class PendingRefunds:
    """Confirmations waiting for a tap, keyed by a short random token in the callback data.

    Kept in this process's memory: a restart makes a confirmation expire, and the admin runs
    /refund again. (With several replicas, SharedPendingRefunds keeps them in Redis.)
    `take` does not await between its read and its delete, so a token is consumed exactly
    once even for concurrent taps.
    """

    def __init__(self, ttl_seconds: int = CONFIRM_TTL_SECONDS, limit: int = 1000) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.limit = limit
        self._items: dict[str, _Pending] = {}

    async def put(self, plan: RefundPlan, now: datetime) -> str:
        return self._put_here(plan, now, secrets.token_urlsafe(9))

    async def take(self, token: str, admin_id: int, now: datetime) -> RefundPlan | None:
        """The plan, once; None when unknown, expired, used, or asked for by another admin."""
        return self._take_here(token, admin_id, now)

    def _put_here(self, plan: RefundPlan, now: datetime, token: str) -> str:
        self._items = {k: v for k, v in self._items.items() if v.expires_at > now}
        while len(self._items) >= self.limit:
            self._items.pop(next(iter(self._items)))
        self._items[token] = _Pending(plan, now + self.ttl)
        return token

    def _take_here(self, token: str, admin_id: int, now: datetime) -> RefundPlan | None:
        pending = self._items.get(token)
        if pending is None or pending.plan.admin_id != admin_id:
            return None
        del self._items[token]
        return pending.plan if pending.expires_at > now else None


class SharedPendingRefunds(PendingRefunds):
    """Confirmations in Redis (REDIS_URL), so that a tap on Confirm works on whichever
    replica Telegram's update reaches. One key per admin and token, with the confirmation's
    lifetime as its expiry; GETDEL hands a confirmation out once across all replicas, and
    another admin's tap names another key and consumes nothing. When Redis cannot be
    reached, the confirmation is kept in this process (as without Redis)."""

    PREFIX = "shop:refund-confirm:v1"

    def __init__(self, redis: Redis, ttl_seconds: int = CONFIRM_TTL_SECONDS) -> None:
        super().__init__(ttl_seconds)
        self.redis = redis

    def _key(self, admin_id: int, token: str) -> str:
        return f"{self.PREFIX}:{admin_id}:{token}"

    async def put(self, plan: RefundPlan, now: datetime) -> str:
        token = secrets.token_urlsafe(9)
        # Every field of the plan (take() rebuilds it with RefundPlan(**…)); the amount as
        # its exact decimal string.
        value = json.dumps(
            {**asdict(plan), "expires_at": (now + self.ttl).isoformat()}, default=str
        )
        try:
            await self.redis.set(self._key(plan.admin_id, token), value, ex=self.ttl)
        except RedisError as error:
            log.warning("refund confirmation kept in this process (Redis: %s)", error)
            return self._put_here(plan, now, token)
        return token

    async def take(self, token: str, admin_id: int, now: datetime) -> RefundPlan | None:
        here = self._take_here(token, admin_id, now)
        if here is not None or token in self._items:
            return here
        try:
            raw = await self.redis.getdel(self._key(admin_id, token))
        except RedisError as error:
            log.warning("could not read a refund confirmation from Redis: %s", error)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        if datetime.fromisoformat(data.pop("expires_at")) <= now:
            return None
        return RefundPlan(**{**data, "amount": Decimal(data["amount"])})


def pending_refunds(redis: Redis | None) -> PendingRefunds:
    """The confirmation store: in Redis when there is one (REDIS_URL), else in this process."""
    return PendingRefunds() if redis is None else SharedPendingRefunds(redis)
