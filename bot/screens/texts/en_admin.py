"""English texts an admin reads. Values from users, the catalog or Crypto Pay are escaped here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from bot.screens.texts.en import STATUS, count, money, plain, when

TRANSFERS_HOWTO = (
    "Transfers are switched off for this Crypto Pay app. Enable them in @CryptoBot "
    "(or @CryptoTestnetBot): <b>Crypto Pay → My Apps → your app → Security → Transfers</b>, "
    "then run /refund again."
)

REFUND_USAGE = (
    "Usage: <code>/refund &lt;order id&gt; [amount] [reason…]</code>\n"
    "Without an amount the whole remaining payment is refunded, in the asset the buyer paid."
)
ORDER_USAGE = "Usage: <code>/order &lt;order id&gt;</code>"
RECHECK_USAGE = "Usage: <code>/recheck &lt;order id&gt;</code>"
STOCK_USAGE = (
    "Usage: <code>/stock</code> for every product, <code>/stock &lt;sku&gt;</code> for one. "
    "To add codes, send a .txt file with one code per line and the sku as its caption."
)
BTN_BACK_TO_ORDERS = "◀ Orders"


def open_order(order_id: int) -> str:
    return f"Open order #{order_id}"


CONFIRMATION_GONE = "This confirmation has expired or was already used. Run /refund again."
REFUND_CANCELLED = "Refund cancelled. Nothing was sent."
REFUND_SENDING = "Sending the refund…"
ORDERS_EMPTY = "No orders here."


def order_not_found(order_id: int) -> str:
    return f"Order #{order_id} does not exist."


def not_refundable(order_id: int, status: str) -> str:
    return (
        f"Order #{order_id} cannot be refunded: it is {STATUS.get(status, escape(status))} "
        "and no payment was received for it."
    )


def fully_refunded(order_id: int) -> str:
    return (
        f"Order #{order_id} has nothing left to refund: its refunds (sent or being sent) "
        "already cover the whole payment."
    )


def bad_amount(text: str, asset: str) -> str:
    return (
        f"“{escape(text)}” is not a valid refund amount: give a positive number in {escape(asset)} "
        "with at most 8 decimal places, e.g. <code>1.5</code>."
    )


def exceeds(order_id: int, amount: Decimal, remaining: Decimal, asset: str) -> str:
    return (
        f"A refund of {plain(amount)} {escape(asset)} would exceed what order #{order_id} can "
        f"still refund: at most <b>{plain(remaining)} {escape(asset)}</b>."
    )


REFUND_STATUS = {"sending": "being sent", "sent": "sent", "failed": "failed, nothing sent"}


def refunds_lines(refunds: Iterable[tuple[Decimal, str, str, int | None]]) -> list[str]:
    lines = []
    for amount, asset, status, transfer_id in refunds:
        transfer = f", transfer {transfer_id}" if transfer_id else ""
        said = REFUND_STATUS.get(status, escape(status))
        lines.append(f"  • {plain(amount)} {escape(asset)} — {said}{transfer}")
    return lines or ["  none"]


def buyer(telegram_id: int, username: str | None, blocked: bool) -> str:
    """The buyer as a tappable link to their Telegram profile, with their id to quote."""
    name = f"@{escape(username)}" if username else "the buyer"
    flag = " (has blocked the bot)" if blocked else ""
    return f'<a href="tg://user?id={telegram_id}">{name}</a> (<code>{telegram_id}</code>){flag}'


def refund_preview(
    *,
    order_id: int,
    buyer_text: str,
    items: Sequence[str],
    status: str,
    paid: str,
    refunds: Sequence[str],
    amount: Decimal,
    asset: str,
    reason: str,
    expires_in_minutes: int,
) -> str:
    parts = [
        f"<b>Refund for order #{order_id}</b>",
        f"Buyer: {buyer_text}",
        "Items: " + (", ".join(escape(i) for i in items) or "—"),
        f"Status: {STATUS.get(status, escape(status))}",
        f"Paid: {paid}",
        "Refunds so far:",
        *refunds,
        "",
        f"Send <b>{plain(amount)} {escape(asset)}</b> to the buyer's Crypto Bot wallet?",
    ]
    if reason:
        parts.append(f"Reason: {escape(reason)}")
    parts.append(f"<i>Confirm within {expires_in_minutes} minutes.</i>")
    return "\n".join(parts)


def transfer_comment(order_id: int, reason: str) -> str:
    text = f"Refund for order #{order_id}"
    if reason:
        text += f": {reason}"
    return text[:1024]


def refund_sent(order_id: int, amount: Decimal, asset: str, transfer_id: int) -> str:
    return (
        f"✅ Refund sent: {plain(amount)} {escape(asset)} for order #{order_id}. "
        f"Transfer id <code>{transfer_id}</code>."
    )


def refund_sent_notice(
    order_id: int, amount: Decimal, asset: str, transfer_id: int, admin_id: int
) -> str:
    return (
        f"↩ <b>Refund sent</b> for order #{order_id}: {plain(amount)} {escape(asset)}, "
        f"transfer <code>{transfer_id}</code> (by admin <code>{admin_id}</code>)."
    )


def refund_pending(order_id: int, amount: Decimal, asset: str) -> str:
    return (
        f"⏳ Crypto Pay did not confirm the refund of {plain(amount)} {escape(asset)} for order "
        f"#{order_id} yet (it did not answer in time). It is retried automatically, and the "
        "buyer can never be paid twice; admins get a message when it goes through. "
        "Nothing to do for now."
    )


def insufficient_balance(amount: Decimal, asset: str) -> str:
    return (
        f"The Crypto Pay app does not hold {plain(amount)} {escape(asset)} to send. Top the app "
        "balance up (see /balance), then run /refund again. The refund was marked failed; "
        "nothing was sent."
    )


def refund_refused(name: str, description: str | None) -> str:
    detail = f": {escape(description)}" if description else ""
    return (
        f"Crypto Pay refused the transfer ({escape(name)}{detail}). The refund was marked "
        "failed and nothing was sent; fix the cause and run /refund again."
    )


def refund_failed_notice(order_id: int, why: str) -> str:
    return f"⚠ <b>Refund for order #{order_id} failed</b>. {why}"


def refund_conflict(order_id: int) -> str:
    return f"Another refund of order #{order_id} is being recorded right now; try again."


def order_view(
    *,
    order_id: int,
    status: str,
    buyer_text: str,
    lines: Sequence[tuple[str, str, int, Decimal]],
    total: Decimal,
    currency: str,
    created: datetime,
    expires: datetime,
    invoice_id: int | None,
    paid: str | None,
    fee: str | None,
    paid_at: datetime | None,
    delivered_at: datetime | None,
    attention: str | None,
    goods: Sequence[str],
    refunds: Sequence[str],
    discount: Decimal = Decimal(0),
    promo_code: str | None = None,
) -> str:
    parts = [
        f"<b>Order #{order_id}</b> — {STATUS.get(status, escape(status))}",
        f"Buyer: {buyer_text}",
    ]
    for sku, title, quantity, price in lines:
        parts.append(
            f"  • {escape(title)} (<code>{escape(sku)}</code>) × {quantity} "
            f"@ {money(price, currency)}"
        )
    parts.append("Total: " + with_discount(money(total, currency), promo_code, discount, currency))
    parts.append(f"Placed: {when(created)}; pay by {when(expires)}")
    parts.append(f"Invoice: {invoice_id if invoice_id is not None else '—'}")
    if paid:
        parts.append(f"Paid: {paid}" + (f" (fee {fee})" if fee else ""))
    if paid_at:
        parts.append(f"Paid at: {when(paid_at)}")
    if delivered_at:
        parts.append(f"Delivered at: {when(delivered_at)}")
    if attention:
        parts.append(f"⚠ {escape(attention)}")
    if goods:
        parts.append("Goods: " + ", ".join(f"<code>{escape(g)}</code>" for g in goods[:50]))
        if len(goods) > 50:
            parts.append(f"… and {len(goods) - 50} more")
    parts.append("Refunds:")
    parts += refunds
    return "\n".join(parts)


def orders_title(status: str | None) -> str:
    which = f" — {STATUS.get(status, escape(status))}" if status else ""
    return f"<b>Orders</b>{which} (newest first):"


def order_row(
    order_id: int,
    status: str,
    total: Decimal,
    currency: str,
    buyer_id: int,
    buyer_username: str | None,
    lines: Sequence[tuple[str, int]],
) -> str:
    """One button's label: `#12 · ✅ paid · @alice · Witcher 3 × 1 · 9.99 USD` (plain text:
    button labels are not HTML)."""
    who = f"@{buyer_username}" if buyer_username else str(buyer_id)
    if lines:
        title, quantity = lines[0]
        title = title if len(title) <= 24 else title[:23] + "…"
        what = f"{title} × {quantity}" + (f" +{len(lines) - 1}" if len(lines) > 1 else "")
    else:
        what = "—"
    label = STATUS.get(status, status)
    return f"#{order_id} · {label} · {who} · {what} · {plain(total)} {currency}"


def unknown_status(text: str, known: Iterable[str]) -> str:
    return f"Unknown status “{escape(text)}”. Use one of: " + ", ".join(known) + "."


def stats(
    *,
    currency: str,
    periods: Sequence[tuple[str, int, Decimal]],
    by_status: dict[str, int],
    attention: Sequence[int],
) -> str:
    parts = [f"<b>Sales</b> (paid orders, in {escape(currency)}):"]
    for label, n, revenue in periods:
        parts.append(f"  {label}: {count(n, 'order')}, {money(revenue, currency)}")
    parts.append("")
    parts.append("<b>Orders by status</b>:")
    parts += [
        f"  {STATUS.get(status, escape(status))} (<code>{escape(status)}</code>): {n}"
        for status, n in by_status.items()
        if n
    ]
    if not any(by_status.values()):
        parts.append("  none yet")
    parts.append("")
    if attention:
        parts.append(
            f"⚠ <b>Needing attention</b> ({count(len(attention), 'order')}): "
            "tap one to open it, or see <code>/orders needs_review</code> and "
            "<code>/orders needs_refund</code>."
        )
    else:
        parts.append("Nothing needs attention.")
    return "\n".join(parts)


def balance(rows: Sequence[tuple[str, Decimal, Decimal]]) -> str:
    if not rows:
        return "The Crypto Pay app holds no assets."
    parts = ["<b>Crypto Pay balance</b> (available / on hold):"]
    parts += [f"  {escape(code)}: {plain(a)} / {plain(h)}" for code, a, h in rows]
    return "\n".join(parts)


def cryptopay_down(name: str) -> str:
    return f"Crypto Pay did not answer ({escape(name)}). Try again in a moment."


def unknown_sku(sku: str) -> str:
    return f"No product with sku <code>{escape(sku)}</code>."


def stock(sku: str, title: str, unlimited: bool, available: int, reserved: int, sold: int) -> str:
    head = f"<b>{escape(title)}</b> (<code>{escape(sku)}</code>)"
    if unlimited:
        return f"{head}\nUnlimited: every buyer gets the same content (sold: {sold})."
    return f"{head}\nAvailable: {available}\nReserved: {reserved}\nSold: {sold}"


def codes_added(sku: str, added: int, skipped: int, available: int) -> str:
    return (
        f"Added {added} codes to <code>{escape(sku)}</code>; {skipped} duplicates or blank "
        f"lines skipped. Available now: {available}."
    )


UPLOAD_NO_SKU = "Put the product's sku in the file's caption, e.g. <code>witcher3</code>."
UPLOAD_NOT_TXT = "Send the codes as a plain .txt file, one code per line."
UPLOAD_EMPTY = "The file has no codes in it."
UPLOAD_UNLIMITED = "That product is unlimited: it has no codes to add."


def upload_too_big(limit: int) -> str:
    return f"The file is too big: at most {limit // 1024} KiB per upload. Split it and resend."


def upload_not_utf8() -> str:
    return "The file is not UTF-8 text. Save it as UTF-8 and send it again."


def upload_bad_line(line: int, why: str) -> str:
    return f"Line {line} is not a valid code ({why}). Nothing was added."


def recheck(order_id: int, invoice_status: str, status: str) -> str:
    return (
        f"Order #{order_id}: Crypto Pay says the invoice is <b>{escape(invoice_status)}</b>; "
        f"the order is {STATUS.get(status, escape(status))}."
    )


def recheck_no_invoice(order_id: int) -> str:
    return f"Order #{order_id} has no Crypto Pay invoice to check."


def low_stock(title: str, sku: str, left: int) -> str:
    return (
        f"📉 <b>Low stock</b>: {escape(title)} (<code>{escape(sku)}</code>) has "
        f"{count(left, 'code')} left. To add more, send a .txt file with one code per line "
        f"and <code>{escape(sku)}</code> as its caption."
    )


ADMIN_HELP = (
    "<b>Running the shop</b> — commands only you (and the other admins) see:\n\n"
    "/orders — the newest orders; <code>/orders paid</code> shows only paid ones "
    "(also: pending, delivered, expired, cancelled, needs_review, needs_refund, refunded)\n"
    "/order — one order in full: <code>/order 12</code>\n"
    "/refund — pay a buyer back: <code>/refund 12</code> (everything), "
    "<code>/refund 12 1.5 wrong key</code> (part, with a reason)\n"
    "/recheck — ask Crypto Pay about an order's payment now: <code>/recheck 12</code>\n"
    "/stats — sales today, this week and this month, and orders that need you\n"
    "/balance — what your Crypto Pay app holds\n"
    "/stock — every product with its codes left; <code>/stock witcher3</code> for one\n"
    "/promo — promo codes: <code>/promo add SPRING 10% uses=100 until=2027-01-31</code>, "
    "<code>/promo list</code>, <code>/promo off SPRING</code>\n\n"
    "<b>Adding codes</b>: send a .txt file, one code per line, with the product's sku as its "
    "caption (e.g. <code>witcher3</code>).\n"
    "<b>Sharing a product</b>: <code>t.me/{bot}?start=p_&lt;sku&gt;</code> opens its card.\n\n"
    "You get a message for every paid order, every refund, every order that needs a human, "
    "and when a product's stock runs low. /start shows the shop as buyers see it."
)


def admin_help(bot_username: str) -> str:
    return ADMIN_HELP.replace("{bot}", escape(bot_username or "your_bot"))


# setMyCommands: what Telegram's command menu offers (descriptions: 1–256 characters).
SHOPPER_COMMANDS = (
    ("start", "Main menu"),
    ("catalog", "Browse the catalog"),
    ("orders", "My orders"),
    ("help", "How buying works"),
)
ADMIN_COMMANDS = (
    ("orders", "Orders, newest first (/orders paid)"),
    ("order", "One order in full (/order 12)"),
    ("refund", "Refund a buyer (/refund 12)"),
    ("recheck", "Check an order's payment now (/recheck 12)"),
    ("stats", "Sales and orders that need you"),
    ("balance", "Crypto Pay app balance"),
    ("stock", "Codes left per product (/stock sku)"),
    ("promo", "Promo codes (/promo add CODE 10%, list, off)"),
    ("catalog", "The catalog as buyers see it"),
    ("start", "Main menu"),
    ("help", "Admin commands with examples"),
)


STOCK_NO_PRODUCTS = "The catalog has no products yet. Import one: python -m bot catalog import FILE"


def stock_list(
    rows: Sequence[tuple[str, str, bool, bool, int, int]], threshold: int, *, more: int = 0
) -> str:
    """Every product's stock: (sku, title, active, unlimited, available, reserved)."""
    parts = ["<b>Stock</b> (codes available; reserved ones are in unpaid orders):"]
    for sku, title, active, unlimited, available, reserved in rows:
        if unlimited:
            left = "unlimited"
        else:
            left = count(available, "code") + (f" + {reserved} reserved" if reserved else "")
            if available + reserved <= threshold:
                left = ("❌ " if available + reserved == 0 else "⚠ ") + left
        hidden = " (hidden)" if not active else ""
        parts.append(f"• <code>{escape(sku)}</code> {escape(title)}{hidden}: {left}")
    if more:
        parts.append(f"… and {count(more, 'more product')}.")
    parts.append("")
    parts.append("<code>/stock &lt;sku&gt;</code> shows one product with its sold codes.")
    return "\n".join(parts)


