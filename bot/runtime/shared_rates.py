"""Exchange rates shared between replicas through Redis (REDIS_URL), or kept per process."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from payments import ExchangeRateCache, RatesSnapshot

log = logging.getLogger("bot.rates")

REDIS_KEY = "shop:rates:v1"


class RatesRefresher:
    """The rates job: one Crypto Pay fetch per interval for the whole deployment.

    Without Redis every process fetches for itself. With Redis a replica first adopts a table
    that another replica stored less than an interval ago and fetches only when there is none.
    """

    def __init__(
        self,
        rates: ExchangeRateCache,
        interval: float,
        redis: Redis | None,
        *,
        key: str = REDIS_KEY,
    ) -> None:
        self.key = key
        self.rates = rates
        self.interval = interval
        self.redis = redis

    async def refresh(self) -> None:
        if self.redis is not None and await self._adopt_shared():
            return
        snapshot = await self.rates.refresh()
        if self.redis is not None:
            try:
                await self.redis.set(
                    self.key,
                    snapshot.model_dump_json().encode(),
                    ex=max(1, int(self.interval * 10)),
                )
            except Exception as error:  # Redis down: this replica still has its own table
                log.warning("could not share the rates through Redis: %s", error)

    async def _adopt_shared(self) -> bool:
        try:
            raw = await self.redis.get(self.key) if self.redis is not None else None
        except Exception as error:
            log.warning("could not read the shared rates from Redis: %s", error)
            return False
        if raw is None:
            return False
        try:
            snapshot = RatesSnapshot.model_validate_json(raw)
        except ValueError:
            log.warning("ignoring a malformed rates table in Redis")
            return False
        self.rates.load(snapshot)
        return not self.rates.is_stale(self.interval)
