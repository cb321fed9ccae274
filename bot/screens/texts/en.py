"""The shopper's texts, in English (the msgids) and, through bot/locales, in Russian.
Values from the catalog or from users are HTML-escaped here, nowhere else.

Every text is one of: a constant `X = __("…")` (read in the current language wherever
`t.X` is read), or a function returning `_("… {placeholder} …").format(placeholder=…)`,
with `ngettext` for counts. How to add one: bot/locales/README.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal

from bot.i18n import _, __, current_language, ngettext, translated

# Button words are fixed by PRODUCT.md §3.
BTN_CATALOG = __("Catalog")
BTN_ORDERS = __("My orders")
BTN_HELP = __("Help")
BTN_BUY = __("Buy")
BTN_PAY = __("Pay")
BTN_CHECK = __("Check payment")
BTN_CANCEL = __("Cancel")
BTN_MINUS = "−"
BTN_PLUS = "+"
BTN_BACK = __("◀ Back")
BTN_MENU = __("◀ Menu")
BTN_NEXT = __("Next ▶")
BTN_FIRST = __("⏮ First page")
BTN_CONFIRM = __("Confirm")
BTN_REFUND = __("Refund")
BTN_RECHECK = __("Recheck")
BTN_YES_CANCEL = __("Yes, cancel")
BTN_KEEP = __("Keep")
BTN_BUY_AGAIN = __("🔁 Buy again")

BTN_LANGUAGE = __("🌐 Language")

STATUS = {
    "pending": __("⏳ awaiting payment"),
    "paid": __("✅ paid"),
    "delivered": __("✅ paid and delivered"),
    "expired": __("⌛ expired"),
    "cancelled": __("✖ cancelled"),
    "needs_review": __("⚠ paid — being checked by the shop"),
    "needs_refund": __("⚠ paid — out of stock, a refund is on its way"),
    "refunded": __("↩ refunded"),
    "partially_refunded": __("↩ partially refunded"),
}


def status_text(status: str) -> str:
    """An order's state in words, in the current language (HTML-safe)."""
    known = STATUS.get(status)
    return _(known) if known is not None else escape(status)


# Numbers, money and dates: here and nowhere else, formatted for the current language by
# Babel (en: $9.99, 1,234.50; ru: 9,99 $, 1 234,50).


def money(amount: Decimal, currency: str) -> str:
    """A price in the shop's currency: $9.99, 9,99 $ (never rounded away: 0.005 stays)."""
    text = format_currency(amount, currency, locale=current_language(), decimal_quantization=False)
    return escape(text)


def plain(amount: Decimal) -> str:
    """An exact amount (crypto keeps every digit), at least to cents: 1.50, 0.00012345."""
    text = format(amount.normalize(), "f")
    places = len(text.split(".")[1]) if "." in text else 0
    pattern = "#,##0." + "0" * max(2, places)
    return format_decimal(amount, pattern, locale=current_language(), decimal_quantization=False)


def approx(amount: Decimal) -> str:
    """About six significant digits: 0.000153 BTC, 3.1245 TON, 9.99 USDT."""
    if amount >= 100:
        value = amount.quantize(Decimal("0.01"))
    else:
        digits = max(2, 6 - max(0, amount.adjusted() + 1))
        value = amount.quantize(Decimal(1).scaleb(-min(digits, 8))).normalize()
    return format_decimal(value, locale=current_language(), decimal_quantization=False)


def when(moment: datetime) -> str:
    """A date and time, in UTC: Dec 2, 2026, 14:05 UTC; 2 дек. 2026 г., 14:05 UTC."""
    language = current_language()
    date = format_date(moment.astimezone(UTC), "medium", locale=language)
    return f"{date}, {format_time(moment, 'HH:mm', tzinfo=UTC, locale=language)} UTC"


def clock(moment: datetime) -> str:
    """A time of day, in UTC: 14:05 UTC."""
    return format_time(moment, "HH:mm", tzinfo=UTC, locale=current_language()) + " UTC"


def day(moment: datetime) -> str:
    """A short day: 2 Dec; 2 дек."""
    return format_date(moment.astimezone(UTC), "d MMM", locale=current_language())


