"""A double-tapped Buy across replicas, through a real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiogram import Dispatcher
from redis.asyncio import Redis

from bot.app import create_dispatcher
from bot.callbacks import OrderAction, OrderButton, ProductAction, ProductCard
from bot.runtime.buy_guard import BuyGuard, Claim, SharedBuyGuard, buy_guard
from bot.screens.texts import texts as t
from storage import OrderStatus
from tests.bot.conftest import ALICE, BOB, REDIS_URL, Shop, next_id

KEY = (5001, 77)


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own, cleaned up afterwards."""
    name = f"test:buy:{uuid.uuid4().hex}"
    yield name
    keys = [key async for key in redis.scan_iter(f"{name}:*")]
    if keys:
        await redis.delete(*keys)


def shared(prefix: str) -> SharedBuyGuard:
    guard = SharedBuyGuard(Redis.from_url(REDIS_URL, socket_timeout=2))
    guard.PREFIX = prefix
    return guard


async def test_one_tap_places_the_other_replica_is_told_it_is_being_placed(prefix: str) -> None:
    first, second = shared(prefix), shared(prefix)
    try:
        assert await first.claim(KEY) is Claim.FREE
        assert await second.claim(KEY) is Claim.BUSY
        await first.done(KEY, 42)
        assert await second.claim(KEY) == 42  # the caller asks whether #42 is still pending
        # #42 is over (cancelled, say): exactly one of two taps may place a new order.
        retaken = await asyncio.gather(second.retake(KEY, 42), first.retake(KEY, 42))
        assert sorted(retaken) == [False, True]
    finally:
        await first.redis.aclose()
        await second.redis.aclose()


async def test_a_refused_checkout_frees_the_message(prefix: str) -> None:
    first, second = shared(prefix), shared(prefix)
    try:
        assert await first.claim(KEY) is Claim.FREE
        await first.done(KEY, None)  # out of stock, Crypto Pay down…
        assert await second.claim(KEY) is Claim.FREE
    finally:
        await first.redis.aclose()
        await second.redis.aclose()


async def test_redis_down_falls_back_to_this_process() -> None:
    guard = SharedBuyGuard(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    try:
        assert await guard.claim(KEY) is Claim.FREE
        await guard.done(KEY, 9)
        assert await guard.claim(KEY) == 9
        assert await guard.retake(KEY, 9)
    finally:
        await guard.redis.aclose()


async def test_the_guard_follows_redis() -> None:
    assert type(buy_guard(None)) is BuyGuard
    client = Redis.from_url(REDIS_URL)
    assert isinstance(buy_guard(client), SharedBuyGuard)
    await client.aclose()


async def test_double_tap_reaching_two_replicas_places_one_order(
    shop: Shop, prefix: str, redis: Redis
) -> None:
    replica_b = create_dispatcher(shop.ctx)
    replicas: list[Dispatcher] = [shop.dp, replica_b]
    for dp in replicas:
        dp["buy_guard"] = shared(prefix)
    try:
        message_id = next_id()
        data = ProductCard(action=ProductAction.BUY, sku="multi", qty=1)
        taps = [shop.callback(data, message_id=message_id) for _ in replicas]
        await asyncio.gather(
            *(dp.feed_update(shop.bot, tap) for dp, tap in zip(replicas, taps, strict=True))
        )
        (order,) = await shop.orders()
        assert len(shop.cp.calls_of("createInvoice")) == 1
        answers = [a.text for tap in taps for a in shop.answers_to(tap)]
        assert len(answers) == 2  # both taps answered
        assert order.id is not None
        assert any(text in (t.PLACING, t.already_placed(order.id)) for text in answers)

        # Cancelled, the card shown again on that message: Buy there is a new purchase.
        await shop.press(
            OrderButton(action=OrderAction.CANCEL, order_id=order.id), message_id=message_id
        )
        again = shop.callback(data, message_id=message_id)
        await replica_b.feed_update(shop.bot, again)
        statuses = sorted(o.status for o in await shop.orders())
        assert statuses == sorted([OrderStatus.CANCELLED, OrderStatus.PENDING])
    finally:
        for dp in replicas:
            await dp["buy_guard"].redis.aclose()


async def test_a_key_naming_someone_elses_order_does_not_block_a_buyer(
    shop: Shop, prefix: str, redis: Redis
) -> None:
    """A key left in Redis by another database (a reset, a shared Redis) names an order that
    is not this buyer's: the tap places the buyer's own order."""
    guard = shared(prefix)
    shop.dp["buy_guard"] = guard
    try:
        data = ProductCard(action=ProductAction.BUY, sku="multi", qty=1)
        await shop.dp.feed_update(shop.bot, shop.callback(data, user=BOB))
        (bobs,) = await shop.orders()
        assert bobs.id is not None and bobs.status == OrderStatus.PENDING
        message_id = next_id()
        await redis.set(guard._key((ALICE, message_id)), str(bobs.id))
        tap = shop.callback(data, user=ALICE, message_id=message_id)
        await shop.dp.feed_update(shop.bot, tap)
        assert len(await shop.orders()) == 2, [a.text for a in shop.answers_to(tap)]
    finally:
        await guard.redis.aclose()


async def test_taps_on_one_message_take_turns_and_leave_nothing_behind() -> None:
    """A tap arriving while another waits queues behind it (not beside it, on a fresh
    lock); once every tap is done or cancelled, the guard keeps no lock for the message."""
    guard = BuyGuard()
    inside: list[str] = []
    overlaps: list[list[str]] = []
    release = {name: asyncio.Event() for name in "abc"}

    async def tap(name: str) -> None:
        async with guard.turn(KEY):
            inside.append(name)
            if len(inside) > 1:
                overlaps.append(list(inside))
            await release[name].wait()
            inside.remove(name)

    a = asyncio.create_task(tap("a"))
    await asyncio.sleep(0)
    b = asyncio.create_task(tap("b"))  # waits for a
    await asyncio.sleep(0)
    release["a"].set()
    await a
    c = asyncio.create_task(tap("c"))  # a is gone, b is waking: c must wait for b
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert inside == ["b"]
    release["b"].set()
    release["c"].set()
    await asyncio.gather(b, c)
    assert overlaps == []
    assert guard.turns == {}

    holder = asyncio.create_task(tap("a"))
    release["a"].clear()
    await asyncio.sleep(0)
    waiter = asyncio.create_task(tap("b"))
    await asyncio.sleep(0)
    waiter.cancel()
    release["a"].set()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert guard.turns == {}
