"""The outbox worker: sends what settlements (and others) queued, until Telegram accepts it.

It sends concurrently at Telegram's pace (`ctx.pacer`): one lane per chat, so a chat gets
its messages one at a time and in id order, while different chats go side by side. Goods go
before admin notices (claimed first, and first in the pacer's queue). The notices queued
for one admin while their chat waits for its turn go out as one message.

Claims are short leases, renewed while held: a replica that dies delays what it held by one
lease (LEASE_SECONDS), and the others take it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
from collections import deque
from dataclasses import replace
from datetime import timedelta

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.messages import ADMIN_KINDS, BROADCAST, GOODS
from bot.screens.outgoing import BroadcastOver, Outgoing, compose
from bot.screens.texts import en_admin as ta
from bot.shop.customers import mark_blocked
from bot.shop.notices import admin_notices_each
from storage import (
    STOPPED,
    OutboxMessage,
    claim_due,
    enqueue,
    mark_failed,
    mark_sent,
    next_due_at,
    release_claims,
    renew_claims,
    reschedule,
)

log = logging.getLogger("bot.outbox")

SWEEP_SECONDS = 5.0
LEASE_SECONDS = 8.0
RENEW_SECONDS = 2.0  # a lease survives three missed renewals
MAX_HELD = 64  # claimed and not yet finished, at most (all of them are renewed)
CLAIM_AT_LEAST = 16  # while this many are held, a claim waits until room frees up
BATCH = 20
MAX_BACKOFF = 600.0
# A message that cannot be composed (its order is gone, a bug) is retried this many times,
# about an hour with the backoff, then dropped: it must not hold its chat's later messages.
MAX_COMPOSE_ATTEMPTS = 10
MAX_TEXT = 4096  # Telegram's limit for one message's text
MAX_JOINED_BUTTONS = 30  # of Telegram's 100 per message: a joined notice stays readable
STOP_SECONDS = 4.0
# Lower goes first: claims and the pacer's queue put admin notices after the buyers'
# messages, and broadcasts after everything else.
RANK: dict[str, int] = {str(kind): 1 for kind in ADMIN_KINDS} | {str(BROADCAST): 2}
# A broadcast's message that Telegram keeps failing (5xx, network) is counted as failed after
# this many tries instead of holding the broadcast open for hours of backoff.
BROADCAST_ATTEMPTS = 3
# Broadcast messages held at once: enough to keep Telegram's pace, few enough that room is
# always left for goods, which are then claimed the moment they are queued. Claimed again
# when BROADCAST_BATCH of them are done.
BROADCAST_BATCH = 8


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
        self._held: dict[int, OutboxMessage] = {}  # claimed, not finished
        self._queues: dict[int, deque[OutboxMessage]] = {}  # chat → its held messages
        self._lanes: dict[int, asyncio.Task[None]] = {}  # chat → the task sending to it
        self._sending: set[int] = set()  # chats with a Telegram call in flight
        # The broadcasts this replica holds (bot/runtime/broadcasts.py): only their messages
        # are claimed here.
        self.broadcasts: frozenset[int] = frozenset()
        per_second = ctx.pacer.per_second
        self._broadcast_cap = min(
            MAX_HELD - CLAIM_AT_LEAST, max(2 * BROADCAST_BATCH, math.ceil(per_second / 2))
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        self._stopping.set()
        self.ctx.outbox_wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=STOP_SECONDS + 1)

    async def _run(self) -> None:
        try:
            released = await release_claims(self.ctx.db, self.worker_id)
            if released:
                log.info("took back %d message(s) claimed before a restart", released)
        except Exception:
            log.exception("could not release old outbox claims; their leases will expire")
        renewer = asyncio.create_task(self._keep_leases(), name="outbox-leases")
        try:
            while not self._stopping.is_set():
                self.ctx.outbox_wakeup.clear()
                room = MAX_HELD - len(self._held)
                if self._held and room < CLAIM_AT_LEAST:
                    await self._wait_for_wakeup(SWEEP_SECONDS)  # a lane finishing wakes us
                    continue
                try:
                    claimed = await self._claim(room)
                except Exception:
                    log.exception("outbox sweep failed; retrying shortly")
                    claimed = 0
                if not claimed:
                    await self._sleep_until_due()
        finally:
            renewer.cancel()
            await self._wind_down()

    async def _wait_for_wakeup(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ctx.outbox_wakeup.wait(), timeout)

    def _broadcast_room(self) -> int:
        held = sum(1 for m in self._held.values() if m.broadcast_id is not None)
        return self._broadcast_cap - held

    def _claimable_broadcasts(self) -> frozenset[int]:
        """The broadcasts whose messages to claim now: none while enough of them are held."""
        return self.broadcasts if self._broadcast_room() >= BROADCAST_BATCH else frozenset()

    async def _sleep_until_due(self) -> None:
        timeout = SWEEP_SECONDS
        with contextlib.suppress(Exception):
            broadcasts = self._claimable_broadcasts()
            due = await next_due_at(self.ctx.db, self.ctx.clock(), broadcasts)
            if due is not None:
                timeout = max(0.05, min(timeout, (due - self.ctx.clock()).total_seconds()))
        await self._wait_for_wakeup(timeout)

    async def _wind_down(self) -> None:
        """Stopping: sends in flight finish (a cut-off send might reach the chat and then be
        sent again), the lanes waiting for their turn stop, and every unsent claim is handed
        back so another replica sends it at once."""
        for chat, lane in list(self._lanes.items()):
            if chat not in self._sending:
                lane.cancel()
        lanes = list(self._lanes.values())
        if lanes:
            await asyncio.wait(lanes, timeout=STOP_SECONDS)
        # Not the ones still in flight: sent again elsewhere, they might arrive twice.
        queued = [m.id for queue in self._queues.values() for m in queue if m.id is not None]
        try:
            await release_claims(self.ctx.db, self.worker_id, queued)
        except Exception:
            log.warning("could not hand back outbox claims; their leases will expire")

    async def drain_once(self) -> int:
        """Claim one batch and send it, waiting until every lane is done; returns how many
        were claimed."""
        claimed = await self._claim(BATCH)
        while self._lanes:
            await asyncio.wait(list(self._lanes.values()))
        return claimed

    async def _claim(self, limit: int) -> int:
        claimed = await claim_due(
            self.ctx.db,
            self.worker_id,
            self.ctx.clock(),
            limit=limit,
            lease_seconds=LEASE_SECONDS,
            rank=RANK,
            broadcasts=self._claimable_broadcasts(),
            broadcast_limit=max(0, self._broadcast_room()),
        )
        for message in claimed:  # in id order: each chat's queue stays in id order
            assert message.id is not None
            self._held[message.id] = message
            queue = self._queues.setdefault(message.chat_id, deque())
            # except that the chat's own messages go ahead of a broadcast's held for it
            if message.broadcast_id is None:
                ahead = next((i for i, m in enumerate(queue) if m.broadcast_id is not None), None)
                if ahead is not None:
                    queue.insert(ahead, message)
                    continue
            queue.append(message)
        for chat in dict.fromkeys(m.chat_id for m in claimed):  # lanes start in id order
            if chat not in self._lanes:
                self._lanes[chat] = asyncio.create_task(self._lane(chat), name=f"outbox:{chat}")
        return len(claimed)

    async def _keep_leases(self) -> None:
        """Renew the leases of everything held, every RENEW_SECONDS; a message whose lease
        was lost meanwhile (the database was out of reach for a whole lease, and another
        replica took it) is dropped here unless it is being sent."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            ids = set(self._held)
            if not ids:
                continue
            until = self.ctx.clock() + timedelta(seconds=LEASE_SECONDS)
            try:
                kept = await asyncio.wait_for(
                    renew_claims(self.ctx.db, self.worker_id, ids, until), RENEW_SECONDS
                )
            except Exception as error:
                log.warning("could not renew outbox leases (%s)", type(error).__name__)
                continue
            lost = [self._held[i] for i in ids - kept if i in self._held]
            for chat in {m.chat_id for m in lost}:
                # Its chat's later messages must not overtake it: hand them back too.
                queue = self._queues.get(chat)
                if not queue or not any(m in queue for m in lost):
                    continue  # being sent right now: its send decides
                rest = [m.id for m in queue if m.id is not None]
                queue.clear()
                for message_id in rest:
                    self._held.pop(message_id, None)
                log.warning("outbox lease lost; another worker has it", extra={"chat": chat})
                with contextlib.suppress(Exception):
                    await release_claims(self.ctx.db, self.worker_id, rest)

    async def _lane(self, chat_id: int) -> None:
        """Send the chat's held messages one at a time, in id order."""
        queue = self._queues[chat_id]
        only_broadcasts = True
        try:
            while queue and not self._stopping.is_set():
                only_broadcasts = only_broadcasts and queue[0].broadcast_id is not None
                priority = RANK.get(queue[0].kind, 0)
                await self.ctx.pacer.turn(chat_id, priority=priority)
                if not queue:  # its lease was lost while it waited
                    break
                self._sending.add(chat_id)
                try:
                    sent = await self._send_next(queue)
                finally:
                    self._sending.discard(chat_id)
                if not sent and queue:
                    # It will be retried later: the chat's later messages wait behind it.
                    rest = [m.id for m in queue if m.id is not None]
                    queue.clear()
                    for message_id in rest:
                        self._held.pop(message_id, None)
                    await release_claims(self.ctx.db, self.worker_id, rest)
        except Exception:
            # (the database, most likely) Its messages come back when their leases end.
            log.exception("outbox lane failed")
            for message in queue:
                self._held.pop(message.id or 0, None)
            queue.clear()
        finally:
            del self._lanes[chat_id]
            if not queue:
                del self._queues[chat_id]
            # A broadcast's lane wakes the claims only once a batch of them can be claimed.
            if not only_broadcasts or self._broadcast_room() >= BROADCAST_BATCH:
                self.ctx.outbox_wakeup.set()

    async def _send_next(self, queue: deque[OutboxMessage]) -> bool:
        """Send the head of the queue (with the admin notices right behind it, as one
        message); False when it is to be retried later."""
        batch = [queue.popleft()]
        try:
            try:
                out = await compose(self.ctx, batch[0])
                if batch[0].kind in ADMIN_KINDS:
                    out = await self._coalesce(queue, batch, out)
            except BroadcastOver:
                await mark_failed(self.ctx.db, [batch[0].id or 0], STOPPED)
                return True
            except Exception as error:
                # A message that cannot be made (yet) is retried later, like a 5xx, and
                # given up after MAX_COMPOSE_ATTEMPTS.
                log.exception(
                    "could not compose an outbox message", extra={"outbox_id": batch[0].id}
                )
                reason = f"compose: {type(error).__name__}"
                ids = [m.id for m in batch if m.id is not None]
                if batch[0].attempts >= MAX_COMPOSE_ATTEMPTS:
                    await mark_failed(self.ctx.db, ids, reason)
                    return True
                when = self.ctx.clock() + timedelta(seconds=backoff(batch[0].attempts))
                await reschedule(self.ctx.db, ids, when, reason)
                return False
            return await self.deliver(batch, out)
        finally:
            for message in batch:
                self._held.pop(message.id or 0, None)

    async def _coalesce(
        self, queue: deque[OutboxMessage], batch: list[OutboxMessage], out: Outgoing
    ) -> Outgoing:
        """Join the admin notices waiting behind `batch[0]` into its text, up to Telegram's
        length limit (what does not fit goes next time). Their buttons (Open order #12)
        are joined too, each notice's under the others'; a document is never joined."""
        if out.document_data is not None:
            return out
        text, rows = out.text, _rows(out)
        while queue and queue[0].kind in ADMIN_KINDS:
            try:
                more = await compose(self.ctx, queue[0])
            except Exception:  # it fails on its own turn, not this one's
                break
            joined, joined_rows = f"{text}\n\n{more.text}", rows + _rows(more)
            if (
                more.document_data is not None
                or len(joined) > MAX_TEXT
                or sum(map(len, joined_rows)) > MAX_JOINED_BUTTONS
            ):
                break
            batch.append(queue.popleft())
            text, rows = joined, joined_rows
        return Outgoing(text, InlineKeyboardMarkup(inline_keyboard=rows) if rows else None)

    async def deliver(self, batch: list[OutboxMessage], out: Outgoing) -> bool:
        """Send one Telegram message carrying `batch` and record the outcome; True when it
        was sent or given up for good, False when it is to be retried later."""
        ctx = self.ctx
        head = batch[0]
        ids = [m.id for m in batch if m.id is not None]
        extra: dict[str, object] = {
            "outbox_id": ids[0] if len(ids) == 1 else ids,
            "order_id": head.order_id,
            "kind": head.kind,
        }
        try:
            await self._send(head.chat_id, out)
        except TelegramRetryAfter as error:
            ctx.pacer.flood_control(error.retry_after, head.chat_id)
            when = ctx.clock() + timedelta(seconds=error.retry_after)
            await reschedule(ctx.db, ids, when, f"429 retry_after={error.retry_after}")
            ctx.metrics.outbox_failures.labels(kind="429").inc()
            log.warning("Telegram flood control; delivery postponed", extra=extra)
            return False
        except TelegramForbiddenError as error:
            await mark_failed(ctx.db, ids, f"403 {error.message}")
            await mark_blocked(ctx, head.chat_id)
            ctx.metrics.outbox_failures.labels(kind="403").inc()
            log.warning("recipient blocked the bot; message dropped", extra=extra)
            if head.kind == GOODS and head.order_id is not None:
                order_id = head.order_id
                button = keyboards.admin_open_order(order_id).model_dump_json(exclude_none=True)
                notices = await admin_notices_each(
                    ctx, lambda: ta.buyer_blocked_alert(order_id), order_id, "blocked"
                )
                await enqueue(ctx.db, [replace(n, reply_markup=button) for n in notices])
                ctx.outbox_wakeup.set()
            return True
        except (TelegramServerError, TelegramNetworkError) as error:
            if head.kind == BROADCAST and head.attempts >= BROADCAST_ATTEMPTS:
                await mark_failed(ctx.db, ids, f"{type(error).__name__}: {error}")
                ctx.metrics.outbox_failures.labels(kind="retry").inc()
                return True
            when = ctx.clock() + timedelta(seconds=backoff(head.attempts))
            await reschedule(ctx.db, ids, when, f"{type(error).__name__}: {error}")
            ctx.metrics.outbox_failures.labels(kind="retry").inc()
            log.warning("delivery failed; will retry", extra={**extra, "attempts": head.attempts})
            return False
        except TelegramBadRequest as error:
            if out.edit_message_id is not None:
                # Already showing this (the buyer's own tap edited it), or deleted, or too
                # old to edit: either way done, not retried.
                if "not modified" in error.message:
                    await mark_sent(ctx.db, *ids)
                else:
                    await mark_failed(ctx.db, ids, f"400 {error.message}")
                log.info("order message not edited: %s", error.message, extra=extra)
                return True
            await mark_failed(ctx.db, ids, f"400 {error.message}")
            ctx.metrics.outbox_failures.labels(kind="400").inc()
            log.error("Telegram refused the message for good: %s", error.message, extra=extra)
            return True
        goods_of = head.order_id if head.kind == GOODS and len(batch) == 1 else None
        marked = await mark_sent(ctx.db, *ids, deliver_order=goods_of)
        ctx.metrics.outbox_sent.inc(marked)
        log.info("delivered", extra=extra)
        return True

    async def _send(self, chat_id: int, out: Outgoing) -> None:
        bot = self.ctx.bot
        if out.edit_message_id is not None:
            await bot.edit_message_text(
                text=out.text,
                chat_id=chat_id,
                message_id=out.edit_message_id,
                reply_markup=out.reply_markup,
            )
        elif out.photo is not None:
            await bot.send_photo(
                chat_id, out.photo, caption=out.text or None, reply_markup=out.reply_markup
            )
        elif out.document_data is not None:
            await bot.send_document(
                chat_id,
                BufferedInputFile(out.document_data, out.document_name or "goods.txt"),
                caption=out.text or None,
                reply_markup=out.reply_markup,
            )
        else:
            await bot.send_message(chat_id, out.text, reply_markup=out.reply_markup)


def _rows(out: Outgoing) -> list[list[InlineKeyboardButton]]:
    return list(out.reply_markup.inline_keyboard) if out.reply_markup is not None else []


__all__ = ["OutboxWorker"]
