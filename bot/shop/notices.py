"""Messages written now and sent later by the outbox, each in its recipient's language."""

from __future__ import annotations

from collections.abc import Callable

from bot.context import ShopContext
from bot.i18n import use_language
from bot.screens.messages import admin_notices
from bot.shop.customers import languages_of
from storage import OutboxDraft


async def admin_notices_each(
    ctx: ShopContext, render: Callable[[], str], order_id: int, tag: str
) -> list[OutboxDraft]:
    """`admin_notices`, the text rendered once per admin in that admin's language."""
    languages = await languages_of(ctx, ctx.settings.admin_ids)
    drafts: list[OutboxDraft] = []
    for admin in sorted(ctx.settings.admin_ids):
        with use_language(languages[admin]):
            drafts += admin_notices(render(), [admin], order_id, tag)
    return drafts


async def in_language_of(ctx: ShopContext, telegram_id: int, render: Callable[[], str]) -> str:
    """A text for one recipient, in their language."""
    language = (await languages_of(ctx, [telegram_id]))[telegram_id]
    with use_language(language):
        return render()
