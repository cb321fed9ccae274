"""The chat's ways into the storefront, when WEBAPP_URL is set: the bot's menu button and an
**Open shop** button under /start. Unset, nothing here changes the chat."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonWebApp,
    WebAppInfo,
)

from bot.config import Settings
from bot.i18n import use_language
from bot.screens.texts import en_webapp as tw

log = logging.getLogger("bot.webapp")


def storefront_url(settings: Settings) -> str | None:
    return f"{settings.webapp_url}/app/" if settings.webapp_url else None


def with_open_shop(markup: InlineKeyboardMarkup, settings: Settings) -> InlineKeyboardMarkup:
    """`markup` with an Open shop row on top (a web_app button), when the storefront is on."""
    url = storefront_url(settings)
    if url is None:
        return markup
    row = [InlineKeyboardButton(text=tw.WEBAPP_BUTTON, web_app=WebAppInfo(url=url))]
    return InlineKeyboardMarkup(inline_keyboard=[row, *markup.inline_keyboard])


async def set_menu_button(bot: Bot, settings: Settings) -> bool:
    """The bot's menu button opens the storefront (for every chat; in DEFAULT_LANGUAGE, as
    Telegram keeps one default). Returns whether it was set."""
    url = storefront_url(settings)
    if url is None:
        return False
    with use_language(settings.default_language):
        button = MenuButtonWebApp(text=tw.WEBAPP_BUTTON, web_app=WebAppInfo(url=url))
    try:
        await bot.set_chat_menu_button(menu_button=button)
    except TelegramAPIError as error:
        log.warning("could not set the Mini App menu button: %s", error.message)
        return False
    return True