# Alerts composed when sent (bot/screens/outgoing.py); `summary`, `paid`, `total` and
# `buyer_text` are HTML already. Each ends with what the admin can do.
def paid_alert(
    order_id: int, summary: str, total: str, paid: str, buyer_text: str, *, late: bool
) -> str:
    note = " (late payment, after the order expired; fulfilled from stock)" if late else ""
    return (
        f"💰 <b>Order #{order_id} paid</b>{note}: {summary} — {total}, paid {paid}. "
        f"Buyer: {buyer_text}."
    )


def needs_refund_alert(order_id: int, paid: str, summary: str, buyer_text: str) -> str:
    return (
        f"⚠ <b>Order #{order_id} needs a refund</b>: {buyer_text} paid {paid} after the order "
        f"expired, and the stock is gone ({summary}). The buyer has been told a refund is on "
        f"its way. What to do: add codes and deliver by hand, or pay the money back with "
        f"<code>/refund {order_id}</code>."
    )


def needs_review_alert(order_id: int, reason: str, paid: str, total: str, buyer_text: str) -> str:
    return (
        f"⚠ <b>Order #{order_id} needs review</b>: {escape(reason)}. Paid {paid}; the order "
        f"was for {total}. Buyer: {buyer_text}. No goods were sent. What to do: open the "
        f"order and check the payment; pay it back with <code>/refund {order_id}</code>, or "
        "tap the buyer's name to settle it with them."
    )


