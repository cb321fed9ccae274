"""Product cards as photo messages, through the real Dispatcher and the fake Telegram server
(bot/sandbox): uploaded once then sent by file_id, −/+ editing the caption, list ↔ card
moving by send + delete, a rejected file_id re-uploaded, and an admin's photo."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiogram import Bot, Dispatcher
from PIL import Image

from bot.app import create_bot, create_dispatcher
from bot.catalog_file import load_catalog
from bot.catalog_sync import import_catalog_file
from bot.context import ShopContext
from bot.photos.fetch import PhotoCopier, PhotoFetcher
from bot.sandbox import FakeCryptoPay, FakeTelegram
from bot.sandbox._server import UploadedFile
from bot.sandbox._tg_model import SentMessage
from payments import CryptoPayClient, ExchangeRateCache
from storage import (
    Database,
    Order,
    get_product,
    photo_image,
    photo_ref,
    remember_file_id,
    upgrade,
)
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, BOT_TOKEN, BOT_USERNAME, CP_TOKEN
from tests.bot.conftest import make_settings as shop_settings

LONG = "A very long description of a very fine product. " * 60  # ~2,900 characters
TALL = "An exceedingly long product title " * 32  # ~1,100 characters: no caption holds it

CATALOG = f"""
[[categories]]
slug = "games"
title = "Game keys"

[[products]]
sku = "pic"
category = "games"
title = "With photo"
description = "Comes with a picture."
price = "3.00"
photo = "images/pic.png"
codes = ["PIC-1", "PIC-2", "PIC-3"]

[[products]]
sku = "long"
category = "games"
title = "Long story"
description = "{LONG}"
price = "5.00"
photo = "images/pic.png"
codes = ["LONG-1"]

[[products]]
sku = "tall"
category = "games"
title = "{TALL}"
description = "Short."
price = "4.00"
photo = "images/pic.png"
codes = ["TALL-1", "TALL-2"]

