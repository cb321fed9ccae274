"""What the outbox worker sends for one outbox row: the row's facts made into a message.

`compose` is the one place a queued message becomes text. It runs when the message is
sent, outside every transaction: a settlement commits only the facts (kind, order,
recipient), and the order, its goods and its buyer are read here, in the recipient's
language. Rows that carry their own text (refund and expiry notices, …) are sent as stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from types import ModuleType

from aiogram.types import InlineKeyboardMarkup

from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.messages import MAX_INLINE_TEXT, goods
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as default_texts
from storage import OrderDetails, OutboxKind, OutboxMessage, get_order


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message: text (a caption when there is a document), buttons, and an
    optional document (name, bytes)."""

    text: str
    reply_markup: InlineKeyboardMarkup | None = None
    document_name: str | None = None
    document_data: bytes | None = None


def texts_for(language: str | None) -> ModuleType:
    """The texts in `language` (a customer's stored language; None: the shop's default).
    One language so far; the languages issue maps the code to its module here."""
    return default_texts


async def compose(ctx: ShopContext, message: OutboxMessage) -> Outgoing:
    """The message to send for this outbox row: its stored text, or the text of the fact
    it records, rendered from the order as it is now."""
    if message.text or message.document_data is not None:
        markup = None
        if message.reply_markup:
            markup = InlineKeyboardMarkup.model_validate(json.loads(message.reply_markup))
        return Outgoing(message.text, markup, message.document_name, message.document_data)
    render = _RENDER.get(message.kind)
    if render is None or message.order_id is None:
        raise ValueError(f"outbox row {message.id} has no text, and {message.kind!r} is no fact")
    details = await get_order(ctx.db, message.order_id)
    if details is None:
        raise LookupError(f"outbox row {message.id}: order {message.order_id} is gone")
    # Admins read the shop's default language (they have no stored choice of their own).
    to_buyer = message.kind in _TO_BUYER
    return render(details, texts_for(details.customer.language if to_buyer else None))


def _goods(details: OrderDetails, t: ModuleType) -> Outgoing:
    order_id = details.order.id
    delivered = goods(details.lines, details.products, details.codes)
    text = t.goods_message(order_id, delivered)
    if len(text) <= MAX_INLINE_TEXT:
        return Outgoing(text)
    return Outgoing(
        t.goods_document_caption(order_id, len(delivered)),
        document_name=f"order-{order_id}.txt",
        document_data=("\n".join(delivered) + "\n").encode(),
    )


def _summary(details: OrderDetails) -> str:
    return ", ".join(
        f"{escape(details.products[line.product_id].title)} × {line.quantity}"
        for line in details.lines
    )


def _paid(details: OrderDetails, t: ModuleType) -> str:
    order = details.order
    if order.paid_amount is None:
        return "?"
    return f"{t.plain(order.paid_amount)} {escape(order.paid_asset or '')}"


def _buyer(details: OrderDetails) -> str:
    c = details.customer
    return ta.buyer(c.telegram_id, c.username, c.blocked_bot)


def _admin_paid(late: bool) -> Callable[[OrderDetails, ModuleType], Outgoing]:
    def render(details: OrderDetails, t: ModuleType) -> Outgoing:
        order = details.order
        assert order.id is not None
        total = t.money(order.total, order.currency)
        summary, paid = _summary(details), _paid(details, t)
        text = ta.paid_alert(order.id, summary, total, paid, _buyer(details), late=late)
        return Outgoing(text, keyboards.admin_open_order(order.id))

    return render


def _admin_needs_refund(details: OrderDetails, t: ModuleType) -> Outgoing:
    order = details.order
    assert order.id is not None
    text = ta.needs_refund_alert(order.id, _paid(details, t), _summary(details), _buyer(details))
    return Outgoing(text, keyboards.admin_open_order(order.id))


def _admin_needs_review(details: OrderDetails, t: ModuleType) -> Outgoing:
    order = details.order
    assert order.id is not None
    total = t.money(order.total, order.currency)
    reason = order.attention_reason or ""
    text = ta.needs_review_alert(order.id, reason, _paid(details, t), total, _buyer(details))
    return Outgoing(text, keyboards.admin_open_order(order.id))


_TO_BUYER = {OutboxKind.GOODS, OutboxKind.LATE_NEEDS_REFUND, OutboxKind.UNDER_REVIEW}
_RENDER: dict[str, Callable[[OrderDetails, ModuleType], Outgoing]] = {
    OutboxKind.GOODS: _goods,
    OutboxKind.LATE_NEEDS_REFUND: lambda d, t: Outgoing(t.late_payment_needs_refund(d.order.id)),
    OutboxKind.UNDER_REVIEW: lambda d, t: Outgoing(t.payment_under_review(d.order.id)),
    OutboxKind.ADMIN_PAID: _admin_paid(late=False),
    OutboxKind.ADMIN_LATE_PAID: _admin_paid(late=True),
    OutboxKind.ADMIN_NEEDS_REFUND: _admin_needs_refund,
    OutboxKind.ADMIN_NEEDS_REVIEW: _admin_needs_review,
}
