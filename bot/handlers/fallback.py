"""What nobody else handled: stale buttons and unknown text get a polite answer."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.texts import texts as t


def build_router() -> Router:
    router = Router(name="fallback")

    @router.callback_query()
    async def stale_button(query: CallbackQuery) -> None:
        await query.answer(t.STALE_BUTTON, show_alert=True)

    @router.message()
    async def anything_else(message: Message, ctx: ShopContext) -> None:
        if message.chat.type != "private":
            return
        await message.answer(
            t.help_text(ctx.settings.support_contact), reply_markup=keyboards.main_menu()
        )

    return router
