"""A product card as a photo message: uploaded from our copy once, then sent by the file_id
Telegram returned for that upload (stored), so a photo goes up once per bot."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message

from bot.catalog_file import photo_kind
from storage import Database, PhotoRef, photo_image, photo_ref, remember_file_id

log = logging.getLogger("bot.photos")

CAPTION_LIMIT = 1024  # UTF-16 units of the caption as shown (after HTML is parsed)
_TAG_RE = re.compile(r"<[^>]*>")
# What Telegram answers for a file_id it will not send as a photo for this bot (another bot's,
# gone, or a document's: "can't use file of type Document as Photo").
_REJECTED = (
    "wrong file identifier",
    "wrong remote file",
    "file reference",
    "file_id",
    "file of type",
)


class PhotoUnavailable(Exception):
    """Neither a usable file_id nor a copy: the card goes out as text."""


@dataclass(frozen=True)
class CardPhoto:
    db: Database
    ref: PhotoRef
    sku: str


async def card_photo(db: Database, product_id: int, sku: str) -> CardPhoto | None:
    """The photo a product card shows, when there is one we can send: our copy (or its
    file_id), or a catalog file_id not copied yet. A URL not fetched yet: None."""
    ref = await photo_ref(db, product_id)
    if ref is None or (ref.digest is None and photo_kind(ref.source) != "file_id"):
        return None
    return CardPhoto(db, ref, sku)


def shown_length(html_text: str) -> int:
    """Length of an HTML text as Telegram counts it once the markup is parsed."""
    return len(html.unescape(_TAG_RE.sub("", html_text)).encode("utf-16-le")) // 2


def fit_caption(build: Callable[[str], str], description: str) -> str:
    """The card built with the description shortened (with an ellipsis) just enough to fit
    a caption; the title, price, stock and quantity lines are never cut."""
    text = build(description)
    while shown_length(text) > CAPTION_LIMIT and description:
        over = shown_length(text) - CAPTION_LIMIT
        keep = len(description) - over - 1
        description = description[:keep].rstrip() + "…" if keep > 0 else ""
        text = build(description)
    return text


def _rejected(error: TelegramBadRequest) -> bool:
    return any(words in error.message.lower() for words in _REJECTED)


async def send_card_photo(
    bot: Bot, chat_id: int, photo: CardPhoto, caption: str, markup: InlineKeyboardMarkup | None
) -> Message:
    """Send by the stored file_id; when Telegram rejects it (another bot's id), upload our
    copy and store the new id. Raises PhotoUnavailable when there is nothing to send."""
    ref = photo.ref
    known = ref.telegram_file_id or (ref.source if ref.digest is None else None)
    if known:
        try:
            return await bot.send_photo(chat_id, known, caption=caption, reply_markup=markup)
        except TelegramBadRequest as error:
            if not _rejected(error):
                raise
            log.warning(
                "photo of product %r: Telegram rejected its file_id (%s); uploading our copy",
                photo.sku,
                error.message,
            )
            if ref.digest is not None:
                await remember_file_id(photo.db, ref.product_id, ref.digest, None)
    image = await photo_image(photo.db, ref.product_id)
    if image is None:
        raise PhotoUnavailable(photo.sku)
    extension = "png" if image.content_type == "image/png" else "jpg"
    upload = BufferedInputFile(image.content, filename=f"{photo.sku}.{extension}")
    sent = await bot.send_photo(chat_id, upload, caption=caption, reply_markup=markup)
    if sent.photo:
        await remember_file_id(photo.db, ref.product_id, image.digest, sent.photo[-1].file_id)
    return sent
