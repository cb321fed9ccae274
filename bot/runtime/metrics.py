"""Prometheus metrics, on a registry of their own (one per app, so tests can build many)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import Response, TelegramMethod
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# What the database gauges are read from: (orders by status, outbox messages waiting).
GaugeReader = Callable[[], Awaitable[tuple[dict[str, int], int]]]


class Metrics:
    def __init__(self) -> None:
        # The database gauges' last read (a GROUP BY over all orders): see refresh_gauges.
        self._gauges_lock = asyncio.Lock()
        self._gauges_read_at: float | None = None
        self._gauges_reads = 0
        self._gauges_activity = 0.0
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.checkouts = Counter("shop_checkouts", "Checkouts by result", ["result"], registry=r)
        self.settlements = Counter(
            "shop_settlements",
            "Settle calls by path and outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.webhook_responses = Counter(
            "shop_cryptopay_webhook_responses", "Crypto Pay webhook answers", ["code"], registry=r
        )
        self.outbox_sent = Counter("shop_outbox_sent", "Outbox messages sent", registry=r)
        self.outbox_failures = Counter(
            "shop_outbox_failures", "Outbox send failures", ["kind"], registry=r
        )
        self.outbox_backlog = Gauge("shop_outbox_backlog", "Outbox messages waiting", registry=r)
        self.orders_by_status = Gauge("shop_orders", "Orders by status", ["status"], registry=r)
        self.refunds = Counter("shop_refunds", "Refunds by result", ["result"], registry=r)
        self.job_runs = Counter(
            "shop_job_runs", "Scheduled job runs", ["job", "result"], registry=r
        )
        self.cryptopay_latency = Histogram(
            "shop_cryptopay_call_seconds", "Crypto Pay call latency", ["method"], registry=r
        )
        self.cryptopay_errors = Counter(
            "shop_cryptopay_errors", "Crypto Pay call errors", ["method", "error"], registry=r
        )
        self.telegram_latency = Histogram(
            "shop_telegram_call_seconds", "Bot API call latency", ["method"], registry=r
        )
        self.telegram_errors = Counter(
            "shop_telegram_errors", "Bot API call errors", ["method", "error"], registry=r
        )

    def observe_cryptopay(self, method: str, seconds: float, error: str | None) -> None:
        self.cryptopay_latency.labels(method=method).observe(seconds)
        if error is not None:
            self.cryptopay_errors.labels(method=method, error=error).inc()

    async def refresh_gauges(
        self, read: GaugeReader, *, now: Callable[[], float], max_age: float
    ) -> bool:
        """Read the database gauges unless a read is at most `max_age` seconds old; scrapes
        arriving while a read runs wait for it and share it, so a burst costs one read.
        True when this call read the database. A failed read raises and caches nothing."""
        reads_before = self._gauges_reads
        async with self._gauges_lock:
            if self._gauges_reads != reads_before:
                return False  # a read finished while this scrape waited: it is fresh
            last = self._gauges_read_at
            activity = self._activity()
            fresh = last is not None and 0 <= now() - last < max_age
            if fresh and activity == self._gauges_activity:
                return False
            by_status, backlog = await read()
            for status, count in by_status.items():
                self.orders_by_status.labels(status=status).set(count)
            self.outbox_backlog.set(backlog)
            self._gauges_read_at = now()
            self._gauges_activity = activity
            self._gauges_reads += 1
            return True

    def _activity(self) -> float:
        """How much this process has done that can change the gauges (checkouts,
        settlements, refunds, messages sent, job runs): a scrape after any of it reads the
        database again even inside `max_age`, so a shop's own sale shows at once. Changes made
        by other replicas show within `max_age`."""
        counters = (self.checkouts, self.settlements, self.refunds, self.outbox_sent, self.job_runs)
        return sum(
            sample.value
            for counter in counters
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class TelegramMetrics(BaseRequestMiddleware):
    """Latency and errors of every Bot API call, by method."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        name = method.__api_method__
        started = time.perf_counter()
        try:
            return await make_request(bot, method)
        except Exception as error:
            self.metrics.telegram_errors.labels(method=name, error=type(error).__name__).inc()
            raise
        finally:
            self.metrics.telegram_latency.labels(method=name).observe(time.perf_counter() - started)
