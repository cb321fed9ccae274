"""The real bot process: a three-product cart kept across a restart, checked out as one
order with one invoice, paid by webhook and delivered once in one goods message."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from bot.sandbox._tg_user import FakeUser
from tests.e2e.conftest import Shop
from tests.e2e.flows import STEP, WITCHER_CODES, has_button, invoice_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PORTAL_CODES = {"DEMO-P2-AAAA-1111", "DEMO-P2-BBBB-2222"}


async def add_to_cart(user: FakeUser, sku: str, plus: int = 0) -> None:
    await user.send(f"/start p_{sku}")
    card = await user.wait_for_message(has_button("Add to cart"), timeout=STEP)
    for n in range(plus):
        await user.tap(card, "+")
        card = await user.wait_for_message(f"Quantity: {n + 2}", timeout=STEP)
    query = await user.tap(card, "Add to cart")
    answer = await user.wait_for_answer(query, timeout=STEP)
    assert "in the cart" in answer.get("text", ""), answer


async def test_a_three_product_cart_across_a_restart_paid_and_delivered_once(shop: Shop) -> None:
    bot = await shop.launch()
    alice = shop.tg.user(5101, "Alice")
    await add_to_cart(alice, "witcher3")
    await add_to_cart(alice, "portal2", plus=1)
    assert await bot.terminate() == 0

    bot = await shop.launch()  # a new process on the same database: the cart is still there
    await add_to_cart(alice, "guide")
    await alice.send("/start")
    menu = await alice.wait_for_message(has_button("Cart (4)"), timeout=STEP)
    await alice.tap(menu, "Cart (4)")
    cart = await alice.wait_for_message("Your cart", timeout=STEP)
    for line in ("× 1 — $9.99", "× 2 — $9.00", "× 1 — $2.50", "$21.49"):
        assert line in (cart.text or ""), cart.text

    await alice.tap(cart, "Checkout")
    reply = await alice.wait_for_message("Order #", timeout=STEP)
    found = re.search(r"Order #(\d+)", reply.text or "")
    assert found, reply.text
    order_id = int(found.group(1))
    (created,) = shop.cp.calls_of("createInvoice")
    assert Decimal(created["amount"]) == Decimal("21.49")
    assert str(created["payload"]) == str(order_id)
    assert {"Pay", "Check payment", "Cancel"} <= set(reply.button_texts())
    lines = shop.query(f"SELECT COUNT(*) FROM order_lines WHERE order_id = {order_id}")
    assert lines == [(3,)]
    assert shop.query("SELECT COUNT(*) FROM cart_items") == [(0,)]

    invoice = invoice_of(shop, order_id)  # exactly one invoice for the order
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    goods = await alice.wait_for_message(f"Order #{order_id} is paid", timeout=15)
    text = goods.text or ""
    assert sum(code in text for code in WITCHER_CODES) == 1
    assert all(code in text for code in PORTAL_CODES)
    assert "example.com/guide.pdf" in text
    await shop.wait_for_db(
        f"SELECT status FROM outbox WHERE order_id = {order_id} AND kind = 'goods'",
        lambda rows: rows != [] and all(r[0] == "sent" for r in rows),
        timeout=STEP,
        what="the goods outbox row marked sent",
    )
    # A later exchange: anything still queued would have gone out by then.
    await alice.send("/orders")
    await alice.wait_for_message(has_button(f"#{order_id}"), timeout=STEP)
    paid = [m for m in alice.chat_messages() if f"Order #{order_id} is paid" in (m.text or "")]
    assert len(paid) == 1
    assert await bot.terminate() == 0
    assert "Traceback" not in bot.stderr
