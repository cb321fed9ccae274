"""The tap throttle: a token bucket per shopper, in this process or shared through a real
Redis (127.0.0.1:6379) between replicas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.runtime.tap_throttle import SharedTapThrottle, TapThrottle, tap_throttle
from tests.bot.conftest import REDIS_URL

NOW = 1_800_000_000.0


async def passed(throttle: TapThrottle, user: int, now: float, taps: int) -> int:
    return sum([await throttle.allow(user, now) for _ in range(taps)])


async def test_a_burst_passes_then_one_tap_per_interval() -> None:
    throttle = TapThrottle(burst=6, per_second=0.5)
    assert await passed(throttle, 1, NOW, 40) == 6
    assert await passed(throttle, 1, NOW + 1.9, 5) == 0  # a token takes 2 s
    assert await passed(throttle, 1, NOW + 2.0, 5) == 1
    assert await passed(throttle, 2, NOW + 2.0, 5) == 5  # another shopper has their own
    assert await passed(throttle, 1, NOW + 1000, 40) == 6  # never more than the burst


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    name = f"test:taps:{uuid.uuid4().hex}"
    yield name
    keys = [key async for key in redis.scan_iter(f"{name}:*")]
    if keys:
        await redis.delete(*keys)


async def test_replicas_share_one_pace_through_redis(prefix: str) -> None:
    a = SharedTapThrottle(Redis.from_url(REDIS_URL, socket_timeout=2), prefix=prefix)
    b = SharedTapThrottle(Redis.from_url(REDIS_URL, socket_timeout=2), prefix=prefix)
    try:
        # 40 taps alternating between two replicas: the burst once, not once per replica.
        results = [await (a if n % 2 else b).allow(7, NOW) for n in range(40)]
        assert sum(results) == a.burst == 8
        assert await b.allow(8, NOW)  # another shopper
        assert not await a.allow(7, NOW + 0.9)
        assert await a.allow(7, NOW + 1.0)
        assert not await b.allow(7, NOW + 1.0)
    finally:
        await a.redis.aclose()
        await b.redis.aclose()


async def test_redis_down_falls_back_to_this_process() -> None:
    throttle = SharedTapThrottle(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    try:
        assert await passed(throttle, 7, NOW, 10) == throttle.burst == 8
    finally:
        await throttle.redis.aclose()


async def test_the_throttle_follows_redis() -> None:
    assert type(tap_throttle(None)) is TapThrottle
    client = Redis.from_url(REDIS_URL)
    assert isinstance(tap_throttle(client), SharedTapThrottle)
    await client.aclose()
