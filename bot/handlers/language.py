"""/language and Help's Language button: the customer picks English or Russian."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import LanguagePick
from bot.context import ShopContext
from bot.handlers.common import buyer_of, show
from bot.i18n import LANGUAGES, use_language
from bot.runtime.languages import LanguageChoices
from bot.screens import keyboards
from bot.screens.texts import texts as t
from bot.shop.customers import set_language


def build_router() -> Router:
    router = Router(name="language")

    @router.message(Command("language"))
    async def language_command(message: Message) -> None:
        await message.answer(t.CHOOSE_LANGUAGE, reply_markup=keyboards.languages())

    @router.callback_query(LanguagePick.filter(F.code == ""))
    async def choose(query: CallbackQuery) -> None:
        await show(query, t.CHOOSE_LANGUAGE, keyboards.languages())
        await query.answer()

    @router.callback_query(LanguagePick.filter(F.code.in_(LANGUAGES)))
    async def pick(
        query: CallbackQuery,
        callback_data: LanguagePick,
        ctx: ShopContext,
        languages: LanguageChoices,
    ) -> None:
        code = callback_data.code
        await set_language(ctx, buyer_of(query.from_user), code)
        await languages.remember(query.from_user.id, code)
        with use_language(code):  # the answer is already in the new language
            await show(
                query,
                f"{t.LANGUAGE_SET}\n\n{t.help_text(ctx.settings.support_contact)}",
                keyboards.help_menu(),
            )
            await query.answer()

    return router
