"""Customers as the use cases see them."""

from __future__ import annotations

import logging

from aiogram.types import User

from bot.context import ShopContext
from storage.customers import set_blocked, upsert_customer
from storage.models import Customer

log = logging.getLogger("bot.customers")


async def remember(ctx: ShopContext, user: User) -> Customer:
    return await upsert_customer(ctx.db, user.id, user.username, user.language_code)


async def mark_blocked(ctx: ShopContext, telegram_id: int) -> None:
    """A 403 from Telegram: the user blocked the bot. Recorded, never fatal."""
    try:
        await set_blocked(ctx.db, telegram_id, True)
    except Exception:
        log.exception("could not record that a user blocked the bot")
