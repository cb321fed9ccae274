"""Help when something goes wrong (issue #14): big orders reopened, Check payment during an
outage, the support contact, buy-again buttons, how many are left."""

from __future__ import annotations

import pytest
from aiogram.methods import EditMessageText, SendDocument, SendMessage

from bot.callbacks import Menu, MenuAction, OrderAction, OrderButton, ProductAction, ProductCard
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.jobs import expire, reconcile
from bot.screens.outgoing import compose
from storage import OrderStatus
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, CATALOG, Shop, markup_buttons
from tests.bot.test_handlers import buy
from tests.bot.test_jobs import _expire_keeping_invoice, invoice_of, place
from tests.bot.test_refunds import ask, confirm
from tests.bot.test_refunds import paid_order as refunds_paid_order

TELEGRAM_MAX_TEXT = 4096
BIG_CODES = [f"BIG-{n:04d}-XXXXXXXXXXXXXXXX" for n in range(600)]
BIG = f"""
[[products]]
sku = "big"
category = "gifts"
title = "Bulk keys"
price = "0.10"
max_per_order = 1000
codes = [{", ".join(f'"{code}"' for code in BIG_CODES)}]
"""


async def test_a_reopened_order_with_600_codes_gets_them_as_a_document(shop: Shop) -> None:
    await import_catalog_file(shop.ctx.db, parse_catalog(CATALOG + BIG, "USD"))
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"max_reserved_units": 1000})  # bulk
    order_id, _ = await buy(shop, "big", 600)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))
    assert (await shop.order(order_id)).status == OrderStatus.PAID

    update = await shop.press(OrderButton(action=OrderAction.SHOW, order_id=order_id))

    (answer,) = shop.answers_to(update)
    assert not answer.text  # no "Sorry, something went wrong"
    page = shop.last_text()
    assert f"Order #{order_id}" in page.text and "600 items" in page.text
    for sent in shop.session.requests:
        if isinstance(sent, SendMessage | EditMessageText):
            assert len(sent.text) <= TELEGRAM_MAX_TEXT
    (document,) = shop.session.calls("sendDocument")
    assert isinstance(document, SendDocument) and document.chat_id == ALICE
    assert document.document.data.decode().split() == BIG_CODES


LONG_CODES = [f"LONG-{n:02d}-" + "X" * 400 for n in range(15)]
LONG = f"""
[[products]]
sku = "long"
category = "gifts"
title = "Long licences"
price = "1.00"
max_per_order = 20
codes = [{", ".join(f'"{code}"' for code in LONG_CODES)}]
"""


async def test_the_admin_view_of_an_order_with_long_goods_fits_one_message(shop: Shop) -> None:
    await import_catalog_file(shop.ctx.db, parse_catalog(CATALOG + LONG, "USD"))
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"max_reserved_units": 1000})  # bulk
    order_id, _ = await buy(shop, "long", 15)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))
    assert (await shop.order(order_id)).status == OrderStatus.PAID

    await shop.send(f"/order {order_id}", user_id=ADMIN_ID)
    admin_view = shop.last_text()
    assert admin_view.chat_id == ADMIN_ID and f"#{order_id}" in admin_view.text
    assert len(admin_view.text) <= TELEGRAM_MAX_TEXT
    assert "15 items, too long to show here" in admin_view.text


async def test_check_payment_during_an_outage_after_paying_says_it_will_arrive(
    shop: Shop,
) -> None:
    order_id, _ = await buy(shop, "multi", 1)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    shop.cp.fail_next("getInvoices", 500, times=10)

    update = await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))

    (answer,) = shop.answers_to(update)
    text = answer.text or ""
    assert "no order was placed" not in text
    assert "could not be reached" in text
    assert "delivered here automatically" in text
    assert "try again in a minute" in text
    assert len(text) <= 200 and answer.show_alert
    assert (await shop.order(order_id)).status == OrderStatus.PENDING


# --- SUPPORT_CONTACT -------------------------------------------------------------------------

SUPPORT = "@shop_help_desk"


def with_contact(shop: Shop, contact: str | None) -> None:
    shop.ctx.settings.support_contact = contact


@pytest.mark.parametrize("contact", [SUPPORT, None])
async def test_help_names_the_support_contact_when_there_is_one(
    shop: Shop, contact: str | None
) -> None:
    with_contact(shop, contact)
    await shop.send("/help")
    command = shop.last_text().text
    await shop.press(Menu(action=MenuAction.HELP))
    button = shop.last_text().text
    await shop.send("hello?")
    fallback = shop.last_text().text
    for text in (command, button, fallback):
        assert "How it works" in text
        assert (SUPPORT in text) == (contact is not None)


@pytest.mark.parametrize("contact", [SUPPORT, "https://example.com/help?a=1&b=2", None])
async def test_every_order_screen_says_whom_to_ask_quoting_the_order(
    shop: Shop, contact: str | None
) -> None:
    with_contact(shop, contact)
    order_id, placed = await buy(shop, "multi", 1)  # the order message Buy answers with
    await shop.press(OrderButton(action=OrderAction.SHOW, order_id=order_id))
    for text in (placed.text, shop.last_text().text):
        assert f"Order #{order_id}" in text
        if contact is None:
            assert "Questions?" not in text
        else:
            assert f"quote order #{order_id}" in text
            link = '<a href="https://example.com/help?a=1&amp;b=2">'
            assert (SUPPORT if contact == SUPPORT else link) in text


