"""``ExchangeRateCache``: Crypto Pay exchange rates with a TTL, shared fetches and staleness.

The state is one :class:`RatesSnapshot` (rates + fetch time, JSON-serialisable), so a variant
shared through Redis only needs ``snapshot()`` / ``load()`` around the same object.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from .models import ExchangeRate, UtcDatetime

__all__ = ["ExchangeRateCache", "RatesSnapshot"]

log = logging.getLogger("payments.cryptopay.rates")

_PIVOT = "USD"


class _RatesSource(Protocol):
    async def get_exchange_rates(self) -> list[ExchangeRate]: ...


class RatesSnapshot(BaseModel):
    """The rates table as fetched at ``fetched_at`` (what a shared store would hold)."""

    model_config = ConfigDict(frozen=True)

    rates: tuple[ExchangeRate, ...]
    fetched_at: UtcDatetime


class ExchangeRateCache:
    """Caches ``getExchangeRates`` for ``ttl_seconds``.

    * :meth:`get_rates` fetches when the table is empty or expired; concurrent callers share
      one in-flight request. When the API fails it serves the last good table (now stale) and
      tries again at most every ``retry_after_failure`` seconds.
    * :meth:`refresh` fetches now (for the scheduler) and raises on failure, keeping the table.
    * :meth:`convert` works on the current table, stale or not: check :meth:`is_stale`.

    Only rates with ``is_valid`` are used. ``clock`` returns wall-clock seconds (epoch).
    """

    def __init__(
        self,
        client: _RatesSource,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        retry_after_failure: float | None = None,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be > 0")
        self._client = client
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._retry_after_failure = (
            min(self.ttl_seconds, 10.0) if retry_after_failure is None else retry_after_failure
        )
        self._snapshot: RatesSnapshot | None = None
        self._table: dict[tuple[str, str], Decimal] = {}
        self._inflight: asyncio.Future[RatesSnapshot] | None = None
        self._failed_at: float | None = None
        self.last_error: BaseException | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def updated_at(self) -> datetime | None:
        return self._snapshot.fetched_at if self._snapshot else None

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the table was fetched; ``None`` when there is none."""
        if self._snapshot is None:
            return None
        return max(0.0, self._clock() - self._snapshot.fetched_at.timestamp())

    def is_stale(self, max_age: float | None = None) -> bool:
        """True when there is no table or it is older than ``max_age`` (default: the TTL)."""
        age = self.age_seconds
        return age is None or age >= (self.ttl_seconds if max_age is None else max_age)

    def snapshot(self) -> RatesSnapshot | None:
        return self._snapshot

    def load(self, snapshot: RatesSnapshot) -> bool:
        """Adopt ``snapshot`` (e.g. read from a shared store) unless ours is newer."""
        if self._snapshot is not None and self._snapshot.fetched_at >= snapshot.fetched_at:
            return False
        self._snapshot = snapshot
        self._table = {
            (r.source.upper(), r.target.upper()): r.rate
            for r in snapshot.rates
            if r.is_valid and r.rate > 0
        }
        return True

    # -- fetching -------------------------------------------------------------------------------

    async def refresh(self) -> RatesSnapshot:
        """Fetch now (joining a fetch already running); raise on failure, keeping the table."""
        task = self._inflight
        if task is None:
            task = asyncio.ensure_future(self._fetch())
            self._inflight = task
            task.add_done_callback(self._fetch_done)
        return await asyncio.shield(task)

    async def get_rates(self) -> Sequence[ExchangeRate]:
        """The valid rates, fetched first when missing or older than the TTL."""
        if self.is_stale():
            recently_failed = (
                self._failed_at is not None
                and self._clock() - self._failed_at < self._retry_after_failure
            )
            if self._snapshot is None or not recently_failed:
                try:
                    await self.refresh()
                except Exception:
                    if self._snapshot is None:
                        raise
                    log.warning(
                        "exchange rates refresh failed; serving a table %.0f s old",
                        self.age_seconds or 0.0,
                    )
        snapshot = self._snapshot
        assert snapshot is not None
        return [r for r in snapshot.rates if r.is_valid]

    async def _fetch(self) -> RatesSnapshot:
        try:
            rates = await self._client.get_exchange_rates()
        except Exception as exc:
            self._failed_at = self._clock()
            self.last_error = exc
            raise
        snapshot = RatesSnapshot(
            rates=tuple(rates), fetched_at=datetime.fromtimestamp(self._clock(), UTC)
        )
        self._snapshot = None  # a fresh fetch always wins over a loaded snapshot
        self.load(snapshot)
        self._failed_at = None
        self.last_error = None
        return snapshot

    def _fetch_done(self, task: asyncio.Future[RatesSnapshot]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # mark retrieved even when every waiter went away

    # -- conversion -----------------------------------------------------------------------------

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal | None:
        """``amount`` of ``source`` expressed in ``target``; ``None`` when no rate is known.

        Multiplies first and divides once, so an inverse pair loses no precision.
        """
        factor = self._factor(source.upper(), target.upper())
        if factor is None:
            return None
        numerator, denominator = factor
        return amount * numerator / denominator

    def _factor(self, src: str, dst: str) -> tuple[Decimal, Decimal] | None:
        direct = self._pair(src, dst)
        if direct is not None:
            return direct
        src_usd, dst_usd = self._pair(src, _PIVOT), self._pair(dst, _PIVOT)
        if src_usd is None or dst_usd is None:
            return None
        return src_usd[0] * dst_usd[1], src_usd[1] * dst_usd[0]

    def _pair(self, src: str, dst: str) -> tuple[Decimal, Decimal] | None:
        """``(numerator, denominator)`` of the src->dst rate from one table entry."""
        if src == dst:
            return Decimal(1), Decimal(1)
        rate = self._table.get((src, dst))
        if rate is not None:
            return rate, Decimal(1)
        inverse = self._table.get((dst, src))
        if inverse is not None:
            return Decimal(1), inverse
        return None
