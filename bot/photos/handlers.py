"""An admin sends a photo captioned with a sku: it becomes that product's picture."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot, F, Router
from aiogram.types import Message

from bot.config import Settings
from bot.context import ShopContext
from bot.handlers.admin import IsAdmin
from bot.photos.fetch import FetchFailed, PhotoFetcher
from bot.screens.texts import en_admin as ta
from bot.shop.admin import audit
from storage import Database, ProductNotFound, get_product, set_product_photo


@dataclass(frozen=True)
class PhotoSetResult:
    ok: bool
    text: str


async def set_photo_from_telegram(
    db: Database, fetcher: PhotoFetcher, sku: str, file_id: str, *, is_photo: bool = True
) -> PhotoSetResult:
    """Download the admin's photo through the Bot API, check it, and make it the product's
    photo. A photo's file_id is this bot's to send as a photo: later cards send it by that id,
    no upload (an image sent as a document is uploaded once as a photo: Telegram will not send
    a document's id as a photo)."""
    product = await get_product(db, sku)
    if product is None:
        return PhotoSetResult(False, ta.photo_unknown_sku(sku))
    try:
        image = await fetcher.fetch(file_id)
    except FetchFailed as error:
        return PhotoSetResult(False, ta.photo_refused(str(error)))
    try:
        await set_product_photo(
            db, sku, file_id, image, telegram_file_id=file_id if is_photo else None
        )
    except ProductNotFound:
        return PhotoSetResult(False, ta.photo_unknown_sku(sku))
    return PhotoSetResult(True, ta.photo_saved(sku, product.title))


def build_router(settings: Settings) -> Router:
    router = Router(name="photos")
    router.message.filter(IsAdmin(settings.admin_ids), F.chat.type == "private")

    # A picture sent "as a file" (uncompressed) counts too: its mime type says image.
    @router.message(F.photo | F.document.mime_type.startswith("image/"))
    async def product_photo(message: Message, ctx: ShopContext, bot: Bot) -> None:
        assert message.from_user is not None
        words = (message.caption or "").split()
        if not words:
            await message.answer(ta.PHOTO_NO_SKU)
            return
        sku = words[0]
        file_id = message.photo[-1].file_id if message.photo else None
        if file_id is None and message.document is not None:
            file_id = message.document.file_id
        assert file_id is not None
        result = await set_photo_from_telegram(
            ctx.db, PhotoFetcher(bot=bot), sku, file_id, is_photo=bool(message.photo)
        )
        await message.answer(result.text)
        await audit(
            ctx, message.from_user.id, "photo.set", sku, "saved" if result.ok else "refused"
        )

    return router
