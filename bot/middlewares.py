"""Dispatcher-wide middlewares: in-flight tracking for a clean shutdown, and error handling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import ErrorEvent, TelegramObject, Update

from bot.logs import log_context
from bot.screens.texts import texts as t
from bot.shop.customers import mark_blocked

log = logging.getLogger("bot.updates")


class InFlightMiddleware(BaseMiddleware):
    """Counts updates being handled, so shutdown can wait for them (aiogram does not)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            with log_context(update_id=getattr(event, "update_id", None)):
                return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("shutdown: %d update(s) still running, giving up on them", self._count)
            return False
        return True


def _user_id(update: Update) -> int | None:
    if update.message and update.message.from_user:
        return update.message.from_user.id
    if update.callback_query:
        return update.callback_query.from_user.id
    return None


def install_error_handler(dp: Dispatcher) -> None:
    @dp.errors()
    async def on_error(event: ErrorEvent, **data: Any) -> bool:
        update, error = event.update, event.exception
        if isinstance(error, TelegramBadRequest) and "message is not modified" in error.message:
            if update.callback_query:
                await _safe_answer(update, None)
            return True
        if isinstance(error, TelegramForbiddenError):
            user_id = _user_id(update)
            ctx = data.get("ctx")
            if user_id is not None and ctx is not None:
                await mark_blocked(ctx, user_id)
            log.info("user blocked the bot", extra={"update_id": update.update_id})
            return True
        if isinstance(error, TelegramRetryAfter):
            log.warning(
                "Telegram flood control while handling an update",
                extra={"update_id": update.update_id, "retry_after": error.retry_after},
            )
            return True
        log.error(
            "unexpected error while handling an update",
            exc_info=error,
            extra={"update_id": update.update_id},
        )
        await _apologise(update)
        return True


async def _safe_answer(update: Update, text: str | None) -> None:
    try:
        if update.callback_query:
            await update.callback_query.answer(text)
    except Exception:  # the query may already be answered or too old
        log.debug("could not answer the callback query", exc_info=True)


async def _apologise(update: Update) -> None:
    try:
        if update.callback_query:
            await update.callback_query.answer(t.SOMETHING_WRONG, show_alert=True)
        elif update.message:
            await update.message.answer(t.SOMETHING_WRONG)
    except Exception:
        log.debug("could not send the apology", exc_info=True)