[[products]]
sku = "plain"
category = "games"
title = "No photo"
price = "1.00"
codes = ["PLAIN-1"]
"""


def png(colour: str = "teal", size: tuple[int, int] = (120, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@dataclass
class TgShop:
    tg: FakeTelegram
    ctx: ShopContext
    bot: Bot
    dp: Dispatcher
    offset: int = 0

    async def pump(self) -> None:
        """Hand every update waiting at the fake Telegram to the Dispatcher, in order."""
        while updates := await self.bot.get_updates(offset=self.offset, timeout=0):
            for update in updates:
                self.offset = update.update_id + 1
                await self.dp.feed_update(self.bot, update)

    async def product_id(self, sku: str) -> int:
        product = await get_product(self.ctx.db, sku)
        assert product is not None and product.id is not None
        return product.id

    def photo_sends(self) -> list[dict[str, object]]:
        return self.tg.calls_of("sendPhoto")


@pytest.fixture
async def tg_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TgShop]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "pic.png").write_bytes(png())
    (tmp_path / "shop.toml").write_text(CATALOG)
    async with (
        FakeTelegram(token=BOT_TOKEN, bot_username=BOT_USERNAME) as tg,
        FakeCryptoPay(token=CP_TOKEN, network="testnet") as cp,
    ):
        settings = shop_settings(tmp_path, cp, TELEGRAM_API_URL=tg.base_url)
        db = Database(settings.database_url)
        await upgrade(db)
        await import_catalog_file(db, load_catalog(tmp_path / "shop.toml", "USD"))
        cryptopay = CryptoPayClient(CP_TOKEN, cp.base_url, timeout=5.0)
        rates = ExchangeRateCache(cryptopay, ttl_seconds=60)
        await rates.refresh()
        bot = create_bot(settings)
        ctx = ShopContext(
            settings=settings,
            db=db,
            cryptopay=cryptopay,
            rates=rates,
            bot=bot,
            bot_username=BOT_USERNAME,
        )
        try:
            yield TgShop(tg, ctx, bot, create_dispatcher(ctx))
        finally:
            await bot.session.close()
            await ctx.close()


def uploaded(call: dict[str, object]) -> UploadedFile | None:
    """The file a sendPhoto call uploaded (aiogram sends it as `attach://<field>`), or None
    when it sent a file_id."""
    photo = call["photo"]
    if isinstance(photo, str) and photo.startswith("attach://"):
        photo = call[photo.removeprefix("attach://")]
    return photo if isinstance(photo, UploadedFile) else None


def live(user_messages: list[SentMessage]) -> list[SentMessage]:
    return [m for m in user_messages if m.outgoing]


async def test_card_is_a_photo_uploaded_once_then_sent_by_its_file_id(tg_shop: TgShop) -> None:
    tg = tg_shop.tg
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start p_pic")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "photo" in card.raw and "text" not in card.raw
    assert card.text is not None and "With photo" in card.text and "Price: $3.00" in card.text
    assert card.button_texts() == ["−", "1", "+", "Buy", "Add to cart", "Promo code", "◀ Back"]
    (send,) = tg_shop.photo_sends()
    upload = uploaded(send)  # the first send uploads our copy
    pic = await tg_shop.product_id("pic")
    stored = await photo_image(tg_shop.ctx.db, pic)
    assert upload is not None and stored is not None and upload.content == stored.content
    ref = await photo_ref(tg_shop.ctx.db, pic)
    assert ref is not None and ref.telegram_file_id == card.raw["photo"][-1]["file_id"]

    # − / + edit the caption of the same message
    await alice.tap(card, "+")
    await tg_shop.pump()
    assert len(tg.calls_of("editMessageCaption")) == 1 and not tg.calls_of("editMessageText")
    (card,) = live(alice.chat_messages())
    assert card.text is not None and "Quantity: 2" in card.text and card.edits == 1
    assert card.button_texts()[1] == "2"

    # Back: a photo cannot become the category list; the list replaces the card
    await alice.tap(card, "Back")
    await tg_shop.pump()
    (listing,) = live(alice.chat_messages())
    assert "text" in listing.raw and "With photo" in listing.button_texts()
    assert tg.messages[(ALICE, card.message_id)].deleted

    # and the card again: sent by the stored file_id, no second upload
    await alice.tap(listing, "With photo")
    await tg_shop.pump()
    (again,) = live(alice.chat_messages())
    assert "photo" in again.raw
    _, second = tg_shop.photo_sends()
    assert second["photo"] == ref.telegram_file_id
    assert tg.messages[(ALICE, listing.message_id)].deleted

    # another shopper: still no upload
    bob = tg.user(BOB, "Bob")
    await bob.send("/start p_pic")
    await tg_shop.pump()
    assert [uploaded(c) is not None for c in tg_shop.photo_sends()] == [True, False, False]


async def test_a_product_without_photo_stays_a_text_message(tg_shop: TgShop) -> None:
    alice = tg_shop.tg.user(ALICE, "Alice")
    await alice.send("/start p_plain")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "text" in card.raw and "No photo" in (card.text or "")
    await alice.tap(card, "Back")
    await tg_shop.pump()
    (listing,) = live(alice.chat_messages())
    assert listing.message_id == card.message_id  # edited in place, as before
    assert not tg_shop.photo_sends()


async def test_a_long_description_is_shortened_in_the_caption(tg_shop: TgShop) -> None:
    alice = tg_shop.tg.user(ALICE, "Alice")
    await alice.send("/start p_long")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "photo" in card.raw and card.text is not None
    assert len(card.text.encode("utf-16-le")) // 2 <= 1024
    assert "…" in card.text and "Price: $5.00" in card.text and "Quantity: 1" in card.text


async def test_a_title_too_long_for_any_caption_sends_the_card_as_text(tg_shop: TgShop) -> None:
    alice = tg_shop.tg.user(ALICE, "Alice")
    await alice.send("/start p_tall")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "text" in card.raw and "Price: $4.00" in (card.text or "")
    assert "Short." in (card.text or "")  # nothing cut: a text message holds it all
    await alice.tap(card, "+")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "Quantity: 2" in (card.text or "")


async def test_a_file_id_telegram_rejects_is_replaced_by_a_fresh_upload(tg_shop: TgShop) -> None:
    pic = await tg_shop.product_id("pic")
    ref = await photo_ref(tg_shop.ctx.db, pic)
    assert ref is not None and ref.digest is not None
    foreign = "AgACAgIAAxkBAAIOtherBotsFileId0123456789"  # another bot's id: unknown here
    assert await remember_file_id(tg_shop.ctx.db, pic, ref.digest, foreign)

    alice = tg_shop.tg.user(ALICE, "Alice")
    await alice.send("/start p_pic")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "photo" in card.raw
    rejected, upload = tg_shop.photo_sends()
    assert rejected["photo"] == foreign and uploaded(upload) is not None
    ref = await photo_ref(tg_shop.ctx.db, pic)
    assert ref is not None and ref.telegram_file_id == card.raw["photo"][-1]["file_id"]
    assert ref.telegram_file_id != foreign


async def test_an_admin_photo_with_a_sku_caption_sets_the_picture(tg_shop: TgShop) -> None:
    tg = tg_shop.tg
    admin = tg.user(ADMIN_ID, "Admin")
    picture = png("orange", (200, 150))
    sent = await admin.send_photo(picture, caption="plain")
    await tg_shop.pump()
    reply = await admin.wait_for_message("Photo saved")
    assert "No photo" in (reply.text or "") and "plain" in (reply.text or "")
    file_id = sent.raw["photo"][-1]["file_id"]
    product = await get_product(tg_shop.ctx.db, "plain")
    assert product is not None and product.photo == file_id
    stored = await photo_image(tg_shop.ctx.db, await tg_shop.product_id("plain"))
    assert stored is not None and stored.content == picture  # downloaded through getFile
    assert tg.calls_of("getFile")[-1]["file_id"] == file_id

    # the card sends the admin's file_id as it is: nothing is uploaded
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start p_plain")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    assert "photo" in card.raw
    assert [c["photo"] for c in tg_shop.photo_sends()] == [file_id]

    # a replacement for another product; an unknown sku; no caption; not a picture
    await admin.send_photo(png("navy"), caption="pic")
    await tg_shop.pump()
    await admin.wait_for_message("Photo saved")
    ref = await photo_ref(tg_shop.ctx.db, await tg_shop.product_id("pic"))
    assert ref is not None and ref.source != "images/pic.png"
    for caption, answer in (
        ("ghost", "There is no product with the sku <code>ghost</code>"),
        (None, "Put the product's sku in the photo's caption"),
    ):
        await admin.send_photo(png(), caption=caption)
        await tg_shop.pump()
        reply = await admin.wait_for_message(lambda m: m.outgoing)
        assert answer in (reply.raw_text or "")
    await admin.send_photo(b"not an image at all", caption="plain")
    await tg_shop.pump()
    await admin.wait_for_message("could not be used: not an image")
    product = await get_product(tg_shop.ctx.db, "plain")
    assert product is not None and product.photo == file_id  # unchanged

    # a shopper's photo sets nothing
    await alice.send_photo(png("black"), caption="plain")
    await tg_shop.pump()
    product = await get_product(tg_shop.ctx.db, "plain")
    assert product is not None and product.photo == file_id


async def test_a_catalog_file_id_is_downloaded_by_the_bot(tg_shop: TgShop) -> None:
    tg = tg_shop.tg
    picture = png("purple")
    file_id = tg.new_file_id("AgACAgIAAxkBAAI")
    tg.files[file_id] = UploadedFile("photo.jpg", picture, "image/jpeg")
    catalog = CATALOG.replace(
        'photo = "images/pic.png"\ncodes = ["PIC', f'photo = "{file_id}"\ncodes = ["PIC'
    )
    (Path.cwd() / "shop.toml").write_text(catalog)
    await import_catalog_file(tg_shop.ctx.db, load_catalog(Path.cwd() / "shop.toml", "USD"))
    pic = await tg_shop.product_id("pic")
    ref = await photo_ref(tg_shop.ctx.db, pic)
    assert ref is not None and ref.digest is None  # the old copy went with the old source

    report = await PhotoCopier(tg_shop.ctx.db, PhotoFetcher(bot=tg_shop.bot)).run()
    assert report.stored == ["pic"] and report.failed == []
    stored = await photo_image(tg_shop.ctx.db, pic)
    assert stored is not None and stored.content == picture
    ref = await photo_ref(tg_shop.ctx.db, pic)
    assert ref is not None and ref.telegram_file_id == file_id

    alice = tg.user(ALICE, "Alice")
    await alice.send("/start p_pic")
    await tg_shop.pump()
    assert [c["photo"] for c in tg_shop.photo_sends()] == [file_id]


async def test_buy_on_a_photo_card_replaces_it_with_the_order_message(tg_shop: TgShop) -> None:
    tg = tg_shop.tg
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start p_pic")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    await alice.tap(card, "Buy")
    await tg_shop.pump()
    (order,) = live(alice.chat_messages())
    assert "text" in order.raw and "Order #" in (order.text or "")
    assert order.button_texts()[0] == "Pay"
    assert tg.messages[(ALICE, card.message_id)].deleted
    # the order remembers the new message: paying or expiring it edits that one
    async with tg_shop.ctx.db.session() as s:
        recorded = (await s.execute(sa.select(Order.message_chat_id, Order.message_id))).all()
    assert recorded == [(ALICE, order.message_id)]


async def test_an_image_sent_as_a_file_is_uploaded_once_as_a_photo(tg_shop: TgShop) -> None:
    tg = tg_shop.tg
    admin = tg.user(ADMIN_ID, "Admin")
    picture = png("gold")
    sent = await admin.send_document("cover.png", picture, caption="plain", mime_type="image/png")
    await tg_shop.pump()
    await admin.wait_for_message("Photo saved")
    document_id = sent.raw["document"]["file_id"]
    product = await get_product(tg_shop.ctx.db, "plain")
    assert product is not None and product.photo == document_id
    ref = await photo_ref(tg_shop.ctx.db, await tg_shop.product_id("plain"))
    assert ref is not None and ref.telegram_file_id is None  # a document's id is no photo's

    alice = tg.user(ALICE, "Alice")
    await alice.send("/start p_plain")
    await tg_shop.pump()
    (card,) = live(alice.chat_messages())
    (send,) = tg_shop.photo_sends()
    upload = uploaded(send)
    assert "photo" in card.raw and upload is not None and upload.content == picture
