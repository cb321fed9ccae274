"""Help when something goes wrong (issue #14): big orders reopened, Check payment during an
outage, the support contact, buy-again buttons, how many are left."""

from __future__ import annotations

from aiogram.methods import EditMessageText, SendDocument, SendMessage

from bot.callbacks import OrderAction, OrderButton
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from storage import OrderStatus
from tests.bot.conftest import ALICE, CATALOG, Shop
from tests.bot.test_handlers import buy

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
    assert f"Order #{order_id}" in page.text and "600 codes" in page.text
    for sent in shop.session.requests:
        if isinstance(sent, SendMessage | EditMessageText):
            assert len(sent.text) <= TELEGRAM_MAX_TEXT
    (document,) = shop.session.calls("sendDocument")
    assert isinstance(document, SendDocument) and document.chat_id == ALICE
    assert document.document.data.decode().split() == BIG_CODES


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
