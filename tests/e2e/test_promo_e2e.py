"""The real bot process: an admin adds a promo code, a shopper applies it on the card, buys,
pays the discounted invoice by webhook and gets the goods once."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.e2e.conftest import Shop
from tests.e2e.flows import STEP, assert_delivered_once, has_button, invoice_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ADMIN = 7001


async def test_discounted_purchase_paid_by_webhook(shop: Shop) -> None:
    bot = await shop.launch(ADMIN_IDS=str(ADMIN))
    admin = shop.tg.user(ADMIN, "Admin")
    alice = shop.tg.user(5001, "Alice")

    await admin.send("/promo add W3SALE 10% uses=1")
    await admin.wait_for_message("Promo code added", timeout=STEP)

    await alice.send("/start")
    menu = await alice.wait_for_message(has_button("Catalog"), timeout=STEP)
    await alice.tap(menu, "Catalog")
    catalog = await alice.wait_for_message(has_button("Game keys"), timeout=STEP)
    await alice.tap(catalog, "Game keys")
    games = await alice.wait_for_message(has_button("Steam"), timeout=STEP)
    await alice.tap(games, "Steam")
    steam = await alice.wait_for_message(has_button("Witcher 3"), timeout=STEP)
    await alice.tap(steam, "Witcher 3")
    card = await alice.wait_for_message("Quantity: 1", timeout=STEP)
    await alice.tap(card, "Promo code")
    await alice.wait_for_message("promo code", timeout=STEP)
    await alice.send("w3sale")
    card = await alice.wait_for_message("Total with the promo code", timeout=STEP)
    assert "$8.99" in (card.text or "")  # 9.99 less 1.00 (0.999 rounded half up)
    await alice.tap(card, "+")
    card = await alice.wait_for_message("Quantity: 2", timeout=STEP)
    assert "−$2.00" in (card.text or "") and "$17.98" in (card.text or "")
    await alice.tap(card, "Buy")
    reply = await alice.wait_for_message("Order #", timeout=STEP)
    found = re.search(r"Order #(\d+)", reply.text or "")
    assert found, reply.text
    order_id = int(found.group(1))
    assert "W3SALE" in (reply.text or "") and "$17.98" in (reply.text or "")

    (created,) = shop.cp.calls_of("createInvoice")
    assert Decimal(created["amount"]) == Decimal("17.98")
    invoice = invoice_of(shop, order_id)
    assert await shop.cp.pay(invoice["invoice_id"]) == 200  # the discounted amount matches
    await assert_delivered_once(shop, alice, order_id)
    rows = shop.query(f"SELECT total, discount, promo_code FROM orders WHERE id = {order_id}")
    assert rows == [(1798000000, 200000000, "w3sale")]  # SQLite keeps 1e-8 units
    assert shop.query("SELECT used FROM promo_codes WHERE code = 'w3sale'") == [(1,)]

    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr
