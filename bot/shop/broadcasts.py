"""Broadcast use cases: the admin's optional button line, and starting a broadcast. Plain
values in, plain values out (the handlers read the messages and render)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.screens.texts import en_broadcast as tb
from storage import Broadcast, Database, create_broadcast, create_broadcast_from_draft, get_product

MAX_BUTTON_TEXT = 64
MAX_URL = 2048
_SKU = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ButtonLine:
    """The parsed line: the button's text and its URL; or `error`, a sentence saying why
    the line was refused."""

    text: str = ""
    url: str = ""
    error: str | None = None

    def markup_json(self) -> str:
        button = InlineKeyboardButton(text=self.text, url=self.url)
        markup = InlineKeyboardMarkup(inline_keyboard=[[button]])
        return markup.model_dump_json(exclude_none=True)


def _url_ok(url: str) -> bool:
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "." in parts.netloc


async def parse_button_line(
    db: Database, bot_url: str, line: str, *, format_error: str = tb.BUTTON_LINE_FORMAT
) -> ButtonLine:
    """`Button text | https://…` (a link) or `Button text | p_<sku>` (the product's card,
    through the bot's deep link `t.me/<bot>?start=p_<sku>`). `format_error`: the sentence
    for a line that is no button line at all."""
    line = line.strip()
    if "\n" in line or line.count("|") != 1:
        return ButtonLine(error=format_error)
    text, target = (part.strip() for part in line.split("|"))
    if not text:
        return ButtonLine(error=tb.BUTTON_TEXT_EMPTY)
    if len(text) > MAX_BUTTON_TEXT:
        return ButtonLine(error=tb.button_text_too_long(MAX_BUTTON_TEXT))
    if target.startswith("p_"):
        sku = target.removeprefix("p_")
        product = await get_product(db, sku) if _SKU.fullmatch(sku) else None
        if product is None or not product.active:
            return ButtonLine(error=tb.button_unknown_product(sku))
        return ButtonLine(text, f"{bot_url}?start=p_{sku}")
    if not _url_ok(target):
        return ButtonLine(error=tb.BUTTON_LINK_BAD)
    return ButtonLine(text, target)


async def start_broadcast(
    db: Database,
    admin_chat_id: int,
    text: str,
    photo: str | None,
    reply_markup: str | None,
    *,
    buyers_only: bool,
    draft_message_id: int | None = None,
) -> Broadcast | None:
    """The broadcast, to the audience as it is now; the runner sends it from here on. With
    the draft's message (where Send was tapped): once per draft, None for a second tap."""
    if draft_message_id is not None:
        return await create_broadcast_from_draft(
            db,
            admin_chat_id,
            draft_message_id,
            text,
            photo=photo,
            reply_markup=reply_markup,
            buyers_only=buyers_only,
        )
    return await create_broadcast(
        db, admin_chat_id, text, photo=photo, reply_markup=reply_markup, buyers_only=buyers_only
    )
