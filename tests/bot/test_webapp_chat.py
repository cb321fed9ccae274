"""The chat's ways into the Mini App: with WEBAPP_URL, the menu button and Open shop under
/start; without it, the chat is exactly as before."""

from __future__ import annotations

from aiogram.methods import SetChatMenuButton

from bot.config import Settings
from bot.webapp.chat import set_menu_button
from tests.bot.conftest import Shop, button_texts, markup_buttons

URL = "https://shop.example.com"


def with_webapp(shop: Shop, url: str | None) -> Settings:
    settings = shop.ctx.settings.model_copy(update={"webapp_url": url})
    shop.ctx.settings = settings
    return settings


async def test_start_shows_open_shop_as_a_web_app_button(shop: Shop) -> None:
    with_webapp(shop, URL)
    await shop.send("/start")
    reply = shop.last_text()
    first = markup_buttons(reply)[0]
    assert first.text == "Open shop"
    assert first.web_app is not None and first.web_app.url == f"{URL}/app/"
    assert {"Catalog", "My orders", "Help"} <= set(button_texts(reply))


async def test_open_shop_in_russian(shop: Shop) -> None:
    with_webapp(shop, URL)
    await shop.send("/start", language_code="ru")
    assert markup_buttons(shop.last_text())[0].text == "Открыть магазин"


async def test_without_webapp_url_start_has_no_web_app_button(shop: Shop) -> None:
    assert shop.ctx.settings.webapp_url is None
    await shop.send("/start")
    buttons = markup_buttons(shop.last_text())
    assert buttons and all(b.web_app is None for b in buttons)
    assert "Open shop" not in button_texts(shop.last_text())


async def test_menu_button_opens_the_storefront_only_with_webapp_url(shop: Shop) -> None:
    assert await set_menu_button(shop.bot, shop.ctx.settings) is False
    assert shop.session.calls("setChatMenuButton") == []
    settings = with_webapp(shop, URL)
    assert await set_menu_button(shop.bot, settings) is True
    (call,) = shop.session.calls("setChatMenuButton")
    assert isinstance(call, SetChatMenuButton)
    assert call.chat_id is None  # the default for every chat
    assert call.menu_button.type == "web_app"
    assert call.menu_button.web_app.url == f"{URL}/app/"
    assert call.menu_button.text == "Open shop"
