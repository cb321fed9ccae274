"""Customers as the use cases see them."""

from __future__ import annotations

import logging

from bot.context import ShopContext
from storage import Buyer, Customer, choose_language, set_blocked, upsert_customer

log = logging.getLogger("bot.customers")


async def remember(ctx: ShopContext, buyer: Buyer) -> Customer:
    return await upsert_customer(ctx.db, buyer.telegram_id, buyer.username, buyer.language)


async def set_language(ctx: ShopContext, buyer: Buyer, language: str) -> Customer:
    """The customer's /language choice, stored with them (it outlives restarts)."""
    return await choose_language(
        ctx.db, buyer.telegram_id, buyer.username, buyer.language, language
    )


async def mark_blocked(ctx: ShopContext, telegram_id: int) -> None:
    """A 403 from Telegram: the user blocked the bot. Recorded, never fatal."""
    try:
        await set_blocked(ctx.db, telegram_id, True)
    except Exception:
        log.exception("could not record that a user blocked the bot")
