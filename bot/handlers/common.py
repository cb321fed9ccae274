"""Small helpers the handlers share: who is asking, show a screen in place, list a shopper's
orders."""

from __future__ import annotations

import html
import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from bot.context import ShopContext
from bot.screens.catalog import Screen
from bot.screens.orders import orders_screen
from storage import Buyer

log = logging.getLogger("bot.handlers")


def buyer_of(user: User) -> Buyer:
    """The use cases' view of a Telegram user (they never see aiogram's types)."""
    return Buyer(user.id, user.username, user.language_code)


async def show(
    target: Message | CallbackQuery,
    screen: Screen | str,
    markup: InlineKeyboardMarkup | None = None,
) -> Message | None:
    """A command answers with a new message; a button edits the message it sits on.
    Returns the message that shows it (None when it already did)."""
    if isinstance(screen, Screen):
        text, markup, preview = screen.text, screen.markup, screen.preview
    else:
        text, preview = screen, None
    # Only a product photo turns the preview on; otherwise the bot's default (off) applies.
    extra: dict[str, Any] = {} if preview is None else {"link_preview_options": preview}
    if isinstance(target, Message):
        return await target.answer(text, reply_markup=markup, **extra)
    message = target.message
    if isinstance(message, Message):
        try:
            edited = await message.edit_text(text, reply_markup=markup, **extra)
            return edited if isinstance(edited, Message) else message
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return None
            log.debug("could not edit, sending anew: %s", error.message)
    return await target.bot.send_message(  # type: ignore[union-attr]
        target.from_user.id, text, reply_markup=markup, **extra
    )


async def show_orders(
    target: Message | CallbackQuery, ctx: ShopContext, user_id: int, before: int = 0
) -> None:
    await show(target, await orders_screen(ctx, user_id, before))


def alert_text(html_text: str) -> str:
    """A text of ours as an alert: alerts do not render HTML, and hold 200 characters."""
    return html.unescape(html_text.replace("<b>", "").replace("</b>", ""))[:200]
