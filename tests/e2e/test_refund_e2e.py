"""The real bot process refunds a paid order through the fake Crypto Pay's transfer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.conftest import Shop
from tests.e2e.flows import (
    STEP,
    assert_checkout,
    assert_delivered_once,
    buy_two_witchers,
    has_button,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ADMIN = 7001


async def test_admin_refunds_a_paid_order(shop: Shop) -> None:
    bot = await shop.launch(ADMIN_IDS=str(ADMIN))
    alice = shop.tg.user(5001, "Alice")
    admin = shop.tg.user(ADMIN, "Admin")

    order_id, reply = await buy_two_witchers(alice)
    invoice = assert_checkout(shop, order_id, reply)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    await assert_delivered_once(shop, alice, order_id)
    paid = shop.cp.invoices[invoice["invoice_id"]]
    asset, amount = paid["paid_asset"], Decimal(paid["paid_amount"])
    shop.cp.balances[asset] = Decimal("1000")  # the fee left less than the buyer paid

    # Someone else typing the command gets the ordinary help and no transfer is made.
    await alice.send(f"/refund {order_id}")
    help_text = await alice.wait_for_message("How it works", timeout=STEP)
    assert "Confirm" not in help_text.button_texts()

    await admin.send(f"/refund {order_id}")
    preview = await admin.wait_for_message(has_button("Confirm"), timeout=STEP)
    assert f"order #{order_id}" in (preview.text or "")
    assert "5001" in (preview.text or "")
    assert shop.cp.transfers == {}
    await admin.tap(preview, "Confirm")
    result = await admin.wait_for_message("Transfer id", timeout=STEP)

    (transfer,) = shop.cp.transfers.values()
    assert transfer["user_id"] == 5001
    assert transfer["asset"] == asset and Decimal(transfer["amount"]) == amount
    assert transfer["spend_id"].startswith(f"refund-{order_id}-")
    assert f"#{order_id}" in transfer.get("comment", "")
    assert str(transfer["transfer_id"]) in (result.text or "")
    assert len(shop.cp.calls_of("transfer")) == 1

    told = await alice.wait_for_message(f"for order #{order_id} was sent", timeout=15, since=0)
    words = (told.text or "").split()
    assert Decimal(words[words.index("of") + 1]) == amount, told.text
    await admin.wait_for_message(f"Refund sent for order #{order_id}", timeout=15, since=0)
    rows = shop.query(
        f"SELECT status, transfer_id, spend_id FROM refunds WHERE order_id = {order_id}"
    )
    assert rows == [("sent", transfer["transfer_id"], transfer["spend_id"])]
    assert shop.query(f"SELECT status FROM orders WHERE id = {order_id}") == [("refunded",)]
    actions = shop.query("SELECT admin_id, action, result FROM audit_log ORDER BY id")
    assert (ADMIN, "refund.confirm", f"sent transfer={transfer['transfer_id']}") in actions

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr
