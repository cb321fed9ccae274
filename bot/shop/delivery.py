"""The outbox worker: sends what settlements (and others) queued, until Telegram accepts it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from datetime import timedelta

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile

from bot.context import ShopContext
from bot.shop.customers import mark_blocked
from bot.shop.messages import ADMIN, GOODS, admin_notices
from bot.shop.outgoing import compose
from bot.texts import texts as t
from storage.models import OutboxMessage
from storage.outbox import (
    claim_due,
    enqueue,
    mark_failed,
    mark_sent,
    next_due_at,
    release_claims,
    reschedule,
)

log = logging.getLogger("bot.outbox")

SWEEP_SECONDS = 5.0
LEASE_SECONDS = 60.0
BATCH = 20
MAX_BACKOFF = 600.0


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** min(attempts, 10)) * (0.75 + random.random() / 2)


class OutboxWorker:
    def __init__(self, ctx: ShopContext) -> None:
        self.ctx = ctx
        # Stable across restarts of one replica (host + port), so a restarted process takes
        # back what its predecessor had claimed instead of waiting for the leases to expire.
        self.worker_id = f"{socket.gethostname()}:{ctx.settings.port}"[:64]
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        self._stopping.set()
        self.ctx.outbox_wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)

    async def _run(self) -> None:
        try:
            released = await release_claims(self.ctx.db, self.worker_id)
            if released:
                log.info("took back %d message(s) claimed before a restart", released)
        except Exception:
            log.exception("could not release old outbox claims; their leases will expire")
        while not self._stopping.is_set():
            self.ctx.outbox_wakeup.clear()
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox sweep failed; retrying shortly")
                sent = 0
            if sent:
                continue
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        timeout = SWEEP_SECONDS
        with contextlib.suppress(Exception):
            due = await next_due_at(self.ctx.db)
            if due is not None:
                timeout = max(0.05, min(timeout, (due - self.ctx.clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ctx.outbox_wakeup.wait(), timeout)

    async def drain_once(self) -> int:
        """Claim and send one batch; returns how many were claimed."""
        claimed = await claim_due(
            self.ctx.db, self.worker_id, self.ctx.clock(), limit=BATCH, lease_seconds=LEASE_SECONDS
        )
        for message in claimed:
            await self.deliver(message)
        return len(claimed)

    async def deliver(self, message: OutboxMessage) -> None:
        assert message.id is not None
        ctx = self.ctx
        extra = {"outbox_id": message.id, "order_id": message.order_id, "kind": message.kind}
        try:
            await self._send(message)
        except TelegramRetryAfter as error:
            when = ctx.clock() + timedelta(seconds=error.retry_after)
            await reschedule(ctx.db, message.id, when, f"429 retry_after={error.retry_after}")
            ctx.metrics.outbox_failures.labels(kind="429").inc()
            log.warning("Telegram flood control; delivery postponed", extra=extra)
        except TelegramForbiddenError as error:
            await mark_failed(ctx.db, message.id, f"403 {error.message}")
            await mark_blocked(ctx, message.chat_id)
            ctx.metrics.outbox_failures.labels(kind="403").inc()
            log.warning("recipient blocked the bot; message dropped", extra=extra)
            if message.kind == GOODS and message.order_id is not None:
                text = t.admin_buyer_blocked(message.order_id)
                await enqueue(
                    ctx.db, admin_notices(text, ctx.settings.admin_ids, message.order_id, "blocked")
                )
                ctx.outbox_wakeup.set()
        except (TelegramServerError, TelegramNetworkError) as error:
            when = ctx.clock() + timedelta(seconds=backoff(message.attempts))
            await reschedule(ctx.db, message.id, when, f"{type(error).__name__}: {error}")
            ctx.metrics.outbox_failures.labels(kind="retry").inc()
            log.warning(
                "delivery failed; will retry", extra={**extra, "attempts": message.attempts}
            )
        except TelegramBadRequest as error:
            await mark_failed(ctx.db, message.id, f"400 {error.message}")
            ctx.metrics.outbox_failures.labels(kind="400").inc()
            log.error("Telegram refused the message for good: %s", error.message, extra=extra)
        else:
            goods_of = message.order_id if message.kind == GOODS else None
            await mark_sent(ctx.db, message.id, deliver_order=goods_of)
            ctx.metrics.outbox_sent.inc()
            log.info("delivered", extra=extra)

    async def _send(self, message: OutboxMessage) -> None:
        bot = self.ctx.bot
        out = await compose(self.ctx, message)
        if out.document_data is not None:
            await bot.send_document(
                message.chat_id,
                BufferedInputFile(out.document_data, out.document_name or "goods.txt"),
                caption=out.text or None,
                reply_markup=out.reply_markup,
            )
        else:
            await bot.send_message(message.chat_id, out.text, reply_markup=out.reply_markup)


__all__ = ["ADMIN", "OutboxWorker"]