def buyer_blocked_alert(order_id: int) -> str:
    return (
        f"⚠ The buyer of order #{order_id} has blocked the bot, so the goods could not be "
        "delivered; the order stays paid. What to do: open the order — it shows the goods "
        "and links the buyer, so you can send them another way — or refund it with "
        f"<code>/refund {order_id}</code>."
    )


def goods_not_shown(n: int) -> str:
    """Under an order whose goods would not fit in one message."""
    return f"Goods: {count(n, 'item')}, too long to show here (the buyer has them in My orders)."


# --- promo codes (PRODUCT.md §4.1) ----------------------------------------------------------
PROMO_USAGE = (
    "Usage:\n"
    "<code>/promo add CODE 10%</code> — a percent off, or <code>/promo add CODE 5</code> — a "
    "fixed amount off, with options <code>uses=100 per_buyer=1 until=2027-01-31 min=20 "
    "sku=a,b</code>\n"
    "<code>/promo list</code> — every code with its uses and revenue\n"
    "<code>/promo off CODE</code> — switch a code off"
)


def promo_bad(why: str) -> str:
    return f"Promo code not added: {escape(why, quote=False)}\n\n{PROMO_USAGE}"


def promo_exists(code: str) -> str:
    return f"The promo code <b>{escape(code.upper())}</b> exists already; pick another name."


