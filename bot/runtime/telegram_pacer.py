"""Telegram's sending limits, kept in one object that every queued sender shares.

The Bot API allows a bot about 30 messages a second across all chats, one a second in a
private chat and 20 a minute in a group; past that it answers 429 with `retry_after`, and
its flood control is per bot. `TelegramPacer.turn(chat_id)` waits until a message to that
chat may go: first the chat's own pace, then a slot of the bot's global pace, granted in
priority order (a buyer's goods before an admin's notice). `flood_control` makes the chat
and the whole bot wait what Telegram asked for; `FloodControlObserver` calls it for every
429 the session sees, whoever made the call.

Queued senders (the outbox, a broadcast) take turns here; the direct reply to a user's own
tap does not (Telegram allows bursts there, and the user is waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod

PRIVATE_CHAT_INTERVAL = 1.0  # one message a second to one user
GROUP_CHAT_INTERVAL = 3.0  # 20 a minute to one group (chat ids below zero)
FORGET_CHATS_AT = 10_000  # past this many remembered chats, the idle ones are dropped


class TelegramPacer:
    """Paces queued sends to Telegram: the chat's pace, then the bot's global pace.

    `clock` is a monotonic clock in seconds (tests give one they can move); waits are
    computed from it and re-checked after each sleep.
    """

    def __init__(
        self, per_second: float = 30.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next_slot = 0.0  # when the next global slot opens
        self._chat_next: dict[int, float] = {}  # chat → when its next message may go
        self._chat_paused: dict[int, float] = {}  # chat → end of Telegram's retry_after
        # Waiters for a global slot: (priority, arrival, their wake-up event).
        self._queue: list[tuple[int, int, asyncio.Event]] = []
        self._arrivals = itertools.count()

    async def turn(self, chat_id: int, *, priority: int = 0) -> None:
        """Wait until a message to `chat_id` may be sent now (lower `priority` first)."""
        await self._chat_turn(chat_id)
        await self._global_turn(priority)

    def flood_control(self, retry_after: float, chat_id: int | None = None) -> None:
        """Telegram answered 429: the chat and the whole bot wait `retry_after` seconds."""
        until = self._clock() + retry_after
        if chat_id is not None:
            self._chat_paused[chat_id] = max(self._chat_paused.get(chat_id, 0.0), until)
        self._next_slot = max(self._next_slot, until)
        self._wake_first()

    def paused_for(self) -> float:
        """Seconds until the next global slot opens (0 when one is open now)."""
        return max(0.0, self._next_slot - self._clock())

    async def _chat_turn(self, chat_id: int) -> None:
        now = self._clock()
        interval = GROUP_CHAT_INTERVAL if chat_id < 0 else PRIVATE_CHAT_INTERVAL
        # Reserved before sleeping, so concurrent senders to one chat get successive slots.
        at = max(now, self._chat_next.get(chat_id, 0.0))
        self._chat_next[chat_id] = at + interval
        if len(self._chat_next) > FORGET_CHATS_AT:
            self._forget_idle_chats(now)
        while True:
            wait = max(at, self._chat_paused.get(chat_id, 0.0)) - self._clock()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _forget_idle_chats(self, now: float) -> None:
        for chats in (self._chat_next, self._chat_paused):
            for chat in [c for c, t in chats.items() if t <= now]:
                del chats[chat]

    async def _global_turn(self, priority: int) -> None:
        wake = asyncio.Event()
        ticket = (priority, next(self._arrivals), wake)
        heapq.heappush(self._queue, ticket)
        try:
            while True:
                wake.clear()
                timeout: float | None = None
                if self._queue[0] is ticket:
                    now = self._clock()
                    if now >= self._next_slot:
                        heapq.heappop(self._queue)
                        # Slots stay on their grid: a grant a few ms late (the loop was busy)
                        # does not push every later slot back. After a quiet spell the grid
                        # starts again from now (nothing is made up: no burst).
                        quiet = now - self._next_slot > self._interval
                        self._next_slot = (now if quiet else self._next_slot) + self._interval
                        self._wake_first()
                        return
                    timeout = self._next_slot - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
        except BaseException:
            if ticket in self._queue:
                self._queue.remove(ticket)
                heapq.heapify(self._queue)
                self._wake_first()
            raise

    def _wake_first(self) -> None:
        if self._queue:
            self._queue[0][2].set()


class FloodControlObserver(BaseRequestMiddleware):
    """Tells the pacer about every 429 Telegram answers (then lets the error go on), so the
    queued senders hold back even when the call that hit flood control was not theirs."""

    def __init__(self, pacer: TelegramPacer) -> None:
        self.pacer = pacer

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as error:
            chat = getattr(method, "chat_id", None)
            self.pacer.flood_control(error.retry_after, chat if isinstance(chat, int) else None)
            raise
