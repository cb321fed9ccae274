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
from bot.i18n import language_of, use_language
from bot.screens import keyboards
from bot.screens.messages import MAX_INLINE_TEXT, buyer_text, goods, goods_by_product, items
from bot.screens.texts import en_admin as ta
from bot.screens.texts import en_growth as tg
from bot.screens.texts import texts as default_texts
from storage import (
    BroadcastStatus,
    Customer,
    OrderDetails,
    OutboxKind,
    OutboxMessage,
    get_broadcast,
    get_customer,
    get_order,
    referral_reward,
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message: text (a caption when there is a document), buttons, and an
    optional document (name, bytes); or the new text and buttons of a message sent before."""

    text: str
    reply_markup: InlineKeyboardMarkup | None = None
    document_name: str | None = None
    document_data: bytes | None = None
    edit_message_id: int | None = None  # edit this message of the chat instead of sending
    photo: str | None = None  # a photo's file_id: `text` is its caption


class BroadcastOver(Exception):
    """The broadcast of this outbox row was stopped: the row is not to be sent."""


def broadcast_outgoing(text: str, photo: str | None, reply_markup: str | None) -> Outgoing:
    """A broadcast's message as every customer gets it (the admin's preview is this too)."""
    markup = None
    if reply_markup:
        markup = InlineKeyboardMarkup.model_validate(json.loads(reply_markup))
    return Outgoing(text, markup, photo=photo)


def texts_for(language: str | None) -> ModuleType:
    """The texts module. It speaks the language of the moment: `compose` sets the
    recipient's (`use_language`) around everything it renders."""
    return default_texts


def customer_language(customer: Customer | None, default: str) -> str:
    """A recipient's language: their choice, else their Telegram language, else the default."""
    if customer is None:
        return language_of(None, None, default)
    return language_of(customer.chosen_language, customer.language, default)


async def compose(ctx: ShopContext, message: OutboxMessage) -> Outgoing:
    """The message to send for this outbox row: its stored text, or the text of the fact
    it records, rendered from the order as it is now."""
    if message.kind == OutboxKind.BROADCAST and message.broadcast_id is not None:
        broadcast = await get_broadcast(ctx.db, message.broadcast_id)
        if broadcast is None or broadcast.status != BroadcastStatus.RUNNING:
            raise BroadcastOver(message.broadcast_id)
        return broadcast_outgoing(broadcast.text, broadcast.photo, broadcast.reply_markup)
    if message.text or message.document_data is not None:
        markup = None
        if message.reply_markup:
            markup = InlineKeyboardMarkup.model_validate(json.loads(message.reply_markup))
        return Outgoing(message.text, markup, message.document_name, message.document_data)
    if message.kind == OutboxKind.REFERRAL_REWARD:
        return await _referral_reward(ctx, message)
    render, promise = _RENDER.get(message.kind), _PROMISES_HELP.get(message.kind)
    if (render is None and promise is None) or message.order_id is None:
        raise ValueError(f"outbox row {message.id} has no text, and {message.kind!r} is no fact")
    details = await get_order(ctx.db, message.order_id)
    if details is None:
        raise LookupError(f"outbox row {message.id}: order {message.order_id} is gone")
    default = ctx.settings.default_language
    if message.kind in _TO_BUYER:
        language = customer_language(details.customer, default)
    else:  # an admin: their own customer row's language when they have one
        language = customer_language(await get_customer(ctx.db, message.chat_id), default)
    with use_language(language):
        t = texts_for(language)
        if promise is not None:  # the buyer is told what happens next, and whom to ask
            return Outgoing(promise(t)(message.order_id, ctx.settings.support_contact))
        assert render is not None
        return render(details, t)


async def _referral_reward(ctx: ShopContext, message: OutboxMessage) -> Outgoing:
    """The referrer's code for their friend's first paid order (`order_id`), in the
    referrer's language; the friend is not named."""
    if message.order_id is None:
        raise ValueError(f"outbox row {message.id}: a referral reward without its order")
    reward = await referral_reward(ctx.db, message.order_id)
    if reward is None:
        raise LookupError(f"outbox row {message.id}: no reward for order {message.order_id}")
    referrer = await get_customer(ctx.db, message.chat_id)
    with use_language(customer_language(referrer, ctx.settings.default_language)):
        return Outgoing(tg.referral_reward(reward.code, reward.percent, reward.valid_until))


