"""The order message (Buy's answer, with Pay, Check payment and Cancel) follows the order:
once it is paid, expired or cancelled, no live Pay or Cancel is left on it."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import EditMessageText

from bot.callbacks import OrderAction, OrderButton, ProductAction, ProductCard
from bot.handlers import shop as shop_handlers
from bot.jobs import expire, reconcile
from bot.runtime.delivery import OutboxWorker
from storage import OrderStatus, OutboxKind, OutboxStatus, record_order_message
from tests.bot.conftest import ALICE, Shop, button_texts, next_id


async def place(shop: Shop, sku: str = "multi") -> tuple[int, int]:
    """Tap Buy on a product card; the new order's id and the order message's id."""
    message_id = next_id()
    await shop.press(ProductCard(action=ProductAction.BUY, sku=sku, qty=1), message_id=message_id)
    (order,) = [o for o in await shop.orders() if o.status == OrderStatus.PENDING]
    assert order.id is not None
    assert "Pay" in button_texts(shop.last_text())
    return order.id, message_id


def edits_of(shop: Shop, message_id: int) -> list[Any]:
    return [
        m
        for m in shop.session.accepted
        if isinstance(m, EditMessageText) and m.message_id == message_id
    ]


async def test_a_paid_order_message_loses_pay_and_cancel(shop: Shop) -> None:
    order_id, message_id = await place(shop)
    order = await shop.order(order_id)
    assert (order.message_chat_id, order.message_id) == (ALICE, message_id)
    assert order.invoice_id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1

    await OutboxWorker(shop.ctx).drain_once()
    last = edits_of(shop, message_id)[-1]
    assert f"Order #{order_id}" in last.text and "paid" in last.text
    assert not {"Pay", "Check payment", "Cancel"} & set(button_texts(last))
    assert button_texts(last) == ["My orders", "Catalog"]
    (fact,) = await shop.outbox(order_id, kind=OutboxKind.ORDER_MESSAGE)
    assert fact.status == OutboxStatus.SENT


async def test_an_expired_order_message_loses_pay_and_cancel(shop: Shop) -> None:
    order_id, message_id = await place(shop)
    shop.clock.advance(901)
    assert await expire(shop.ctx) == 1

    await OutboxWorker(shop.ctx).drain_once()
    last = edits_of(shop, message_id)[-1]
    assert f"Order #{order_id}" in last.text and "expired" in last.text
    assert not {"Pay", "Cancel"} & set(button_texts(last))


async def test_cancelled_from_my_orders_the_order_message_loses_pay_too(shop: Shop) -> None:
    order_id, message_id = await place(shop)
    # Cancelled on another message (the order opened from My orders).
    await shop.press(OrderButton(action=OrderAction.CANCEL, order_id=order_id))
    assert (await shop.order(order_id)).status == OrderStatus.CANCELLED
    assert edits_of(shop, message_id)[-1].reply_markup is not None  # still the Pay one

    await OutboxWorker(shop.ctx).drain_once()
    last = edits_of(shop, message_id)[-1]
    assert "cancelled" in last.text
    assert not {"Pay", "Cancel"} & set(button_texts(last))


async def test_an_edit_telegram_finds_unchanged_is_done_not_retried(shop: Shop) -> None:
    order_id, _ = await place(shop)
    await shop.press(OrderButton(action=OrderAction.CANCEL, order_id=order_id))
    shop.session.fail["editMessageText"] = [
        lambda method: TelegramBadRequest(method, "Bad Request: message is not modified")
    ]
    await OutboxWorker(shop.ctx).drain_once()
    (fact,) = await shop.outbox(order_id, kind=OutboxKind.ORDER_MESSAGE)
    assert fact.status == OutboxStatus.SENT and fact.attempts == 1


async def test_paid_before_the_order_message_was_recorded_it_shows_paid(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook can land between Buy's answer and its recording of the message: then
    nothing is queued to edit the message, and Buy shows the paid order itself."""

    async def paid_first(db: Any, order_id: int, chat_id: int, message_id: int) -> Any:
        invoice_id = (await shop.order(order_id)).invoice_id
        assert invoice_id is not None
        await shop.cp.pay(invoice_id, send_webhook=False)
        assert await reconcile(shop.ctx) == 1
        return await record_order_message(db, order_id, chat_id, message_id)

    monkeypatch.setattr(shop_handlers, "record_order_message", paid_first)
    message_id = next_id()
    await shop.press(ProductCard(action=ProductAction.BUY, sku="multi"), message_id=message_id)
    (order,) = await shop.orders()
    assert order.status == OrderStatus.PAID and order.message_id == message_id
    assert await shop.outbox(order.id, kind=OutboxKind.ORDER_MESSAGE) == []
    last = edits_of(shop, message_id)[-1]
    assert "paid" in last.text and not {"Pay", "Cancel"} & set(button_texts(last))
