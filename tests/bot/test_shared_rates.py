"""Rates shared between replicas through a real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from bot.runtime.shared_rates import RatesRefresher
from bot.sandbox.cryptopay import FakeCryptoPay
from payments import CryptoPayClient, ExchangeRateCache, RatesSnapshot


async def test_second_replica_adopts_the_table_without_calling_crypto_pay(redis):
    key = f"test:rates:{uuid.uuid4().hex}"
    async with FakeCryptoPay(token="1:tok") as cp:
        clients = [CryptoPayClient("1:tok", cp.base_url) for _ in range(2)]
        try:
            caches = [ExchangeRateCache(c, ttl_seconds=60) for c in clients]
            first, second = (RatesRefresher(cache, 60, redis, key=key) for cache in caches)
            await first.refresh()
            assert len(cp.calls_of("getExchangeRates")) == 1
            await second.refresh()
            assert len(cp.calls_of("getExchangeRates")) == 1  # adopted from Redis
            assert not caches[1].is_stale(60)
            one = Decimal(1)
            assert caches[1].convert(one, "USDT", "USD") == caches[0].convert(one, "USDT", "USD")
            assert await redis.ttl(key) > 0
        finally:
            for c in clients:
                await c.aclose()
            await redis.delete(key)


async def test_malformed_or_missing_shared_table_means_a_fetch(redis):
    key = f"test:rates:{uuid.uuid4().hex}"
    await redis.set(key, b"{not json", ex=60)
    async with FakeCryptoPay(token="1:tok") as cp:
        client = CryptoPayClient("1:tok", cp.base_url)
        try:
            cache = ExchangeRateCache(client, ttl_seconds=60)
            await RatesRefresher(cache, 60, redis, key=key).refresh()
            assert len(cp.calls_of("getExchangeRates")) == 1
            assert not cache.is_stale(60)
            assert b"fetched_at" in (await redis.get(key) or b"")  # replaced by a good table
        finally:
            await client.aclose()
            await redis.delete(key)


async def test_without_redis_each_process_fetches():
    async with FakeCryptoPay(token="1:tok") as cp:
        client = CryptoPayClient("1:tok", cp.base_url)
        try:
            cache = ExchangeRateCache(client, ttl_seconds=60)
            refresher = RatesRefresher(cache, 60, None)
            await refresher.refresh()
            await refresher.refresh()
            assert len(cp.calls_of("getExchangeRates")) == 2
        finally:
            await client.aclose()


async def test_a_shared_table_older_than_the_interval_means_a_fetch(redis):
    key = f"test:rates:{uuid.uuid4().hex}"
    async with FakeCryptoPay(token="1:tok") as cp:
        clients = [CryptoPayClient("1:tok", cp.base_url) for _ in range(2)]
        try:
            caches = [ExchangeRateCache(c, ttl_seconds=60) for c in clients]
            await RatesRefresher(caches[0], 60, redis, key=key).refresh()
            stored = RatesSnapshot.model_validate_json(await redis.get(key) or b"")
            old = stored.model_copy(update={"fetched_at": stored.fetched_at - timedelta(minutes=5)})
            await redis.set(key, old.model_dump_json(), ex=600)
            await RatesRefresher(caches[1], 60, redis, key=key).refresh()
            assert len(cp.calls_of("getExchangeRates")) == 2  # the old table was not adopted
            assert not caches[1].is_stale(60)
        finally:
            for c in clients:
                await c.aclose()
            await redis.delete(key)
