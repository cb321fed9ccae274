"""The broadcast runner: keeps each running broadcast fed into the outbox and its admin told.

Every TICK_SECONDS (or when woken) it takes the lease of the running broadcasts that are free
(one replica holds each; a replica that dies loses it after LEASE_SECONDS), tells this
replica's outbox worker which broadcasts' messages it may claim, enqueues the next page of
recipients of each when few are left pending, edits the progress message at most every
PROGRESS_SECONDS, and reports once a broadcast is done. Sending itself is the outbox's:
paced (after goods and notices), 403 recorded as blocked, 429 waited out, once per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from functools import partial

from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup

from bot.context import ShopContext
from bot.runtime.delivery import OutboxWorker
from bot.screens.broadcast import progress_text, report_text, stop_button
from bot.screens.messages import ADMIN
from bot.shop.notices import in_language_of
from storage import (
    Broadcast,
    BroadcastCounts,
    BroadcastStatus,
    OutboxDraft,
    broadcast_counts,
    enqueue,
    feed_broadcast,
    finish_broadcast,
    get_broadcast,
    lease_broadcasts,
    progress_turn,
    release_broadcasts,
)

log = logging.getLogger("bot.broadcast")

TICK_SECONDS = 1.0
LEASE_SECONDS = 15.0
PROGRESS_SECONDS = 3.0
STOP_SECONDS = 3.0


def page_sizes(per_second: float) -> tuple[int, int]:
    """(low, page): a page of recipients is enqueued when fewer than `low` messages of the
    broadcast are pending; about ten seconds of sending, so the outbox never runs dry
    between ticks and its claims never sort a whole audience."""
    low = max(200, int(per_second * 10))
    return low, 2 * low


class BroadcastRunner:
    def __init__(self, ctx: ShopContext, outbox: OutboxWorker) -> None:
        self.ctx = ctx
        self.outbox = outbox
        self.owner = outbox.worker_id
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="broadcasts")

    async def stop(self) -> None:
        self._stopping.set()
        self.ctx.broadcast_wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=STOP_SECONDS)
        self.outbox.broadcasts = frozenset()
        try:
            await release_broadcasts(self.ctx.db, self.owner)
        except Exception:
            log.warning("could not hand back the broadcasts; their leases will expire")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.ctx.broadcast_wakeup.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("broadcast round failed; retrying shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.broadcast_wakeup.wait(), TICK_SECONDS)

    async def tick(self) -> None:
        ctx = self.ctx
        now = ctx.clock()
        owned = await lease_broadcasts(
            ctx.db, self.owner, now, now + timedelta(seconds=LEASE_SECONDS)
        )
        ours = frozenset(b.id for b in owned if b.id is not None)
        if ours != self.outbox.broadcasts:
            self.outbox.broadcasts = ours
            ctx.outbox_wakeup.set()  # their messages may be claimed now
        if not owned:
            return
        low, page = page_sizes(ctx.pacer.per_second)
        for broadcast in owned:
            assert broadcast.id is not None
            if await feed_broadcast(ctx.db, broadcast.id, self.owner, low=low, page=page):
                ctx.outbox_wakeup.set()
        counts = await broadcast_counts(ctx.db, [b.id for b in owned if b.id is not None])
        for broadcast in owned:
            assert broadcast.id is not None
            if await finish_broadcast(ctx.db, broadcast.id, ctx.clock()):
                await self._report(broadcast.id)
            elif await progress_turn(ctx.db, broadcast.id, ctx.clock(), PROGRESS_SECONDS):
                await self._show_progress(broadcast, counts[broadcast.id])

    async def _show_progress(self, broadcast: Broadcast, counts: BroadcastCounts) -> None:
        assert broadcast.id is not None
        text = await in_language_of(
            self.ctx,
            broadcast.admin_chat_id,
            partial(progress_text, broadcast, counts, self.ctx.clock(), self.ctx.pacer.per_second),
        )
        await edit_progress(self.ctx, broadcast, text, stop_button(broadcast.id), progress=True)

    async def _report(self, broadcast_id: int) -> None:
        """The final report: the progress message becomes it, and it comes as a message of
        its own (a notification) through the outbox."""
        ctx = self.ctx
        broadcast = await get_broadcast(ctx.db, broadcast_id)
        if broadcast is None:
            return
        counts = (await broadcast_counts(ctx.db, [broadcast_id]))[broadcast_id]
        text = await in_language_of(
            ctx, broadcast.admin_chat_id, partial(report_text, broadcast, counts, ctx.clock())
        )
        log.info(
            "broadcast done",
            extra={
                "broadcast_id": broadcast_id,
                "delivered": counts.delivered,
                "blocked": counts.blocked,
                "failed": counts.failed,
            },
        )
        await edit_progress(ctx, broadcast, text, None)
        report = OutboxDraft(
            broadcast.admin_chat_id, text, kind=ADMIN, dedupe_key=f"broadcast:{broadcast_id}:done"
        )
        await enqueue(ctx.db, [report])
        ctx.outbox_wakeup.set()


async def edit_progress(
    ctx: ShopContext,
    broadcast: Broadcast,
    text: str,
    markup: InlineKeyboardMarkup | None,
    *,
    progress: bool = False,
) -> None:
    """Edit the broadcast's progress message, at Telegram's pace (a queued send: it takes
    its turn like the outbox's). A `progress` edit is dropped when the broadcast was stopped
    while it waited for its turn (Stop has shown the report there). Failing to edit is
    logged, never fatal."""
    if broadcast.progress_message_id is None or broadcast.id is None:
        return
    await ctx.pacer.turn(broadcast.admin_chat_id, priority=1)
    if progress:
        now = await get_broadcast(ctx.db, broadcast.id)
        if now is None or now.status != BroadcastStatus.RUNNING:
            return
    try:
        await ctx.bot.edit_message_text(
            text=text,
            chat_id=broadcast.admin_chat_id,
            message_id=broadcast.progress_message_id,
            reply_markup=markup,
        )
    except TelegramAPIError as error:
        if "not modified" not in error.message:
            log.warning("could not edit a broadcast's progress: %s", error.message)