def promo_terms(
    code: str,
    value: str,
    *,
    uses: str,
    per_buyer: int,
    until: str | None,
    minimum: str | None,
    skus: Sequence[str],
    active: bool = True,
) -> str:
    parts = [f"<b>{escape(code.upper())}</b> {escape(value)} off", f"uses {uses}"]
    parts.append(f"{per_buyer} per buyer")
    if until:
        parts.append(f"until {until}")
    if minimum:
        parts.append(f"min {minimum}")
    if skus:
        parts.append("only " + ", ".join(f"<code>{escape(s)}</code>" for s in skus))
    if not active:
        parts.append("switched off")
    return " · ".join(parts)


def promo_added(terms_text: str) -> str:
    return f"✅ Promo code added: {terms_text}"


PROMO_NONE = "No promo codes yet. Add one: <code>/promo add CODE 10%</code>"


def promo_list(rows: Iterable[tuple[str, int, str]]) -> str:
    """(terms text, paid orders, revenue text) per code."""
    parts = ["<b>Promo codes</b> (newest first):"]
    for terms_text, paid, revenue in rows:
        parts.append(f"• {terms_text} — {count(paid, 'paid order')}, revenue {revenue}")
    return "\n".join(parts)


def promo_off(code: str) -> str:
    return (
        f"The promo code <b>{escape(code.upper())}</b> is switched off; orders already placed "
        "with it keep their discount."
    )


def promo_unknown(code: str) -> str:
    return f"There is no promo code <b>{escape(code.upper())}</b>."


def with_discount(total: str, code: str | None, discount: Decimal, currency: str) -> str:
    """An order's total (HTML) and, when it had a promo code, the code and the discount."""
    if not code or not discount:
        return total
    return f"{total} (promo {escape(code.upper())}: −{money(discount, currency)})"
