"""Small helpers the handlers share: who is asking, show a screen in place, list a shopper's
orders."""

from __future__ import annotations

import html
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from bot.context import ShopContext
from bot.photos.card import CardPhoto, PhotoUnavailable, send_card_photo
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
    Returns the message that shows it (None when it already did).

    A photo card is a photo message with the card as its caption. A text message cannot
    become a photo message or back (editMessageMedia works on media only), so moving between
    a text screen and a photo card sends the new screen and deletes the old message; on a
    photo card, −/+ edit the caption."""
    photo = screen.photo if isinstance(screen, Screen) else None
    if isinstance(screen, Screen):
        text, markup, preview = screen.text, screen.markup, screen.preview
    else:
        text, preview = screen, None
    # Only a product photo turns the preview on; otherwise the bot's default (off) applies.
    extra: dict[str, Any] = {} if preview is None else {"link_preview_options": preview}
    bot = target.bot
    assert bot is not None
    if isinstance(target, Message):
        return await _send(bot, target.chat.id, text, markup, extra, photo)
    message = target.message
    if not isinstance(message, Message):  # too old to touch: a new message
        return await _send(bot, target.from_user.id, text, markup, extra, photo)
    on_photo = bool(message.photo)
    try:
        if on_photo and photo is not None:
            edited = await message.edit_caption(caption=text, reply_markup=markup)
            return edited if isinstance(edited, Message) else message
        if not on_photo and photo is None:
            edited = await message.edit_text(text, reply_markup=markup, **extra)
            return edited if isinstance(edited, Message) else message
    except TelegramBadRequest as error:
        if "message is not modified" in error.message:
            return None
        log.debug("could not edit, sending anew: %s", error.message)
    sent = await _send(bot, message.chat.id, text, markup, extra, photo)
    if on_photo or photo is not None:  # the new screen takes the old one's place
        await _delete_quietly(message)
    return sent


async def _send(
    bot: Bot,
    chat_id: int,
    text: str,
    markup: InlineKeyboardMarkup | None,
    extra: dict[str, Any],
    photo: CardPhoto | None,
) -> Message:
    if photo is not None:
        try:
            return await send_card_photo(bot, chat_id, photo, text, markup)
        except PhotoUnavailable:
            log.warning("photo of product %r cannot be sent; the card goes out as text", photo.sku)
    return await bot.send_message(chat_id, text, reply_markup=markup, **extra)


async def _delete_quietly(message: Message) -> None:
    """Telegram refuses to delete a message older than 48 hours: it then simply stays."""
    try:
        await message.delete()
    except TelegramBadRequest as error:
        log.debug("could not delete the old screen: %s", error.message)


async def show_orders(
    target: Message | CallbackQuery, ctx: ShopContext, user_id: int, before: int = 0
) -> None:
    await show(target, await orders_screen(ctx, user_id, before))


def alert_text(html_text: str) -> str:
    """A text of ours as an alert: alerts do not render HTML, and hold 200 characters."""
    return html.unescape(html_text.replace("<b>", "").replace("</b>", ""))[:200]
