"""Customers as the use cases see them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.context import ShopContext
from bot.i18n import language_of
from storage import (
    Buyer,
    Customer,
    choose_language,
    customers_by_telegram_id,
    set_blocked,
    upsert_customer,
)

log = logging.getLogger("bot.customers")


async def remember(ctx: ShopContext, buyer: Buyer) -> Customer:
    return await upsert_customer(ctx.db, buyer.telegram_id, buyer.username, buyer.language)


async def set_language(ctx: ShopContext, buyer: Buyer, language: str) -> Customer:
    """The customer's /language choice, stored with them (it outlives restarts)."""
    return await choose_language(
        ctx.db, buyer.telegram_id, buyer.username, buyer.language, language
    )


async def languages_of(ctx: ShopContext, telegram_ids: Iterable[int]) -> dict[int, str]:
    """Each recipient's language (PRODUCT.md §3.2), for a message written now and sent later:
    their choice, else their Telegram language, else DEFAULT_LANGUAGE."""
    ids = list(telegram_ids)
    known = await customers_by_telegram_id(ctx.db, ids)
    default = ctx.settings.default_language
    return {
        i: language_of(c.chosen_language, c.language, default) if (c := known.get(i)) else default
        for i in ids
    }


async def mark_blocked(ctx: ShopContext, telegram_id: int) -> None:
    """A 403 from Telegram: the user blocked the bot. Recorded, never fatal."""
    try:
        await set_blocked(ctx.db, telegram_id, True)
    except Exception:
        log.exception("could not record that a user blocked the bot")
