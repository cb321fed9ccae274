"""The real bot process: checkout, payment by webhook or reconciliation, restart, shutdown."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Shop
from tests.e2e.flows import assert_checkout, assert_delivered_once, buy_two_witchers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_polling_checkout_and_webhook_payment(shop: Shop) -> None:
    bot = await shop.launch()
    alice = shop.tg.user(5001, "Alice")

    order_id, reply = await buy_two_witchers(alice)
    invoice = assert_checkout(shop, order_id, reply)

    status = await shop.cp.pay(invoice["invoice_id"])
    assert status == 200, shop.cp.webhook_deliveries[-1]
    await assert_delivered_once(shop, alice, order_id)

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr
