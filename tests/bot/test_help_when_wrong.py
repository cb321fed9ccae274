"""Help when something goes wrong (issue #14): big orders reopened, Check payment during an
outage, the support contact, buy-again buttons, how many are left."""

from __future__ import annotations

from aiogram.methods import SendDocument

from bot.callbacks import OrderAction, OrderButton
from storage import OrderStatus
from tests.bot.conftest import Shop
from tests.bot.test_handlers import buy


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
