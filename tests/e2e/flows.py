"""Shopper's steps shared by the end-to-end tests (the fake user drives the real bot)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from bot.sandbox._tg_model import SentMessage
from bot.sandbox._tg_user import FakeUser
from tests.e2e.conftest import Shop

STEP = 10.0  # seconds allowed for each bot reply
WITCHER_PRICE = Decimal("9.99")
WITCHER_CODES = {"DEMO-W3-AAAA-1111", "DEMO-W3-BBBB-2222", "DEMO-W3-CCCC-3333"}


def has_button(text: str):
    return lambda m: any(text in b["text"] for b in m.buttons())


async def buy_two_witchers(user: FakeUser) -> tuple[int, SentMessage]:
    """/start → Catalog → Game keys → Steam → Witcher 3 → + → Buy; returns (order id, reply)."""
    await user.send("/start")
    menu = await user.wait_for_message(has_button("Catalog"), timeout=STEP)
    assert "Welcome" in (menu.text or "")
    await user.tap(menu, "Catalog")
    catalog = await user.wait_for_message(has_button("Game keys"), timeout=STEP)
    await user.tap(catalog, "Game keys")
    games = await user.wait_for_message(has_button("Steam"), timeout=STEP)
    await user.tap(games, "Steam")
    steam = await user.wait_for_message(has_button("Witcher 3"), timeout=STEP)
    await user.tap(steam, "Witcher 3")
    card = await user.wait_for_message("Quantity: 1", timeout=STEP)
    assert "$9.99" in (card.text or "")
    await user.tap(card, "+")
    card = await user.wait_for_message("Quantity: 2", timeout=STEP)
    await user.tap(card, "Buy")
    reply = await user.wait_for_message("Order #", timeout=STEP)
    found = re.search(r"Order #(\d+)", reply.text or "")
    assert found, reply.text
    return int(found.group(1)), reply


def invoice_of(shop: Shop, order_id: int) -> dict[str, Any]:
    matches = [inv for inv in shop.cp.invoices.values() if inv.get("payload") == str(order_id)]
    assert len(matches) == 1, f"invoices for order {order_id}: {matches}"
    return matches[0]


def assert_checkout(shop: Shop, order_id: int, reply: SentMessage) -> dict[str, Any]:
    """Exactly one createInvoice, right amount/fiat/assets/payload; Pay carries its link."""
    created = shop.cp.calls_of("createInvoice")
    assert len(created) == 1, created
    params = created[0]
    assert params["currency_type"] == "fiat"
    assert params["fiat"] == "USD"
    assert isinstance(params["amount"], str), params  # a decimal string, never a float
    assert Decimal(params["amount"]) == 2 * WITCHER_PRICE
    assert params["accepted_assets"] == "USDT,TON,BTC"
    assert str(params["payload"]) == str(order_id)
    invoice = invoice_of(shop, order_id)
    assert f"#{order_id}" in (reply.text or "")
    assert "$19.98" in (reply.text or "")
    pay = reply.button("Pay")
    assert pay.get("url") == invoice["bot_invoice_url"], (pay, invoice)
    assert {"Check payment", "Cancel"} <= set(reply.button_texts())
    return invoice


def goods_messages(user: FakeUser, order_id: int) -> list[SentMessage]:
    """The bot's goods messages for this order that Telegram accepted (edits excluded)."""
    return [
        m
        for m in user.chat_messages()
        if f"Order #{order_id} is paid" in (m.text or "")
        and any(code in (m.text or "") for code in WITCHER_CODES)
    ]


def delivered_codes(message: SentMessage) -> set[str]:
    return {code for code in WITCHER_CODES if code in (message.text or "")}


async def assert_delivered_once(shop: Shop, user: FakeUser, order_id: int) -> None:
    """The goods arrive; once the outbox has nothing left for the order, exactly one message
    and the order reads as paid in My orders."""
    goods = await user.wait_for_message(f"Order #{order_id} is paid", timeout=15)
    assert len(delivered_codes(goods)) == 2, goods.text
    await shop.wait_for_db(
        f"SELECT status FROM outbox WHERE order_id = {order_id} AND kind = 'goods'",
        lambda rows: rows != [] and all(r[0] == "sent" for r in rows),
        timeout=STEP,
        what="the goods outbox row marked sent",
    )
    # A later exchange through the same bot: anything the outbox still had queued for this
    # chat would have gone out before or around it.
    await user.send("/orders")
    orders = await user.wait_for_message(has_button(f"#{order_id}"), timeout=STEP)
    await user.tap(orders, f"#{order_id}")
    details = await user.wait_for_message(f"Order #{order_id} —", timeout=STEP)
    assert "paid" in (details.text or ""), details.text
    assert delivered_codes(details) == delivered_codes(goods)
    assert len(goods_messages(user, order_id)) == 1, [m.text for m in user.chat_messages()]
    rows = shop.query(f"SELECT status FROM orders WHERE id = {order_id}")
    assert rows[0][0] in ("paid", "delivered"), rows
