"""What nobody else handled: stale buttons and unknown text get a polite answer."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.texts import texts as t

log = logging.getLogger("bot.fallback")


def build_router() -> Router:
    router = Router(name="fallback")

    @router.callback_query()
    async def stale_button(query: CallbackQuery) -> None:
        # An old keyboard, or data nobody's button sends (bot.callbacks refused its shape):
        # worth a line when debugging, never an error. Only the prefix and size are logged.
        data = query.data or ""
        log.debug(
            "button not understood: prefix %r, %d bytes",
            data.split(":", 1)[0][:8],
            len(data.encode()),
        )
        await query.answer(t.STALE_BUTTON, show_alert=True)

    @router.message()
    async def anything_else(message: Message, ctx: ShopContext) -> None:
        if message.chat.type != "private":
            return
        await message.answer(
            t.help_text(ctx.settings.support_contact), reply_markup=keyboards.main_menu()
        )

    return router
