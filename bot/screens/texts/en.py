"""English texts. Values from the catalog or from users are HTML-escaped here, nowhere else."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

# Button words are fixed by PRODUCT.md §3.
BTN_CATALOG = "Catalog"
BTN_ORDERS = "My orders"
BTN_HELP = "Help"
BTN_BUY = "Buy"
BTN_PAY = "Pay"
BTN_CHECK = "Check payment"
BTN_CANCEL = "Cancel"
BTN_MINUS = "−"
BTN_PLUS = "+"
BTN_BACK = "◀ Back"
BTN_MENU = "◀ Menu"
BTN_NEXT = "Next ▶"
BTN_FIRST = "⏮ First page"
BTN_CONFIRM = "Confirm"
BTN_REFUND = "Refund"
BTN_RECHECK = "Recheck"
BTN_YES_CANCEL = "Yes, cancel"
BTN_KEEP = "Keep"
BTN_BUY_AGAIN = "🔁 Buy again"

STATUS = {
    "pending": "⏳ awaiting payment",
    "paid": "✅ paid",
    "delivered": "✅ paid and delivered",
    "expired": "⌛ expired",
    "cancelled": "✖ cancelled",
    "needs_review": "⚠ paid — being checked by the shop",
    "needs_refund": "⚠ paid — out of stock, a refund is on its way",
    "refunded": "↩ refunded",
    "partially_refunded": "↩ partially refunded",
}


def money(amount: Decimal, currency: str) -> str:
    return f"{plain(amount)} {escape(currency)}"


def plain(amount: Decimal) -> str:
    """A decimal without exponent and without trailing zeros beyond cents."""
    text = format(amount.normalize(), "f")
    if "." not in text or len(text.split(".")[1]) < 2:
        text = format(amount.quantize(Decimal("0.01")), "f")
    return text


def approx(amount: Decimal) -> str:
    """About six significant digits: 0.000153 BTC, 3.1245 TON, 9.99 USDT."""
    if amount >= 100:
        return format(amount.quantize(Decimal("0.01")), "f")
    digits = max(2, 6 - max(0, amount.adjusted() + 1))
    quantum = Decimal(1).scaleb(-min(digits, 8))
    return format(amount.quantize(quantum).normalize(), "f")


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def welcome(first_name: str | None) -> str:
    name = f", {escape(first_name)}" if first_name else ""
    return (
        f"Welcome{name}! 👋\n\n"
        "Browse the <b>Catalog</b>, tap <b>Buy</b>, pay with crypto through @CryptoBot, "
        "and your goods arrive right here in the chat."
    )


HELP = (
    "<b>How it works</b>\n"
    "1. Open the <b>Catalog</b> and pick a product.\n"
    "2. Choose the quantity with − and +, then tap <b>Buy</b>.\n"
    "3. Tap <b>Pay</b> and pay the invoice in Crypto Bot before it expires.\n"
    "4. Your goods arrive in this chat within seconds; <b>My orders</b> shows them again.\n\n"
    "Paid but nothing arrived? Tap <b>Check payment</b> on the order."
)


def contact(support: str) -> str:
    """SUPPORT_CONTACT as a link: a @username is linked by Telegram itself."""
    if support.startswith("@"):
        return escape(support)
    return f'<a href="{escape(support)}">{escape(support)}</a>'


def help_text(support: str | None) -> str:
    """HELP, and where a human answers when the shop has a support contact."""
    if not support:
        return HELP
    return f"{HELP}\nAnything else? Write to {contact(support)}."


def support_line(support: str | None, order_id: int) -> str:
    """Under an order and a notice that promises help: whom to write, quoting the order.
    Empty without a contact (the texts say what happens next without it)."""
    if not support:
        return ""
    return f"Questions? Write to {contact(support)} and quote order #{order_id}."


def with_support(text: str, support: str | None, order_id: int) -> str:
    line = support_line(support, order_id)
    return f"{text}\n\n{line}" if line else text


CATALOG_TITLE = "<b>Catalog</b> — choose a category:"
CATALOG_EMPTY = "The shop has no products yet. Please come back later."
CATEGORY_EMPTY = "Nothing here yet."
PRODUCT_GONE = "Sorry, this product is no longer available."
CATEGORY_GONE = "Sorry, this category no longer exists."
NOT_YOUR_ORDER = "This is not your order."
ORDER_NOT_FOUND = "Order not found."
SOMETHING_WRONG = "Sorry, something went wrong on our side. Please try again in a moment."
STALE_BUTTON = "This button no longer works. Use /start to begin again."


def category_title(title: str) -> str:
    return f"<b>{escape(title)}</b>"


def product_card(
    *,
    title: str,
    description: str,
    price: Decimal,
    currency: str,
    approximations: Sequence[tuple[str, Decimal]],
    in_stock: int | None,
    quantity: int,
) -> str:
    lines = [f"<b>{escape(title)}</b>"]
    if description:
        lines.append(escape(description))
    lines.append("")
    lines.append(f"Price: <b>{money(price, currency)}</b>")
    if approximations:
        lines.append(
            "≈ " + " · ".join(f"{approx(a)} {escape(asset)}" for asset, a in approximations)
        )
    if in_stock is None:
        lines.append("In stock: ✔ available")
    elif in_stock == 0:
        lines.append("In stock: <b>sold out</b>")
    else:
        lines.append(f"In stock: {in_stock}")
    if in_stock != 0:
        lines.append(f"Quantity: <b>{quantity}</b> — total {money(price * quantity, currency)}")
    return "\n".join(lines)


OUT_OF_STOCK = "Sorry, there is not enough stock left for that quantity. Please choose fewer."


def only_left(left: int) -> str:
    """Out of stock at Buy, while some units remain (an alert: short)."""
    return f"Sorry, only {left} left. Please choose {left} or fewer."


QTY_LIMIT = "That is the most you can buy in one order."
QTY_MIN = "The quantity cannot go below 1."
PAYMENTS_DOWN = (
    "Sorry, the payment service is not answering right now, so no order was placed. "
    "Please try again in a few minutes."
)
# Check payment: the order exists, and a payment made meanwhile is not lost (an alert: ≤200).
CHECK_PAYMENTS_DOWN = (
    "The payment service could not be reached just now. If you have already paid, your "
    "goods will be delivered here automatically. Please try again in a minute."
)


def too_many_unpaid(limit: int) -> str:
    return (
        f"You already have {limit} unpaid orders. Pay or cancel one of them in "
        "<b>My orders</b> before placing another."
    )


def count(n: int, one: str, many: str | None = None) -> str:
    """“1 order”, “2 orders”."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def duration(seconds: int) -> str:
    """How long, in the largest unit that stays exact enough: 45 seconds, 15 minutes,
    3 hours, 2 days."""
    if seconds < 60:
        return count(seconds, "second")
    if seconds < 2 * 3600:
        return count(-(-seconds // 60), "minute")
    if seconds < 2 * 86400:
        return count(-(-seconds // 3600), "hour")
    return count(-(-seconds // 86400), "day")


def order_created(
    order_id: int,
    item: str,
    quantity: int,
    total: Decimal,
    currency: str,
    deadline: datetime,
    *,
    ttl_seconds: int,
    approximations: Sequence[tuple[str, Decimal]] = (),
    discount: Decimal = Decimal(0),
    promo_code: str | None = None,
) -> str:
    until = deadline.strftime("%H:%M UTC") if ttl_seconds < 20 * 3600 else when(deadline)
    lines = [
        f"<b>Order #{order_id}</b>",
        f"{escape(item)} × {quantity}",
        *([discount_line(promo_code, discount, currency)] if promo_code and discount else []),
        f"Total: <b>{money(total, currency)}</b>",
    ]
    if approximations:
        lines.append(
            "≈ " + " · ".join(f"{approx(a)} {escape(asset)}" for asset, a in approximations)
        )
    lines += [
        "",
        f"Pay within <b>{duration(ttl_seconds)}</b>, until <b>{until}</b>: "
        "the goods are reserved for you until then. Tap <b>Pay</b> to pay in Crypto Bot.",
        "Once you have paid, the goods arrive here by themselves.",
    ]
    return "\n".join(lines)


def invoice_description(order_id: int, item: str, quantity: int) -> str:
    return f"Order #{order_id}: {item} × {quantity}"[:1024]


ROW_TITLE_MAX = 20  # a My orders row is a button: a long title is shortened


def order_row(
    order_id: int,
    items: Sequence[tuple[str, int]],
    total: Decimal,
    currency: str,
    status: str,
    created: datetime,
) -> str:
    """A My orders row, short enough for a button: #12 · 2 Dec · Witcher 3 ×1 · 9.99 USD · ✅"""
    parts = [f"#{order_id}", f"{created.day} {created:%b}"]
    if items:
        title, quantity = items[0]
        if len(title) > ROW_TITLE_MAX:
            title = title[: ROW_TITLE_MAX - 1].rstrip() + "…"
        more = f" +{len(items) - 1}" if len(items) > 1 else ""
        parts.append(f"{title} ×{quantity}{more}")
    parts.append(f"{plain(total)} {currency}")
    parts.append(STATUS.get(status, status).split(" ", 1)[0])
    return " · ".join(parts)


ORDERS_TITLE = "<b>My orders</b> (newest first):"
ORDERS_EMPTY = "You have no orders yet. Open the <b>Catalog</b> to buy something."


def order_details(
    *,
    order_id: int,
    status: str,
    lines: Iterable[tuple[str, int]],
    total: Decimal,
    currency: str,
    created: datetime,
    deadline: datetime | None,
    paid_asset: str | None,
    paid_amount: Decimal | None,
    goods: Sequence[str],
    discount: Decimal = Decimal(0),
    promo_code: str | None = None,
) -> str:
    parts = [f"<b>Order #{order_id}</b> — {STATUS.get(status, escape(status))}"]
    parts += [f"{escape(title)} × {quantity}" for title, quantity in lines]
    if promo_code and discount:
        parts.append(discount_line(promo_code, discount, currency))
    parts.append(f"Total: {money(total, currency)}")
    parts.append(f"Placed: {when(created)}")
    if status == "pending" and deadline is not None:
        parts.append(f"Pay before: {when(deadline)}")
    if paid_asset and paid_amount is not None:
        parts.append(f"Paid: {plain(paid_amount)} {escape(paid_asset)}")
    if goods:
        parts.append("")
        parts.append("<b>Your goods:</b>")
        parts += [f"<code>{escape(item)}</code>" for item in goods]
    return "\n".join(parts)


def _goods_item(item: str) -> str:
    """A link is tappable; anything else is a code, copyable with one tap."""
    if item.startswith(("https://", "http://")) and not any(c.isspace() for c in item):
        return f'<a href="{escape(item, quote=True)}">{escape(item)}</a>'
    return f"<code>{escape(item)}</code>"


def _bought(items: Iterable[tuple[str, int]]) -> str:
    return "\n".join(f"{escape(title)} × {quantity}" for title, quantity in items)


GOODS_KEPT = "They stay in <b>My orders</b>, should you need them again."


def goods_delivered(order_id: int, items: Iterable[tuple[str, int]], goods: Sequence[str]) -> str:
    """The goods message: what was bought, the goods, and where to find them again."""
    body = "\n".join(_goods_item(item) for item in goods)
    return (
        f"✅ <b>Order #{order_id} is paid</b> — thank you!\n{_bought(items)}\n\n"
        f"Your goods:\n{body}\n\n{GOODS_KEPT}"
    )


def goods_delivered_caption(order_id: int, items: Iterable[tuple[str, int]], n: int) -> str:
    return (
        f"✅ <b>Order #{order_id} is paid</b> — thank you!\n{_bought(items)}\n\n"
        f"Your {count(n, 'item')} are in the file. {GOODS_KEPT}"
    )


def goods_in_file(n: int) -> str:
    """Under an order whose goods are too long for one message: they follow as a file."""
    return f"<b>Your goods:</b> {count(n, 'item')}, in the file below."


def already_placed(order_id: int) -> str:
    return f"Order #{order_id} is already placed."


PLACING = "Your order is being placed…"


def order_status_note(order_id: int, status: str) -> str:
    return f"Order #{order_id} is {STATUS.get(status, status)}."


def order_expired(order_id: int) -> str:
    return (
        f"⌛ Order #{order_id} expired before it was paid, so the reservation was released. "
        "You can order again from the <b>Catalog</b>."
    )


def order_message_settled(
    order_id: int,
    status: str,
    items: Iterable[tuple[str, int]],
    total: Decimal,
    currency: str,
    *,
    discount: Decimal = Decimal(0),
    promo_code: str | None = None,
) -> str:
    """The order message once the order is no longer awaiting payment: its state, and no
    Pay or Cancel."""
    after = {
        "paid": "Your goods are in the message below, and in <b>My orders</b>.",
        "delivered": "Your goods are in the message below, and in <b>My orders</b>.",
        "expired": "It expired before it was paid; nothing was charged.",
        "cancelled": "Nothing was charged.",
    }.get(status, "")
    lines = [f"<b>Order #{order_id}</b> — {STATUS.get(status, escape(status))}"]
    lines += [f"{escape(title)} × {quantity}" for title, quantity in items]
    if promo_code and discount:
        lines.append(discount_line(promo_code, discount, currency))
    lines.append(f"Total: {money(total, currency)}")
    if after:
        lines += ["", after]
    return "\n".join(lines)


def order_cancelled(order_id: int) -> str:
    return f"✖ Order #{order_id} is cancelled. Nothing was charged."


def confirm_cancel(order_id: int) -> str:
    return (
        f"Cancel order #{order_id}? The reserved goods go back on sale and its invoice "
        "can no longer be paid."
    )


def cannot_cancel(order_id: int, status: str) -> str:
    return f"Order #{order_id} can no longer be cancelled: it is {STATUS.get(status, status)}."


def payment_status(order_id: int, invoice_status: str) -> str:
    if invoice_status == "active":
        return f"Order #{order_id}: no payment yet. Tap Pay to pay the invoice."
    if invoice_status == "expired":
        return (
            f"Order #{order_id}: the invoice has expired, so nothing can be paid on it. "
            "Tap Buy again to order anew."
        )
    return f"Order #{order_id}: payment received — your goods are on their way."


def late_payment_needs_refund(order_id: int, support: str | None = None) -> str:
    text = (
        f"⚠ Your payment for order #{order_id} arrived after the order expired, and the item "
        "has sold out meanwhile. The shop has been told and will refund the payment to your "
        "Crypto Bot wallet; you will get a message here when the refund is sent."
    )
    return with_support(text, support, order_id)


def payment_under_review(order_id: int, support: str | None = None) -> str:
    text = (
        f"⚠ We received a payment for order #{order_id} that does not match the order. "
        "The shop has been told and will check it by hand: you will get either your goods "
        "or a refund, with a message here either way."
    )
    return with_support(text, support, order_id)


def refund_sent_to_buyer(
    order_id: int, amount: Decimal, asset: str, support: str | None = None
) -> str:
    text = (
        f"↩ A refund of {plain(amount)} {escape(asset)} for order #{order_id} was sent "
        "to your Crypto Bot wallet. It is there now: open @CryptoBot to see it."
    )
    return with_support(text, support, order_id)


# --- promo codes (PRODUCT.md §3.1) ---------------------------------------------------------
BTN_PROMO = "Promo code"
BTN_BACK_TO_PRODUCT = "◀ Back to the product"
PROMO_ASK = (
    "Send me your <b>promo code</b> as a message. The card then shows the price with the "
    "discount, and <b>Buy</b> uses it."
)
PROMO_EMPTY = "That does not look like a promo code. Please send the code as text."

_PROMO_REFUSALS = {
    "unknown": "There is no promo code {code}. Please check the spelling.",
    "switched_off": "The promo code {code} has been switched off.",
    "expired": "The promo code {code} has expired.",
    "used_up": "The promo code {code} has been used up.",
    "already_used": "You have already used the promo code {code}.",
    "not_for_these": "The promo code {code} does not apply to these products.",
    "zero_total": (
        "The promo code {code} would bring the total to zero, and a payment cannot be for "
        "nothing, so it cannot be used on this order."
    ),
}


def promo_refusal(
    reason: str, code: str, minimum: Decimal | None = None, currency: str = ""
) -> str:
    """One sentence: why the code does not apply (`reason` is a storage.PromoRefusal)."""
    shown = f"<b>{escape(code.upper())}</b>"
    if reason == "below_minimum":
        least = money(minimum, currency) if minimum is not None else "a minimum"
        return f"The promo code {shown} needs an order of at least {least}."
    return _PROMO_REFUSALS.get(reason, "The promo code {code} cannot be used.").format(code=shown)


def discount_line(code: str, discount: Decimal, currency: str) -> str:
    """The discount on its own line (card, cart, order)."""
    return f"Promo <b>{escape(code.upper())}</b>: −{money(discount, currency)}"


def promo_total(code: str, discount: Decimal, total: Decimal, currency: str) -> str:
    """Under a price: the discount, then the new total."""
    return (
        f"{discount_line(code, discount, currency)}\n"
        f"Total with the promo code: <b>{money(total, currency)}</b>"
    )


def promo_not_applied(refusal_sentence: str) -> str:
    """On a card whose saved code does not apply to it."""
    return f"🏷 {refusal_sentence} Buy charges the full price."


def promo_forgotten(refusal_sentence: str) -> str:
    """On a card: the saved code can no longer be used by anyone, so it was removed."""
    return f"🏷 {refusal_sentence} It was removed; Buy charges the full price."


def promo_dropped(refusal_sentence: str) -> str:
    """Buy refused because the saved code no longer applies (an alert: short)."""
    return f"{refusal_sentence} The code was removed; tap Buy again to pay the full price."