def _goods(details: OrderDetails, t: ModuleType) -> Outgoing:
    order_id = details.order.id
    delivered = goods(details.lines, details.products, details.codes)
    bought = items(details)
    if len({line.product_id for line in details.lines}) > 1:  # a cart's order
        return _goods_grouped(details, t, bought, len(delivered))
    text = t.goods_delivered(order_id, bought, delivered)
    if len(text) <= MAX_INLINE_TEXT:
        return Outgoing(text, keyboards.after_goods())
    return Outgoing(
        t.goods_delivered_caption(order_id, bought, len(delivered)),
        keyboards.after_goods(),
        document_name=f"order-{order_id}.txt",
        document_data=("\n".join(delivered) + "\n").encode(),
    )


MAX_CAPTION = 1024  # Telegram's limit for a document's caption


def _goods_grouped(
    details: OrderDetails, t: ModuleType, bought: list[tuple[str, int]], n: int
) -> Outgoing:
    """One message for every line's goods, under each product's title; a .txt when long."""
    order_id = details.order.id
    groups = goods_by_product(details.lines, details.products, details.codes)
    text = t.goods_delivered_grouped(order_id, bought, groups)
    if len(text) <= MAX_INLINE_TEXT:
        return Outgoing(text, keyboards.after_goods())
    caption = t.goods_delivered_caption(order_id, bought, n)
    if len(caption) > MAX_CAPTION:  # many long titles: the file lists them
        caption = t.goods_delivered_caption(order_id, [], n)
    return Outgoing(
        caption,
        keyboards.after_goods(),
        document_name=f"order-{order_id}.txt",
        document_data=t.goods_file_grouped(order_id, groups).encode(),
    )


def _order_message(details: OrderDetails, t: ModuleType) -> Outgoing:
    """The order message as the order is now: never a live Pay or Cancel once it was paid,
    expired or cancelled."""
    order = details.order
    if order.message_id is None:
        raise ValueError(f"order {order.id} has no order message to edit")
    text = t.order_message_settled(
        order.id,
        order.status,
        items(details),
        order.total,
        order.currency,
        discount=order.discount,
        promo_code=order.promo_code,
    )
    return Outgoing(text, keyboards.after_goods(), edit_message_id=order.message_id)


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


def _admin_paid(late: bool) -> Callable[[OrderDetails, ModuleType], Outgoing]:
    def render(details: OrderDetails, t: ModuleType) -> Outgoing:
        order = details.order
        assert order.id is not None
        total = ta.with_discount(
            t.money(order.total, order.currency), order.promo_code, order.discount, order.currency
        )
        summary, paid = _summary(details), _paid(details, t)
        text = ta.paid_alert(order.id, summary, total, paid, buyer_text(details), late=late)
        return Outgoing(text, keyboards.admin_open_order(order.id))

    return render


def _admin_needs_refund(details: OrderDetails, t: ModuleType) -> Outgoing:
    order = details.order
    assert order.id is not None
    text = ta.needs_refund_alert(
        order.id, _paid(details, t), _summary(details), buyer_text(details)
    )
    return Outgoing(text, keyboards.admin_open_order(order.id))


def _admin_needs_review(details: OrderDetails, t: ModuleType) -> Outgoing:
    order = details.order
    assert order.id is not None
    total = t.money(order.total, order.currency)
    reason = order.attention_reason or ""
    text = ta.needs_review_alert(order.id, reason, _paid(details, t), total, buyer_text(details))
    return Outgoing(text, keyboards.admin_open_order(order.id))


# The buyer's notices that promise a human's help: (texts) → text(order_id, SUPPORT_CONTACT).
_PROMISES_HELP: dict[str, Callable[[ModuleType], Callable[[int, str | None], str]]] = {
    OutboxKind.LATE_NEEDS_REFUND: lambda t: t.late_payment_needs_refund,
    OutboxKind.UNDER_REVIEW: lambda t: t.payment_under_review,
}
_TO_BUYER = {
    OutboxKind.GOODS,
    OutboxKind.LATE_NEEDS_REFUND,
    OutboxKind.UNDER_REVIEW,
    OutboxKind.ORDER_MESSAGE,
}
_RENDER: dict[str, Callable[[OrderDetails, ModuleType], Outgoing]] = {
    OutboxKind.GOODS: _goods,
    OutboxKind.ORDER_MESSAGE: _order_message,
    OutboxKind.ADMIN_PAID: _admin_paid(late=False),
    OutboxKind.ADMIN_LATE_PAID: _admin_paid(late=True),
    OutboxKind.ADMIN_NEEDS_REFUND: _admin_needs_refund,
    OutboxKind.ADMIN_NEEDS_REVIEW: _admin_needs_review,
}