async def late_payment_without_stock(shop: Shop) -> int:
    alice = await place(shop, "solo", user=ALICE)
    await _expire_keeping_invoice(shop, alice)
    bob = await place(shop, "solo", user=BOB)  # takes the unit Alice's order released
    await shop.cp.pay(await invoice_of(shop, bob), send_webhook=False)
    await shop.cp.pay(await invoice_of(shop, alice), send_webhook=False)
    assert await reconcile(shop.ctx) == 2
    assert (await shop.order(alice)).status == OrderStatus.NEEDS_REFUND
    return alice


async def payment_under_review(shop: Shop) -> int:
    order_id = await place(shop, "multi", 1)
    invoice_id = await invoice_of(shop, order_id)
    await shop.cp.pay(invoice_id, send_webhook=False)
    shop.cp.invoice(invoice_id)["fiat"] = "EUR"  # paid, but not what the order asked
    assert await reconcile(shop.ctx) == 1
    assert (await shop.order(order_id)).status == OrderStatus.NEEDS_REVIEW
    return order_id


async def refunded(shop: Shop) -> int:
    order_id = await refunds_paid_order(shop)
    _, token = await ask(shop, f"{order_id}")
    assert token is not None
    await confirm(shop, token)
    assert (await shop.order(order_id)).status == OrderStatus.REFUNDED
    return order_id


async def buyer_notice(shop: Shop, order_id: int, kind: str) -> str:
    rows = [m for m in await shop.outbox(order_id, kind=kind) if m.chat_id == ALICE]
    if kind == "notice":
        rows = [m for m in rows if "refund" in m.text.lower()]
    (row,) = rows
    return (await compose(shop.ctx, row)).text


NOTICES = {
    "late payment, sold out": (late_payment_without_stock, "late_needs_refund", "refund"),
    "under review": (payment_under_review, "under_review", "goods or a refund"),
    "refund on its way": (refunded, "notice", "Crypto Bot wallet"),
}


@pytest.mark.parametrize("case", sorted(NOTICES))
@pytest.mark.parametrize("contact", [SUPPORT, None])
async def test_every_notice_that_promises_help_carries_the_contact(
    shop: Shop, case: str, contact: str | None
) -> None:
    with_contact(shop, contact)
    make, kind, what_next = NOTICES[case]
    order_id = await make(shop)
    text = await buyer_notice(shop, order_id, kind)
    assert f"#{order_id}" in text and what_next in text
    if contact is None:
        assert "Questions?" not in text and "None" not in text
        assert text.rstrip().endswith(".")
    else:
        assert f"Write to {SUPPORT} and quote order #{order_id}." in text


# --- buy again, how many are left ------------------------------------------------------------


async def test_the_expiry_notice_offers_to_buy_again(shop: Shop) -> None:
    order_id = await place(shop, "multi", 2)
    shop.clock.advance(901)
    assert await expire(shop.ctx) == 1

    (notice,) = await shop.outbox(order_id, kind="notice")
    sent = await compose(shop.ctx, notice)
    assert "expired" in sent.text
    assert sent.reply_markup is not None
    (button,) = [b for row in sent.reply_markup.inline_keyboard for b in row]
    assert button.text == "🔁 Buy again"
    assert button.callback_data == ProductCard(action=ProductAction.SHOW, sku="multi").pack()

    await shop.press(ProductCard.unpack(button.callback_data))  # it opens the card
    assert "Multi Key" in shop.last_text().text


async def test_check_payment_on_an_expired_invoice_offers_to_buy_again(shop: Shop) -> None:
    order_id, _ = await buy(shop, "multi", 2)
    invoice_id = await invoice_of(shop, order_id)
    shop.cp.expire(invoice_id)

    update = await shop.press(OrderButton(action=OrderAction.CHECK, order_id=order_id))

    (answer,) = shop.answers_to(update)
    assert answer.text and "invoice has expired" in answer.text and "Buy again" in answer.text
    page = shop.last_text()
    buttons = markup_buttons(page)
    assert [b.text for b in buttons] == ["🔁 Buy again", "◀ Back"]  # no Pay, Check, Cancel
    assert buttons[0].callback_data == ProductCard(action=ProductAction.SHOW, sku="multi").pack()
    assert (await shop.order(order_id)).status == OrderStatus.EXPIRED
    assert await shop.units(order_id) == []  # the reservation is released at once


async def test_out_of_stock_at_buy_says_how_many_are_left(shop: Shop) -> None:
    await buy(shop, "multi", 3, user=BOB)  # 2 of the 5 remain
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="multi", qty=3))
    (answer,) = shop.answers_to(update)
    assert answer.text == "Sorry, only 2 left. Please choose 2 or fewer."

    await buy(shop, "multi", 2, user=BOB)  # none remain
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku="multi", qty=1))
    (answer,) = shop.answers_to(update)
    assert answer.text and "not enough stock" in answer.text and "only" not in answer.text
