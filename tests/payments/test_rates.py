"""ExchangeRateCache: TTL, one shared in-flight fetch, stale fallback, conversion."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from payments import CryptoPayTransportError, ExchangeRate, ExchangeRateCache, RatesSnapshot


def rate(source: str, target: str, value: str, valid: bool = True) -> ExchangeRate:
    return ExchangeRate(source=source, target=target, rate=Decimal(value), is_valid=valid)


TABLE = [
    rate("TON", "USD", "4"),
    rate("BTC", "USD", "60000"),
    rate("USDT", "USD", "1"),
    rate("TON", "EUR", "3.5"),
    rate("USDT", "RUB", "90"),
    rate("ETH", "USD", "3000", valid=False),
]


class Source:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def get_exchange_rates(self) -> list[ExchangeRate]:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise CryptoPayTransportError(None, "TRANSPORT_ERROR", method="getExchangeRates")
        return list(TABLE)


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_ttl(source, clock):
    cache = ExchangeRateCache(source, ttl_seconds=60, clock=clock)
    assert cache.is_stale() and cache.age_seconds is None and cache.updated_at is None
    await cache.get_rates()
    await cache.get_rates()
    assert source.calls == 1
    clock.now += 59
    await cache.get_rates()
    assert source.calls == 1 and cache.age_seconds == 59 and not cache.is_stale()
    assert cache.is_stale(max_age=30)
    clock.now += 1
    await cache.get_rates()
    assert source.calls == 2 and cache.age_seconds == 0


async def test_only_valid_rates_are_used(source, clock):
    cache = ExchangeRateCache(source, 60, clock=clock)
    rates = await cache.get_rates()
    assert all(r.is_valid for r in rates) and len(rates) == 5
    assert cache.convert(Decimal(1), "ETH", "USD") is None


async def test_concurrent_callers_share_one_fetch(source, clock):
    source.gate = asyncio.Event()
    cache = ExchangeRateCache(source, 60, clock=clock)
    waiters = [asyncio.create_task(cache.get_rates()) for _ in range(20)]
    waiters.append(asyncio.create_task(cache.refresh()))  # type: ignore[arg-type]
    await source.started.wait()  # the fetch is in flight; every caller has asked by now
    assert source.calls == 1
    source.gate.set()
    results = await asyncio.gather(*waiters)
    assert source.calls == 1 and all(len(r) >= 5 for r in results[:-1])


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(source, clock):
    source.gate = asyncio.Event()
    cache = ExchangeRateCache(source, 60, clock=clock)
    first = asyncio.create_task(cache.get_rates())
    second = asyncio.create_task(cache.get_rates())
    await source.started.wait()
    first.cancel()
    source.gate.set()
    assert len(await second) == 5 and source.calls == 1


async def test_api_down_keeps_last_good_table_and_reports_stale(source, clock):
    cache = ExchangeRateCache(source, 60, clock=clock, retry_after_failure=10)
    await cache.refresh()
    source.fail = True
    clock.now += 120
    rates = await cache.get_rates()  # served stale, no exception
    assert len(rates) == 5 and cache.is_stale() and cache.age_seconds == 120
    assert isinstance(cache.last_error, CryptoPayTransportError)
    assert cache.convert(Decimal(2), "TON", "USD") == Decimal(8)
    await cache.get_rates()  # within retry_after_failure: no new request
    assert source.calls == 2
    with pytest.raises(CryptoPayTransportError):
        await cache.refresh()  # the scheduler sees the failure
    source.fail = False
    clock.now += 10
    await cache.get_rates()
    assert not cache.is_stale() and cache.last_error is None


async def test_first_fetch_failure_raises(source, clock):
    source.fail = True
    cache = ExchangeRateCache(source, 60, clock=clock)
    with pytest.raises(CryptoPayTransportError):
        await cache.get_rates()


async def test_conversion_direct_inverse_and_via_usd(source, clock):
    cache = ExchangeRateCache(source, 60, clock=clock)
    assert cache.convert(Decimal(1), "TON", "USD") is None  # no table yet
    await cache.refresh()
    assert cache.convert(Decimal("2.5"), "TON", "USD") == Decimal("10.0")
    assert cache.convert(Decimal(7), "EUR", "TON") == Decimal(2)  # inverse of TON->EUR
    assert cache.convert(Decimal(1), "BTC", "TON") == Decimal(15000)  # via USD
    assert cache.convert(Decimal(12), "usd", "ton") == Decimal(3)
    assert cache.convert(Decimal(5), "XAUT", "USD") is None
    assert cache.convert(Decimal(5), "RUB", "RUB") == Decimal(5)
    assert cache.convert(Decimal(90), "RUB", "USDT") == Decimal(1)


async def test_snapshot_round_trip_for_a_shared_store(source, clock):
    cache = ExchangeRateCache(source, 60, clock=clock)
    await cache.refresh()
    snapshot = cache.snapshot()
    assert snapshot is not None
    wire = snapshot.model_dump_json()
    other = ExchangeRateCache(Source(), 60, clock=clock)
    assert other.load(RatesSnapshot.model_validate_json(wire))
    assert other.convert(Decimal(1), "BTC", "TON") == Decimal(15000)
    assert other.updated_at == cache.updated_at and not other.is_stale()
    assert not other.load(RatesSnapshot.model_validate_json(wire))  # not newer: ignored
