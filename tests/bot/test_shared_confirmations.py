"""Refund confirmations shared between replicas through a real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from bot.app import create_dispatcher
from bot.callbacks import RefundConfirm, RefundDecision
from bot.runtime.refund_confirmations import PendingRefunds, SharedPendingRefunds, pending_refunds
from bot.shop.refunds import RefundPlan
from tests.bot.conftest import ADMIN_ID, REDIS_URL, Shop
from tests.bot.test_refunds import ask, paid_order, refunds, transfers

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PLAN = RefundPlan(
    order_id=17,
    buyer_id=5001,
    asset="USDT",
    amount=Decimal("4.990000000000000001"),
    reason="wrong key",
    admin_id=ADMIN_ID,
)


@pytest.fixture
async def replicas(redis: Redis) -> AsyncIterator[tuple[SharedPendingRefunds, ...]]:
    """Two replicas' stores on one Redis, under a key prefix of this test's own."""
    stores = tuple(
        SharedPendingRefunds(Redis.from_url(REDIS_URL, socket_timeout=2)) for _ in range(2)
    )
    prefix = f"test:refund-confirm:{uuid.uuid4().hex}"
    for store in stores:
        store.PREFIX = prefix
    yield stores
    for store in stores:
        await store.redis.aclose()
    keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


async def test_a_confirmation_made_on_one_replica_is_taken_on_another_once(
    replicas: tuple[SharedPendingRefunds, ...],
) -> None:
    first, second = replicas
    token = await first.put(PLAN, NOW)
    assert await second.take(token, ADMIN_ID, NOW + timedelta(seconds=10)) == PLAN
    assert await second.take(token, ADMIN_ID, NOW) is None
    assert await first.take(token, ADMIN_ID, NOW) is None


async def test_another_admins_tap_consumes_nothing(
    replicas: tuple[SharedPendingRefunds, ...],
) -> None:
    first, second = replicas
    token = await first.put(PLAN, NOW)
    assert await second.take(token, ADMIN_ID + 1, NOW) is None
    assert await second.take(token, ADMIN_ID, NOW) == PLAN


async def test_an_expired_confirmation_is_refused(
    replicas: tuple[SharedPendingRefunds, ...],
) -> None:
    first, second = replicas
    token = await first.put(PLAN, NOW)
    assert await second.take(token, ADMIN_ID, NOW + first.ttl + timedelta(seconds=1)) is None


async def test_taps_on_two_replicas_at_once_get_it_once(
    replicas: tuple[SharedPendingRefunds, ...],
) -> None:
    first, second = replicas
    token = await first.put(PLAN, NOW)
    taken = await asyncio.gather(
        *(store.take(token, ADMIN_ID, NOW) for store in (first, second, first, second))
    )
    assert taken.count(PLAN) == 1 and taken.count(None) == 3


async def test_redis_down_keeps_the_confirmation_in_this_process() -> None:
    store = SharedPendingRefunds(
        Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=1, socket_connect_timeout=1)
    )
    try:
        token = await store.put(PLAN, NOW)
        assert await store.take(token, ADMIN_ID, NOW) == PLAN
        assert await store.take(token, ADMIN_ID, NOW) is None
    finally:
        await store.redis.aclose()


async def test_the_store_follows_redis() -> None:
    assert type(pending_refunds(None)) is PendingRefunds
    client = Redis.from_url(REDIS_URL)
    assert isinstance(pending_refunds(client), SharedPendingRefunds)
    await client.aclose()


async def test_refund_asked_on_one_replica_confirmed_on_another_pays_once(
    shop: Shop, redis: Redis
) -> None:
    """/refund reaches replica A, the tap on Confirm reaches replica B: one transfer."""
    prefix = f"test:refund-confirm:{uuid.uuid4().hex}"
    replica_b = create_dispatcher(shop.ctx)
    for dp in (shop.dp, replica_b):
        dp["confirmations"] = SharedPendingRefunds(Redis.from_url(REDIS_URL, socket_timeout=2))
        dp["confirmations"].PREFIX = prefix
    try:
        order_id = await paid_order(shop)
        _, token = await ask(shop, f"{order_id}")
        assert token is not None
        tap = shop.callback(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)
        await replica_b.feed_update(shop.bot, tap)
        assert [r.status for r in await refunds(shop, order_id)] == ["sent"]
        assert len(transfers(shop)) == 1
        again = shop.callback(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)
        await shop.dp.feed_update(shop.bot, again)
        assert "already used" in (shop.answers_to(again)[0].text or "")
        assert len(transfers(shop)) == 1
    finally:
        for dp in (shop.dp, replica_b):
            await dp["confirmations"].redis.aclose()