def welcome(first_name: str | None) -> str:
    if first_name:
        hello = _("Welcome, {name}! 👋").format(name=escape(first_name))
    else:
        hello = _("Welcome! 👋")
    return (
        hello
        + "\n\n"
        + _(
            "Browse the <b>Catalog</b>, tap <b>Buy</b>, pay with crypto through @CryptoBot, "
            "and your goods arrive right here in the chat."
        )
    )


HELP = __(
    "<b>How it works</b>\n"
    "1. Open the <b>Catalog</b> and pick a product.\n"
    "2. Choose the quantity with − and +, then tap <b>Buy</b>.\n"
    "3. Tap <b>Pay</b> and pay the invoice in Crypto Bot before it expires.\n"
    "4. Your goods arrive in this chat within seconds; <b>My orders</b> shows them again.\n"
    "Several products? Tap <b>Add to cart</b> on each, then <b>Checkout</b> in your "
    "<b>Cart</b> (/cart): one order, one invoice.\n\n"
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
        return _(HELP)
    return _(HELP) + "\n" + _("Anything else? Write to {contact}.").format(contact=contact(support))


def support_line(support: str | None, order_id: int) -> str:
    """Under an order and a notice that promises help: whom to write, quoting the order.
    Empty without a contact (the texts say what happens next without it)."""
    if not support:
        return ""
    return _("Questions? Write to {contact} and quote order #{order_id}.").format(
        contact=contact(support), order_id=order_id
    )


def with_support(text: str, support: str | None, order_id: int) -> str:
    line = support_line(support, order_id)
    return f"{text}\n\n{line}" if line else text


CATALOG_TITLE = __("<b>Catalog</b> — choose a category:")
CATALOG_EMPTY = __("The shop has no products yet. Please come back later.")
CATEGORY_EMPTY = __("Nothing here yet.")
PRODUCT_GONE = __("Sorry, this product is no longer available.")
CATEGORY_GONE = __("Sorry, this category no longer exists.")
NOT_YOUR_ORDER = __("This is not your order.")
ORDER_NOT_FOUND = __("Order not found.")
SOMETHING_WRONG = __("Sorry, something went wrong on our side. Please try again in a moment.")
STALE_BUTTON = __("This button no longer works. Use /start to begin again.")


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
    lines.append(_("Price: <b>{price}</b>").format(price=money(price, currency)))
    if approximations:
        lines.append(
            "≈ " + " · ".join(f"{approx(a)} {escape(asset)}" for asset, a in approximations)
        )
    if in_stock is None:
        lines.append(_("In stock: ✔ available"))
    elif in_stock == 0:
        lines.append(_("In stock: <b>sold out</b>"))
    else:
        lines.append(_("In stock: {n}").format(n=in_stock))
    if in_stock != 0:
        total = money(price * quantity, currency)
        lines.append(
            _("Quantity: <b>{quantity}</b> — total {total}").format(quantity=quantity, total=total)
        )
    return "\n".join(lines)


OUT_OF_STOCK = __("Sorry, there is not enough stock left for that quantity. Please choose fewer.")


def only_left(left: int) -> str:
    """Out of stock at Buy, while some units remain (an alert: short)."""
    return ngettext(
        "Sorry, only {n} left. Please choose {n} or fewer.",
        "Sorry, only {n} left. Please choose {n} or fewer.",
        left,
    ).format(n=left)


QTY_LIMIT = __("That is the most you can buy in one order.")
QTY_MIN = __("The quantity cannot go below 1.")
PAYMENTS_DOWN = __(
    "Sorry, the payment service is not answering right now, so no order was placed. "
    "Please try again in a few minutes."
)
# Check payment: the order exists, and a payment made meanwhile is not lost (an alert: ≤200).
CHECK_PAYMENTS_DOWN = __(
    "The payment service could not be reached just now. If you have already paid, your "
    "goods will be delivered here automatically. Please try again in a minute."
)


def too_many_unpaid(limit: int) -> str:
    return ngettext(
        "You already have {n} unpaid order. Pay or cancel it in <b>My orders</b> before "
        "placing another.",
        "You already have {n} unpaid orders. Pay or cancel one of them in <b>My orders</b> "
        "before placing another.",
        limit,
    ).format(n=limit)


def count(n: int, one: str, many: str | None = None) -> str:
    """“1 order”, “2 orders” (English only: a translated text uses `ngettext`)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def items_count(n: int) -> str:
    return ngettext("{n} item", "{n} items", n).format(n=n)


def duration(seconds: int) -> str:
    """How long, in the largest unit that stays exact enough: 45 seconds, 15 minutes,
    3 hours, 2 days."""
    if seconds < 60:
        return ngettext("{n} second", "{n} seconds", seconds).format(n=seconds)
    if seconds < 2 * 3600:
        n = -(-seconds // 60)
        return ngettext("{n} minute", "{n} minutes", n).format(n=n)
    if seconds < 2 * 86400:
        n = -(-seconds // 3600)
        return ngettext("{n} hour", "{n} hours", n).format(n=n)
    n = -(-seconds // 86400)
    return ngettext("{n} day", "{n} days", n).format(n=n)


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
    until = clock(deadline) if ttl_seconds < 20 * 3600 else when(deadline)
    lines = [
        _("<b>Order #{order_id}</b>").format(order_id=order_id),
        f"{escape(item)} × {quantity}",
        *([discount_line(promo_code, discount, currency)] if promo_code and discount else []),
        _("Total: <b>{total}</b>").format(total=money(total, currency)),
    ]
    if approximations:
        lines.append(
            "≈ " + " · ".join(f"{approx(a)} {escape(asset)}" for asset, a in approximations)
        )
    lines += [
        "",
        _(
            "Pay within <b>{duration}</b>, until <b>{until}</b>: the goods are reserved for "
            "you until then. Tap <b>Pay</b> to pay in Crypto Bot."
        ).format(duration=duration(ttl_seconds), until=until),
        _("Once you have paid, the goods arrive here by themselves."),
    ]
    return "\n".join(lines)


def invoice_description(order_id: int, item: str, quantity: int) -> str:
    text = _("Order #{order_id}: {item} × {quantity}")
    return text.format(order_id=order_id, item=item, quantity=quantity)[:1024]


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
    parts = [f"#{order_id}", day(created)]
    if items:
        title, quantity = items[0]
        if len(title) > ROW_TITLE_MAX:
            title = title[: ROW_TITLE_MAX - 1].rstrip() + "…"
        more = f" +{len(items) - 1}" if len(items) > 1 else ""
        parts.append(f"{title} ×{quantity}{more}")
    parts.append(money(total, currency))
    parts.append((_(STATUS[status]) if status in STATUS else status).split(" ", 1)[0])
    return " · ".join(parts)


ORDERS_TITLE = __("<b>My orders</b> (newest first):")
ORDERS_EMPTY = __("You have no orders yet. Open the <b>Catalog</b> to buy something.")


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
    parts = [order_heading(order_id, status)]
    parts += [f"{escape(title)} × {quantity}" for title, quantity in lines]
    if promo_code and discount:
        parts.append(discount_line(promo_code, discount, currency))
    parts.append(_("Total: {total}").format(total=money(total, currency)))
    parts.append(_("Placed: {when}").format(when=when(created)))
    if status == "pending" and deadline is not None:
        parts.append(_("Pay before: {when}").format(when=when(deadline)))
    if paid_asset and paid_amount is not None:
        paid = f"{plain(paid_amount)} {escape(paid_asset)}"
        parts.append(_("Paid: {paid}").format(paid=paid))
    if goods:
        parts.append("")
        parts.append(_("<b>Your goods:</b>"))
        parts += [f"<code>{escape(item)}</code>" for item in goods]
    return "\n".join(parts)


def order_heading(order_id: int, status: str) -> str:
    return _("<b>Order #{order_id}</b> — {status}").format(
        order_id=order_id, status=status_text(status)
    )


def _goods_item(item: str) -> str:
    """A link is tappable; anything else is a code, copyable with one tap."""
    if item.startswith(("https://", "http://")) and not any(c.isspace() for c in item):
        return f'<a href="{escape(item, quote=True)}">{escape(item)}</a>'
    return f"<code>{escape(item)}</code>"


def _bought(items: Iterable[tuple[str, int]]) -> str:
    return "\n".join(f"{escape(title)} × {quantity}" for title, quantity in items)


GOODS_KEPT = __("They stay in <b>My orders</b>, should you need them again.")


def goods_delivered(order_id: int, items: Iterable[tuple[str, int]], goods: Sequence[str]) -> str:
    """The goods message: what was bought, the goods, and where to find them again."""
    body = "\n".join(_goods_item(item) for item in goods)
    head = _("✅ <b>Order #{order_id} is paid</b> — thank you!").format(order_id=order_id)
    yours = _("Your goods:")
    return f"{head}\n{_bought(items)}\n\n{yours}\n{body}\n\n{_(GOODS_KEPT)}"


def goods_delivered_caption(order_id: int, items: Iterable[tuple[str, int]], n: int) -> str:
    head = _("✅ <b>Order #{order_id} is paid</b> — thank you!").format(order_id=order_id)
    in_file = ngettext(
        "Your {n} item is in the file.", "Your {n} items are in the file.", n
    ).format(n=n)
    return f"{head}\n{_bought(items)}\n\n{in_file} {_(GOODS_KEPT)}"


def goods_in_file(n: int) -> str:
    """Under an order whose goods are too long for one message: they follow as a file."""
    return ngettext(
        "<b>Your goods:</b> {n} item, in the file below.",
        "<b>Your goods:</b> {n} items, in the file below.",
        n,
    ).format(n=n)


def already_placed(order_id: int) -> str:
    return _("Order #{order_id} is already placed.").format(order_id=order_id)


PLACING = __("Your order is being placed…")


def order_status_note(order_id: int, status: str) -> str:
    return _("Order #{order_id} is {status}.").format(order_id=order_id, status=status_text(status))


def order_expired(order_id: int) -> str:
    return _(
        "⌛ Order #{order_id} expired before it was paid, so the reservation was released. "
        "You can order again from the <b>Catalog</b>."
    ).format(order_id=order_id)


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
    goods_below = _("Your goods are in the message below, and in <b>My orders</b>.")
    after = {
        "paid": goods_below,
        "delivered": goods_below,
        "expired": _("It expired before it was paid; nothing was charged."),
        "cancelled": _("Nothing was charged."),
    }.get(status, "")
    lines = [order_heading(order_id, status)]
    lines += [f"{escape(title)} × {quantity}" for title, quantity in items]
    if promo_code and discount:
        lines.append(discount_line(promo_code, discount, currency))
    lines.append(_("Total: {total}").format(total=money(total, currency)))
    if after:
        lines += ["", after]
    return "\n".join(lines)


def order_cancelled(order_id: int) -> str:
    return _("✖ Order #{order_id} is cancelled. Nothing was charged.").format(order_id=order_id)


def confirm_cancel(order_id: int) -> str:
    return _(
        "Cancel order #{order_id}? The reserved goods go back on sale and its invoice "
        "can no longer be paid."
    ).format(order_id=order_id)


def cannot_cancel(order_id: int, status: str) -> str:
    return _("Order #{order_id} can no longer be cancelled: it is {status}.").format(
        order_id=order_id, status=status_text(status)
    )


def payment_status(order_id: int, invoice_status: str) -> str:
    if invoice_status == "active":
        text = _("Order #{order_id}: no payment yet. Tap Pay to pay the invoice.")
    elif invoice_status == "expired":
        text = _(
            "Order #{order_id}: the invoice has expired, so nothing can be paid on it. "
            "Tap Buy again to order anew."
        )
    else:
        text = _("Order #{order_id}: payment received — your goods are on their way.")
    return text.format(order_id=order_id)


def late_payment_needs_refund(order_id: int, support: str | None = None) -> str:
    text = _(
        "⚠ Your payment for order #{order_id} arrived after the order expired, and the item "
        "has sold out meanwhile. The shop has been told and will refund the payment to your "
        "Crypto Bot wallet; you will get a message here when the refund is sent."
    ).format(order_id=order_id)
    return with_support(text, support, order_id)


def payment_under_review(order_id: int, support: str | None = None) -> str:
    text = _(
        "⚠ We received a payment for order #{order_id} that does not match the order. "
        "The shop has been told and will check it by hand: you will get either your goods "
        "or a refund, with a message here either way."
    ).format(order_id=order_id)
    return with_support(text, support, order_id)


def refund_sent_to_buyer(
    order_id: int, amount: Decimal, asset: str, support: str | None = None
) -> str:
    text = _(
        "↩ A refund of {amount} for order #{order_id} was sent to your Crypto Bot wallet. "
        "It is there now: open @CryptoBot to see it."
    ).format(amount=f"{plain(amount)} {escape(asset)}", order_id=order_id)
    return with_support(text, support, order_id)


# --- anti-hoarding: Buy's per-shopper caps and the tap throttle (alerts: ≤200 characters) ---


def too_many_units(held: int | None, limit: int) -> str:
    """MAX_RESERVED_UNITS: units held in unpaid orders, with this order's, would exceed it."""
    if held:
        return ngettext(
            "You already hold {n} item in unpaid orders (at most {limit} at once). "
            "Pay or cancel one in <b>My orders</b> first, or choose fewer.",
            "You already hold {n} items in unpaid orders (at most {limit} at once). "
            "Pay or cancel one in <b>My orders</b> first, or choose fewer.",
            held,
        ).format(n=held, limit=limit)
    return ngettext(
        "At most {n} item can wait for payment at once. Please choose fewer.",
        "At most {n} items can wait for payment at once. Please choose fewer.",
        limit,
    ).format(n=limit)


def ordering_paused(until: datetime) -> str:
    """MAX_ABANDONED_PER_HOUR: too many orders cancelled or left to expire this hour."""
    if until.second or until.microsecond:  # 14:31:20 → 14:32: never too early
        until = until.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return _(
        "You have cancelled or let expire several orders in the last hour. "
        "You can order again at {time}."
    ).format(time=clock(until))


# A tap on Buy, Check payment or Cancel that came too soon after the others.
TAPS_THROTTLED = __("One moment, please: that was a lot of taps. Try again in a few seconds.")


# --- the cart (PRODUCT.md §3.1) -----------------------------------------------------------

BTN_CART = __("Cart")
BTN_ADD_TO_CART = __("Add to cart")
BTN_CHECKOUT = __("Checkout")
BTN_EMPTY_CART = __("Empty cart")
BTN_REMOVE = __("Remove")
CART_LINES_MAX = 20  # lines in one cart: each is a row of buttons (Telegram allows 100)


def btn_cart(units: int) -> str:
    """The main menu's Cart: `Cart (3)` once it holds something (3 = units, all lines)."""
    return _("Cart ({n})").format(n=units) if units else _(BTN_CART)


def order_created_items(
    order_id: int,
    items: Sequence[tuple[str, int]],
    total: Decimal,
    currency: str,
    deadline: datetime,
    *,
    ttl_seconds: int,
    approximations: Sequence[tuple[str, Decimal]] = (),
    discount: Decimal = Decimal(0),
    promo_code: str | None = None,
) -> str:
    """Buy's and Checkout's answer: the order's every line (one for Buy)."""
    first, quantity = items[0] if items else ("", 0)
    text = order_created(
        order_id,
        first,
        quantity,
        total,
        currency,
        deadline,
        ttl_seconds=ttl_seconds,
        approximations=approximations,
        discount=discount,
        promo_code=promo_code,
    )
    if len(items) <= 1:
        return text
    head, rest = text.split("\n", 2)[0], text.split("\n", 2)[2]
    return "\n".join([head, *(f"{escape(t)} × {q}" for t, q in items), rest])


INVOICE_DESCRIPTION_MAX = 1024  # Crypto Pay's limit


def invoice_description_items(order_id: int, items: Sequence[tuple[str, int]]) -> str:
    """`Order #12: Witcher 3 × 1, Portal 2 × 2`, shortened with … to Crypto Pay's limit."""
    lines = ", ".join(f"{title} × {q}" for title, q in items)
    text = _("Order #{order_id}: {items}").format(order_id=order_id, items=lines)
    if len(text) <= INVOICE_DESCRIPTION_MAX:
        return text
    return text[: INVOICE_DESCRIPTION_MAX - 1] + "…"


CART_TITLE = __("<b>Your cart</b>")
CART_EMPTY = __(
    "Your cart is empty. Open the <b>Catalog</b>, pick a product and tap <b>Add to cart</b>."
)
CART_EMPTIED = __("Your cart is now empty.")
CART_CHANGED = __(
    "Your cart changed since you saw it (a price, or a product taken off sale). "
    "Please check it again, then tap Checkout."
)
CART_FULL = __("Your cart is full. Check it out first, then add more.")
CART_LINE_GONE = __("This product is no longer in your cart.")


def added_to_cart(title: str, in_cart: int) -> str:
    """The alert after Add to cart (plain text: ≤200 characters)."""
    return _("Added to your cart: {title} — {n} in the cart.").format(title=title[:120], n=in_cart)


def cart_line(
    title: str,
    quantity: int,
    price: Decimal,
    currency: str,
    *,
    added_price: Decimal,
    active: bool,
    available: int | None,
) -> str:
    """One line of the cart screen, with what changed since it was added."""
    if not active:
        return "• " + _("<s>{title}</s> — ⚠ no longer on sale; remove it to check out").format(
            title=escape(title)
        )
    text = f"• {escape(title)} × {quantity} — {money(price * quantity, currency)}"
    if available == 0:
        text += "\n   " + _("⚠ sold out")
    elif available is not None and available < quantity:
        text += "\n   " + ngettext("⚠ only {n} left", "⚠ only {n} left", available).format(
            n=available
        )
    if price != added_price:
        text += "\n   " + _("⚠ price changed: {before} → <b>{now}</b> each").format(
            before=money(added_price, currency), now=money(price, currency)
        )
    return text


def cart_screen(lines: Sequence[str], total: Decimal, currency: str, units: int) -> str:
    return "\n".join(
        [
            f"{_(CART_TITLE)} — {items_count(units)}",
            "",
            *lines,
            "",
            _("Total: <b>{total}</b>").format(total=money(total, currency)),
            _("Tap <b>Checkout</b> to place one order for everything, with one invoice."),
        ]
    )


def cart_short(title: str, left: int) -> str:
    """Checkout refused: one line is short of stock; nothing was reserved (an alert)."""
    if left <= 0:
        return _("Sorry, {title} is sold out. Remove it or lower it; nothing was reserved.").format(
            title=title[:100]
        )
    return ngettext(
        "Sorry, only {n} of {title} left. Lower it to {n} or fewer; nothing was reserved.",
        "Sorry, only {n} of {title} left. Lower it to {n} or fewer; nothing was reserved.",
        left,
    ).format(n=left, title=title[:100])


def cart_product_gone(title: str) -> str:
    return _(
        "Sorry, {title} is no longer on sale. Remove it from your cart, then check out."
    ).format(title=title[:120])


def cart_over_limit(title: str, limit: int) -> str:
    return ngettext(
        "At most {n} of {title} can be bought in one order. Please lower it.",
        "At most {n} of {title} can be bought in one order. Please lower it.",
        limit,
    ).format(n=limit, title=title[:120])


def goods_delivered_grouped(
    order_id: int, items: Iterable[tuple[str, int]], groups: Sequence[tuple[str, Sequence[str]]]
) -> str:
    """The goods message of an order of several products: each product's goods under its
    title."""
    body = "\n\n".join(
        f"<b>{escape(title)}</b>\n" + "\n".join(_goods_item(item) for item in goods)
        for title, goods in groups
    )
    head = _("✅ <b>Order #{order_id} is paid</b> — thank you!").format(order_id=order_id)
    yours = _("Your goods:")
    return f"{head}\n{_bought(items)}\n\n{yours}\n\n{body}\n\n{_(GOODS_KEPT)}"


def goods_file_grouped(order_id: int, groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The .txt of a long goods message of several products (plain text)."""
    parts = [_("Order #{order_id}").format(order_id=order_id)]
    for title, goods in groups:
        parts += ["", f"{title}:", *goods]
    return "\n".join(parts) + "\n"


def order_goods_grouped(groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """An order page's goods, for an order of several products: under each title."""
    return (
        _("<b>Your goods:</b>")
        + "\n"
        + "\n".join(
            f"<b>{escape(title)}</b>\n" + "\n".join(_goods_item(item) for item in goods)
            for title, goods in groups
        )
    )


# Languages (/language and the Language button): each named in its own language.
LANGUAGE_NAMES = {"en": "🇬🇧 English", "ru": "🇷🇺 Русский"}
CHOOSE_LANGUAGE = __("Choose your language:")
LANGUAGE_SET = __("Done: I will speak English with you now.")


# --- promo codes (PRODUCT.md §3.1) ---------------------------------------------------------
BTN_PROMO = __("Promo code")
BTN_BACK_TO_PRODUCT = __("◀ Back to the product")
PROMO_ASK = __(
    "Send me your <b>promo code</b> as a message. The card then shows the price with the "
    "discount, and <b>Buy</b> uses it."
)
PROMO_EMPTY = __("That does not look like a promo code. Please send the code as text.")

# Read in the current language where used: `_(_PROMO_REFUSALS[…])`.
_PROMO_REFUSALS = {
    "unknown": __("There is no promo code {code}. Please check the spelling."),
    "switched_off": __("The promo code {code} has been switched off."),
    "expired": __("The promo code {code} has expired."),
    "used_up": __("The promo code {code} has been used up."),
    "already_used": __("You have already used the promo code {code}."),
    "not_for_these": __("The promo code {code} does not apply to these products."),
    "zero_total": __(
        "The promo code {code} would bring the total to zero, and a payment cannot be for "
        "nothing, so it cannot be used on this order."
    ),
}
_PROMO_CANNOT = __("The promo code {code} cannot be used.")


def promo_refusal(
    reason: str, code: str, minimum: Decimal | None = None, currency: str = ""
) -> str:
    """One sentence: why the code does not apply (`reason` is a storage.PromoRefusal)."""
    shown = f"<b>{escape(code.upper())}</b>"
    if reason == "below_minimum":
        if minimum is None:
            return _("The promo code {code} needs a larger order.").format(code=shown)
        return _("The promo code {code} needs an order of at least {minimum}.").format(
            code=shown, minimum=money(minimum, currency)
        )
    return _(_PROMO_REFUSALS.get(reason, _PROMO_CANNOT)).format(code=shown)


def discount_line(code: str, discount: Decimal, currency: str) -> str:
    """The discount on its own line (card, cart, order)."""
    return _("Promo <b>{code}</b>: −{discount}").format(
        code=escape(code.upper()), discount=money(discount, currency)
    )


def promo_total(code: str, discount: Decimal, total: Decimal, currency: str) -> str:
    """Under a price: the discount, then the new total."""
    total_line = _("Total with the promo code: <b>{total}</b>").format(total=money(total, currency))
    return f"{discount_line(code, discount, currency)}\n{total_line}"


def promo_not_applied(refusal_sentence: str) -> str:
    """On a card whose saved code does not apply to it."""
    return _("🏷 {refusal} Buy charges the full price.").format(refusal=refusal_sentence)


def promo_forgotten(refusal_sentence: str) -> str:
    """On a card: the saved code can no longer be used by anyone, so it was removed."""
    return _("🏷 {refusal} It was removed; Buy charges the full price.").format(
        refusal=refusal_sentence
    )


def promo_dropped(refusal_sentence: str) -> str:
    """Buy refused because the saved code no longer applies (an alert: short)."""
    return _("{refusal} The code was removed; tap Buy again to pay the full price.").format(
        refusal=refusal_sentence
    )


# --- the cart's Promo code (PRODUCT.md §3.1) ----------------------------------------------
BTN_BACK_TO_CART = __("◀ Back to the cart")
CART_PROMO_ASK = __(
    "Send me your <b>promo code</b> as a message. The cart then shows the total with the "
    "discount, and <b>Checkout</b> uses it."
)


def cart_screen_promo(
    lines: Sequence[str], subtotal: Decimal, currency: str, units: int, promo: str
) -> str:
    """The cart screen with the saved promo code under the total: the discount and the new
    total, or why the code does not apply."""
    return "\n".join(
        [
            f"{_(CART_TITLE)} — {items_count(units)}",
            "",
            *lines,
            "",
            _("Total: <b>{total}</b>").format(total=money(subtotal, currency)),
            promo,
            _("Tap <b>Checkout</b> to place one order for everything, with one invoice."),
        ]
    )


def cart_promo_not_applied(refusal_sentence: str) -> str:
    """On a cart its saved code does not fit (other products, below the minimum)."""
    return _("🏷 {refusal} Checkout charges the full price.").format(refusal=refusal_sentence)


def cart_promo_forgotten(refusal_sentence: str) -> str:
    """On a cart: the saved code can no longer be used by anyone, so it was removed."""
    return _("🏷 {refusal} It was removed; Checkout charges the full price.").format(
        refusal=refusal_sentence
    )


def cart_promo_dropped(refusal_sentence: str) -> str:
    """Checkout refused because the code the cart showed stopped applying (an alert)."""
    return _("{refusal} The code was removed; tap Checkout again to pay the full price.").format(
        refusal=refusal_sentence
    )


translated(__name__)
