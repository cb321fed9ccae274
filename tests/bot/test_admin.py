"""Admin commands (PRODUCT.md §4): for an admin, and for everyone else — who gets nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from aiogram.methods import SendMessage
from aiogram.types import Chat, Document, Message, Update, User

from bot.callbacks import AdminAction, AdminOrder, AdminOrdersPage, RefundConfirm
from bot.screens.texts import texts as t
from storage import (
    AuditEntry,
    Order,
    OrderStatus,
    StockStatus,
    StockUnit,
    get_product,
    stock_counts,
)
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, Shop, button_texts, markup_buttons, next_id
from tests.bot.test_refunds import paid_order, place


async def counts(shop: Shop, sku: str) -> tuple[int, int, int]:
    product = await get_product(shop.ctx.db, sku)
    assert product is not None and product.id is not None
    return tuple(await stock_counts(shop.ctx.db, product.id))  # type: ignore[return-value]


async def audit(shop: Shop) -> list[tuple[str, str, str]]:
    return [(a.action, a.details, a.result) for a in await shop.rows(AuditEntry)]


async def send_document(
    shop: Shop, name: str, content: bytes, caption: str | None, user: int = ADMIN_ID, size: int = 0
) -> None:
    file_id = f"doc{next_id()}"
    shop.session.files[file_id] = content
    message = Message(
        message_id=next_id(),
        date=shop.clock(),
        chat=Chat(id=user, type="private"),
        from_user=User(id=user, is_bot=False, first_name="Admin"),
        document=Document(
            file_id=file_id,
            file_unique_id=f"u{file_id}",
            file_name=name,
            file_size=size or len(content),
            mime_type="text/plain",
        ),
        caption=caption,
    )
    await shop.dp.feed_update(shop.bot, Update(update_id=next_id(), message=message))


# --- nobody but an admin sees any of it -------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "/refund 1",
        "/refund 1 0.5 why",
        "/order 1",
        "/stats",
        "/balance",
        "/stock multi",
        "/recheck 1",
    ],
)
async def test_admin_commands_do_not_exist_for_others(shop: Shop, command: str) -> None:
    order_id = await paid_order(shop)
    await shop.send(command.replace(" 1", f" {order_id}"), BOB)
    (answer,) = shop.session.calls("sendMessage")
    assert answer.chat_id == BOB
    assert answer.text == t.HELP  # the ordinary help, no hint of an admin surface
    assert await audit(shop) == []
    assert shop.cp.calls_of("getBalance") == [] and shop.cp.calls_of("transfer") == []


async def test_orders_command_for_others_is_their_own_orders(shop: Shop) -> None:
    await place(shop, "multi", user=ALICE)
    await shop.send("/orders", BOB)
    assert "no orders yet" in shop.last_text().text
    await shop.send("/orders", ALICE)
    assert "My orders" in shop.last_text().text
    assert await audit(shop) == []


async def test_admin_buttons_pressed_by_others_are_stale(shop: Shop) -> None:
    order_id = await paid_order(shop)
    for data in (
        AdminOrder(action=AdminAction.SHOW, order_id=order_id),
        AdminOrder(action=AdminAction.REFUND, order_id=order_id),
        AdminOrder(action=AdminAction.RECHECK, order_id=order_id),
        AdminOrdersPage(),
        RefundConfirm(decision="y", token="abc"),
    ):
        update = await shop.press(data, BOB)
        assert [a.text for a in shop.answers_to(update)] == [t.STALE_BUTTON]
    assert shop.session.calls("sendMessage") == [] and shop.session.calls("editMessageText") == []
    assert await audit(shop) == []


async def test_upload_by_others_adds_nothing(shop: Shop) -> None:
    await send_document(shop, "codes.txt", b"EVIL-1\nEVIL-2\n", "multi", user=BOB)
    assert shop.last_text().text == t.HELP
    assert await counts(shop, "multi") == (5, 0, 0)


# --- /order, /orders ----------------------------------------------------------------------------


async def test_order_shows_the_content_of_an_unlimited_product(shop: Shop) -> None:
    order_id = await paid_order(shop, "guide", 1)
    await shop.send(f"/order {order_id}", ADMIN_ID)
    assert "https://example.com/guide.pdf" in shop.last_text().text


async def test_order_shows_everything_with_refund_and_recheck(shop: Shop) -> None:
    order_id = await paid_order(shop, "multi", 2)
    order = await shop.order(order_id)
    await shop.send(f"/order {order_id}", ADMIN_ID)
    view = shop.last_text()
    assert isinstance(view, SendMessage) and view.chat_id == ADMIN_ID
    assert f"Order #{order_id}" in view.text
    assert str(ALICE) in view.text and "Multi Key" in view.text and "× 2" in view.text
    assert "$5.00" in view.text
    assert f"Invoice: {order.invoice_id}" in view.text
    assert f"{t.plain(order.paid_amount or Decimal(0))} USDT" in view.text
    for unit in await shop.units(order_id):
        assert unit.code in view.text
    assert button_texts(view) == ["Refund", "Recheck"]

    # The Refund button offers the full refund, like /refund <id>.
    refund = next(b for b in markup_buttons(view) if b.text == "Refund")
    await shop.press(refund.callback_data, ADMIN_ID)
    preview = shop.last_text()
    assert "Confirm" in button_texts(preview) and f"order #{order_id}" in preview.text

    await shop.send("/order 424242", ADMIN_ID)
    assert "does not exist" in shop.last_text().text
    assert ("order.view", str(order_id), "shown") in await audit(shop)


async def test_unpaid_order_has_no_refund_button(shop: Shop) -> None:
    order_id = await place(shop)
    await shop.send(f"/order {order_id}", ADMIN_ID)
    assert button_texts(shop.last_text()) == ["Recheck"]


async def test_orders_paginates_and_filters(shop: Shop) -> None:
    ids = [await place(shop, "guide", user=2000 + n) for n in range(12)]
    paid = await paid_order(shop)
    await shop.send("/orders", ADMIN_ID)
    page = shop.last_text()
    labels = button_texts(page)
    assert labels[0].startswith(f"#{paid} ") and len(labels) == 11  # ten orders + Next
    assert labels[-1] == "Next ▶"
    nxt = markup_buttons(page)[-1].callback_data
    await shop.press(nxt, ADMIN_ID)
    second = button_texts(shop.last_text())
    assert [label.split()[0] for label in second[:-1]] == [f"#{i}" for i in reversed(ids[:3])]
    assert second[-1] == "⏮ First page"

    await shop.send("/orders paid", ADMIN_ID)
    assert [b.split()[0] for b in button_texts(shop.last_text())] == [f"#{paid}"]
    await shop.send("/orders refunded", ADMIN_ID)
    assert "No orders here" in shop.last_text().text
    await shop.send("/orders bogus", ADMIN_ID)
    answer = shop.last_text().text
    assert "Unknown status" in answer and all(state.value in answer for state in OrderStatus)
    await shop.send("/orders  Needs_Review ", ADMIN_ID)
    assert "No orders here" in shop.last_text().text

    show = markup_buttons(page)[0].callback_data
    await shop.press(show, ADMIN_ID)
    assert f"Order #{paid}" in shop.last_text().text


# --- /stats, /balance ---------------------------------------------------------------------------


async def test_stats_counts_sales_and_orders_needing_attention(shop: Shop) -> None:
    await paid_order(shop, "multi", 2)
    await paid_order(shop, "guide")
    odd = await paid_order(shop, "indie1")
    async with shop.ctx.db.transaction() as s:
        await s.execute(
            sa.update(Order).where(Order.id == odd).values(status=OrderStatus.NEEDS_REVIEW)
        )
    await place(shop, "solo")
    await shop.send("/stats", ADMIN_ID)
    text = shop.last_text().text
    assert "in USD" in text
    assert "Today (UTC): 2 orders, $6.25" in text
    assert "30 days: 2 orders, $6.25" in text
    assert "(<code>pending</code>): 1" in text and "(<code>needs_review</code>): 1" in text
    assert "Needing attention</b> (1 order)" in text
    assert button_texts(shop.last_text()) == [f"#{odd}"]
    assert ("stats", "", "shown") in await audit(shop)


async def test_balance_lists_every_asset(shop: Shop) -> None:
    shop.cp.balances = {"USDT": Decimal("12.5"), "TON": Decimal("0.000000001")}
    await shop.send("/balance", ADMIN_ID)
    text = shop.last_text().text
    assert "USDT: 12.50 / 0.00" in text
    assert "BTC: 0.00 / 0.00" in text  # every asset, the empty ones after
    assert text.index("USDT") < text.index("BTC")
    shop.cp.fail_next("getBalance", 500, times=2)
    await shop.send("/balance", ADMIN_ID)
    assert "did not answer" in shop.last_text().text
    assert [r for a, _, r in await audit(shop) if a == "balance"] == ["shown", "error APP_ERROR"]


# --- /stock and code uploads ------------------------------------------------------------------


async def test_stock_counts(shop: Shop) -> None:
    await place(shop, "multi", 2)
    await paid_order(shop, "multi", 1)
    await shop.send("/stock multi", ADMIN_ID)
    text = shop.last_text().text
    assert "Available: 2" in text and "Reserved: 2" in text and "Sold: 1" in text
    await shop.send("/stock guide", ADMIN_ID)
    assert "Unlimited" in shop.last_text().text
    await shop.send("/stock nope", ADMIN_ID)
    assert "No product" in shop.last_text().text


async def test_upload_adds_codes_skipping_duplicates(shop: Shop) -> None:
    content = b"NEW-1\r\nNEW-2\nMULTI-1\n  NEW-1  \n\nNEW-3"
    await send_document(shop, "codes.txt", b"\xef\xbb\xbf" + content, "multi")
    text = shop.last_text().text
    assert "Added 3 codes" in text and "3 duplicates or blank lines skipped" in text
    assert "Available now: 8" in text
    assert await counts(shop, "multi") == (8, 0, 0)
    codes = {u.code for u in await shop.rows(StockUnit, StockUnit.status == StockStatus.AVAILABLE)}
    assert {"NEW-1", "NEW-2", "NEW-3"} <= codes
    (entry,) = [a for a in await audit(shop) if a[0] == "stock.upload"]
    assert entry[1].startswith("multi codes.txt") and entry[2] == "added=3 skipped=3"


@pytest.mark.parametrize(
    ("name", "content", "caption", "size", "answer"),
    [
        ("codes.txt", b"\xff\xfeA\x00B\x00", "multi", 0, "not UTF-8"),
        ("codes.txt", b"GOOD-1\nBAD\x01CODE\n", "multi", 0, "Line 2"),
        ("codes.txt", b"X" * 600 + b"\n", "multi", 0, "Line 1"),
        ("codes.txt", b"\n \n", "multi", 0, "no codes"),
        ("codes.txt", b"A\n", "multi", 10 * 1024 * 1024, "too big"),
        ("codes.csv", b"A\n", "multi", 0, ".txt"),
        ("codes.txt", b"A\n", None, 0, "caption"),
        ("codes.txt", b"A\n", "nosuchsku", 0, "No product"),
        ("codes.txt", b"A\n", "guide", 0, "unlimited"),
    ],
)
async def test_bad_uploads_get_a_clear_answer_and_add_nothing(
    shop: Shop, name: str, content: bytes, caption: str | None, size: int, answer: str
) -> None:
    await send_document(shop, name, content, caption, size=size)
    assert answer in shop.last_text().text
    assert await counts(shop, "multi") == (5, 0, 0)


# --- /recheck -----------------------------------------------------------------------------------


async def test_recheck_settles_from_get_invoices(shop: Shop) -> None:
    order_id = await place(shop)
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    await shop.send(f"/recheck {order_id}", ADMIN_ID)
    assert "<b>active</b>" in shop.last_text().text
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    await shop.cp.pay(invoice_id, send_webhook=False)
    await shop.send(f"/recheck {order_id}", BOB)  # not an admin: nothing happens
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    await shop.send(f"/recheck {order_id}", ADMIN_ID)
    assert "<b>paid</b>" in shop.last_text().text
    assert (await shop.order(order_id)).status == OrderStatus.PAID
    assert len(await shop.outbox(order_id, kind="goods")) == 1
    assert any(
        str(invoice_id) in str(c.get("invoice_ids")) for c in shop.cp.calls_of("getInvoices")
    )
    results = [r for a, d, r in await audit(shop) if a == "recheck"]
    assert results == ["invoice active", "invoice paid"]


async def test_recheck_button_and_errors(shop: Shop) -> None:
    order_id = await place(shop)
    update = await shop.press(AdminOrder(action=AdminAction.RECHECK, order_id=order_id), ADMIN_ID)
    (answer,) = shop.answers_to(update)
    assert "active" in (answer.text or "") and answer.show_alert
    assert f"Order #{order_id}" in shop.last_text().text
    shop.cp.fail_next("getInvoices", 500, times=2)
    await shop.send(f"/recheck {order_id}", ADMIN_ID)
    assert "did not answer" in shop.last_text().text
    await shop.send("/recheck 987654", ADMIN_ID)
    assert "does not exist" in shop.last_text().text
    await shop.send("/recheck", ADMIN_ID)
    assert "Usage" in shop.last_text().text
