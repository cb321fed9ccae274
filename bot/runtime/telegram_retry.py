"""Bot API calls that ride out flood control and brief outages (PRODUCT.md §5, promise 8)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import Response, TelegramMethod

log = logging.getLogger("bot.telegram")

MAX_RETRY_AFTER = 10.0
IDEMPOTENT = frozenset(
    {
        "getMe",
        "getUpdates",
        "answerCallbackQuery",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
        "deleteMessage",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "setMyCommands",
        "getFile",
    }
)


class RetryMiddleware(BaseRequestMiddleware):
    """429: wait a short `retry_after` and try again (Telegram did nothing, so it is safe).
    5xx/network: a short backoff, a few times, but only for calls that are safe to repeat — a
    send that failed with a 5xx may still have been delivered, so it is not blindly re-sent
    (the outbox reschedules its own deliveries; an interactive reply gets the error handler).
    """

    def __init__(self, attempts: int = 3, base_delay: float = 0.5) -> None:
        self.attempts = attempts
        self.base_delay = base_delay

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt >= self.attempts or error.retry_after > MAX_RETRY_AFTER:
                    raise
                log.warning(
                    "Telegram flood control: waiting",
                    extra={"method": method.__api_method__, "retry_after": error.retry_after},
                )
                await asyncio.sleep(error.retry_after)
            except (TelegramServerError, TelegramNetworkError) as error:
                if attempt >= self.attempts or method.__api_method__ not in IDEMPOTENT:
                    raise
                delay = self.base_delay * 2 ** (attempt - 1) * (0.5 + random.random())
                log.warning(
                    "Telegram call failed, retrying",
                    extra={"method": method.__api_method__, "error": type(error).__name__},
                )
                await asyncio.sleep(delay)
