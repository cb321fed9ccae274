"""The texts an admin reads, in English (the msgids) and, through bot/locales, in Russian.
Values from users, the catalog or Crypto Pay are escaped here. Same patterns as en.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from babel.numbers import format_decimal

from bot.i18n import _, __, current_language, ngettext, translated
from bot.screens.texts.en import STATUS, money, plain, status_text, when
from bot.screens.texts.en_growth import ADMIN_HELP_GROWTH
from bot.shop.review_reasons import AMOUNT, ASSET, CURRENCY, parse_review_reason

TRANSFERS_HOWTO = __(
    "Transfers are switched off for this Crypto Pay app. Enable them in @CryptoBot "
    "(or @CryptoTestnetBot): <b>Crypto Pay → My Apps → your app → Security → Transfers</b>, "
    "then run /refund again."
)

REFUND_USAGE = __(
    "Usage: <code>/refund &lt;order id&gt; [amount] [reason…]</code>\n"
    "Without an amount the whole remaining payment is refunded, in the asset the buyer paid."
)
ORDER_USAGE = __("Usage: <code>/order &lt;order id&gt;</code>")
RECHECK_USAGE = __("Usage: <code>/recheck &lt;order id&gt;</code>")
STOCK_USAGE = __(
    "Usage: <code>/stock</code> for every product, <code>/stock &lt;sku&gt;</code> for one. "
    "To add codes, send a .txt file with one code per line and the sku as its caption."
)
BTN_BACK_TO_ORDERS = __("◀ Orders")


def open_order(order_id: int) -> str:
    return _("Open order #{order_id}").format(order_id=order_id)


CONFIRMATION_GONE = __("This confirmation has expired or was already used. Run /refund again.")
REFUND_CANCELLED = __("Refund cancelled. Nothing was sent.")
REFUND_SENDING = __("Sending the refund…")
ORDERS_EMPTY = __("No orders here.")


def order_not_found(order_id: int) -> str:
    return _("Order #{order_id} does not exist.").format(order_id=order_id)


def not_refundable(order_id: int, status: str) -> str:
    return _(
        "Order #{order_id} cannot be refunded: it is {status} and no payment was received for it."
    ).format(order_id=order_id, status=status_text(status))


def fully_refunded(order_id: int) -> str:
    return _(
        "Order #{order_id} has nothing left to refund: its refunds (sent or being sent) "
        "already cover the whole payment."
    ).format(order_id=order_id)


def bad_amount(text: str, asset: str) -> str:
    return _(
        "“{text}” is not a valid refund amount: give a positive number in {asset} "
        "with at most 8 decimal places, e.g. <code>1.5</code>."
    ).format(text=escape(text), asset=escape(asset))


def refund_amount_forms(text: str, order_id: int, asset: str, currency: str) -> str:
    return _(
        "“{text}” is not a valid refund amount. Write a plain number with a dot "
        "(at most 8 decimals), in {asset} or, as a share of the order's total, in {currency}: "
        "<code>/refund {order_id}</code> (everything left), "
        "<code>/refund {order_id} 5.50</code>, "
        "<code>/refund {order_id} 5.50 {asset} reason…</code>, "
        "<code>/refund {order_id} 5 {currency}</code>, <code>/refund {order_id} all reason…</code>."
    ).format(text=escape(text), order_id=order_id, asset=escape(asset), currency=escape(currency))


def exceeds(order_id: int, amount: Decimal, remaining: Decimal, asset: str) -> str:
    return _(
        "A refund of {amount} would exceed what order #{order_id} can still refund: "
        "at most <b>{remaining}</b>."
    ).format(
        amount=f"{plain(amount)} {escape(asset)}",
        order_id=order_id,
        remaining=f"{plain(remaining)} {escape(asset)}",
    )


REFUND_STATUS = {
    "sending": __("being sent"),
    "sent": __("sent"),
    "failed": __("failed, nothing sent"),
}


def refunds_lines(refunds: Iterable[tuple[Decimal, str, str, int | None]]) -> list[str]:
    lines = []
    for amount, asset, status, transfer_id in refunds:
        transfer = (
            _(", transfer {transfer_id}").format(transfer_id=transfer_id) if transfer_id else ""
        )
        known = REFUND_STATUS.get(status)
        said = _(known) if known is not None else escape(status)
        lines.append(f"  • {plain(amount)} {escape(asset)} — {said}{transfer}")
    return lines or ["  " + _("none")]


def buyer(telegram_id: int, username: str | None, blocked: bool) -> str:
    """The buyer as a tappable link to their Telegram profile, with their id to quote."""
    name = f"@{escape(username)}" if username else _("the buyer")
    flag = _(" (has blocked the bot)") if blocked else ""
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
    what = f"{plain(amount)} {escape(asset)}"
    parts = [
        _("<b>Refund for order #{order_id}</b>").format(order_id=order_id),
        _("Buyer: {buyer}").format(buyer=buyer_text),
        _("Items: {items}").format(items=", ".join(escape(i) for i in items) or "—"),
        _("Status: {status}").format(status=status_text(status)),
        _("Paid: {paid}").format(paid=paid),
        _("Refunds so far:"),
        *refunds,
        "",
        _("Send <b>{amount}</b> to the buyer's Crypto Bot wallet?").format(amount=what),
    ]
    if reason:
        parts.append(_("Reason: {reason}").format(reason=escape(reason)))
    parts.append(
        ngettext(
            "<i>Confirm within {n} minute.</i>",
            "<i>Confirm within {n} minutes.</i>",
            expires_in_minutes,
        ).format(n=expires_in_minutes)
    )
    return "\n".join(parts)


def transfer_comment(order_id: int, reason: str) -> str:
    text = _("Refund for order #{order_id}").format(order_id=order_id)
    if reason:
        text += f": {reason}"
    return text[:1024]


def refund_sent(order_id: int, amount: Decimal, asset: str, transfer_id: int) -> str:
    return _(
        "✅ Refund sent: {amount} for order #{order_id}. Transfer id <code>{transfer_id}</code>."
    ).format(amount=f"{plain(amount)} {escape(asset)}", order_id=order_id, transfer_id=transfer_id)


def refund_sent_notice(
    order_id: int, amount: Decimal, asset: str, transfer_id: int, admin_id: int
) -> str:
    return _(
        "↩ <b>Refund sent</b> for order #{order_id}: {amount}, transfer "
        "<code>{transfer_id}</code> (by admin <code>{admin_id}</code>)."
    ).format(
        order_id=order_id,
        amount=f"{plain(amount)} {escape(asset)}",
        transfer_id=transfer_id,
        admin_id=admin_id,
    )


def refund_pending(order_id: int, amount: Decimal, asset: str) -> str:
    return _(
        "⏳ Crypto Pay did not confirm the refund of {amount} for order #{order_id} yet "
        "(it did not answer in time). It is retried automatically, and the buyer can never be "
        "paid twice; admins get a message when it goes through. Nothing to do for now."
    ).format(amount=f"{plain(amount)} {escape(asset)}", order_id=order_id)


def insufficient_balance(amount: Decimal, asset: str) -> str:
    return _(
        "The Crypto Pay app does not hold {amount} to send. Top the app balance up "
        "(see /balance), then run /refund again. The refund was marked failed; nothing was sent."
    ).format(amount=f"{plain(amount)} {escape(asset)}")


def refund_refused(name: str, description: str | None) -> str:
    detail = f": {escape(description)}" if description else ""
    return _(
        "Crypto Pay refused the transfer ({error}). The refund was marked failed and nothing "
        "was sent; fix the cause and run /refund again."
    ).format(error=f"{escape(name)}{detail}")


def refund_failed_notice(order_id: int, why: str) -> str:
    return _("⚠ <b>Refund for order #{order_id} failed</b>. {why}").format(
        order_id=order_id, why=why
    )


def refund_conflict(order_id: int) -> str:
    return _("Another refund of order #{order_id} is being recorded right now; try again.").format(
        order_id=order_id
    )


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
        _("<b>Order #{order_id}</b> — {status}").format(
            order_id=order_id, status=status_text(status)
        ),
        _("Buyer: {buyer}").format(buyer=buyer_text),
    ]
    for sku, title, quantity, price in lines:
        parts.append(
            f"  • {escape(title)} (<code>{escape(sku)}</code>) × {quantity} "
            f"@ {money(price, currency)}"
        )
    total_text = with_discount(money(total, currency), promo_code, discount, currency)
    parts.append(_("Total: {total}").format(total=total_text))
    parts.append(
        _("Placed: {placed}; pay by {deadline}").format(
            placed=when(created), deadline=when(expires)
        )
    )
    invoice = str(invoice_id) if invoice_id is not None else "—"
    parts.append(_("Invoice: {invoice}").format(invoice=invoice))
    if paid:
        if fee:
            parts.append(_("Paid: {paid} (fee {fee})").format(paid=paid, fee=fee))
        else:
            parts.append(_("Paid: {paid}").format(paid=paid))
    if paid_at:
        parts.append(_("Paid at: {when}").format(when=when(paid_at)))
    if delivered_at:
        parts.append(_("Delivered at: {when}").format(when=when(delivered_at)))
    if attention:
        parts.append(f"⚠ {escape(review_reason_text(attention))}")
    if goods:
        shown = ", ".join(f"<code>{escape(g)}</code>" for g in goods[:50])
        parts.append(_("Goods: {goods}").format(goods=shown))
        if len(goods) > 50:
            parts.append(_("… and {n} more").format(n=len(goods) - 50))
    parts.append(_("Refunds:"))
    parts += refunds
    return "\n".join(parts)


def orders_title(status: str | None) -> str:
    if status:
        return _("<b>Orders</b> — {status} (newest first):").format(status=status_text(status))
    return _("<b>Orders</b> (newest first):")


def order_row(
    order_id: int,
    status: str,
    total: Decimal,
    currency: str,
    buyer_id: int,
    buyer_username: str | None,
    lines: Sequence[tuple[str, int]],
) -> str:
    """One button's label: `#12 · ✅ paid · @alice · Witcher 3 × 1 · $9.99` (plain text:
    button labels are not HTML)."""
    who = f"@{buyer_username}" if buyer_username else str(buyer_id)
    if lines:
        title, quantity = lines[0]
        title = title if len(title) <= 24 else title[:23] + "…"
        what = f"{title} × {quantity}" + (f" +{len(lines) - 1}" if len(lines) > 1 else "")
    else:
        what = "—"
    label = _(STATUS[status]) if status in STATUS else status
    return f"#{order_id} · {label} · {who} · {what} · {money(total, currency)}"


def unknown_status(text: str, known: Iterable[str]) -> str:
    return _("Unknown status “{text}”. Use one of: {known}.").format(
        text=escape(text), known=", ".join(known)
    )


def orders_count(n: int) -> str:
    return ngettext("{n} order", "{n} orders", n).format(n=n)


def codes_count(n: int) -> str:
    return ngettext("{n} code", "{n} codes", n).format(n=n)


# /stats period labels, as storage names them.
PERIODS = {
    "Today (UTC)": __("Today (UTC)"),
    "7 days": __("7 days"),
    "30 days": __("30 days"),
}


def stats(
    *,
    currency: str,
    periods: Sequence[tuple[str, int, Decimal]],
    by_status: dict[str, int],
    attention: Sequence[int],
) -> str:
    parts = [_("<b>Sales</b> (paid orders, in {currency}):").format(currency=escape(currency))]
    for label, n, revenue in periods:
        known = PERIODS.get(label)
        said = _(known) if known is not None else escape(label)
        parts.append(f"  {said}: {orders_count(n)}, {money(revenue, currency)}")
    parts.append("")
    parts.append(_("<b>Orders by status</b>:"))
    parts += [
        f"  {status_text(status)} (<code>{escape(status)}</code>): {n}"
        for status, n in by_status.items()
        if n
    ]
    if not any(by_status.values()):
        parts.append("  " + _("none yet"))
    parts.append("")
    if attention:
        parts.append(
            ngettext(
                "⚠ <b>Needing attention</b> ({n} order): tap it to open it, or see "
                "<code>/orders needs_review</code> and <code>/orders needs_refund</code>.",
                "⚠ <b>Needing attention</b> ({n} orders): tap one to open it, or see "
                "<code>/orders needs_review</code> and <code>/orders needs_refund</code>.",
                len(attention),
            ).format(n=len(attention))
        )
    else:
        parts.append(_("Nothing needs attention."))
    return "\n".join(parts)


def balance(rows: Sequence[tuple[str, Decimal, Decimal]]) -> str:
    if not rows:
        return _("The Crypto Pay app holds no assets.")
    parts = [_("<b>Crypto Pay balance</b> (available / on hold):")]
    parts += [f"  {escape(code)}: {plain(a)} / {plain(h)}" for code, a, h in rows]
    return "\n".join(parts)


def cryptopay_down(name: str) -> str:
    return _("Crypto Pay did not answer ({error}). Try again in a moment.").format(
        error=escape(name)
    )


def unknown_sku(sku: str) -> str:
    return _("No product with sku <code>{sku}</code>.").format(sku=escape(sku))


def stock(sku: str, title: str, unlimited: bool, available: int, reserved: int, sold: int) -> str:
    head = f"<b>{escape(title)}</b> (<code>{escape(sku)}</code>)"
    if unlimited:
        body = _("Unlimited: every buyer gets the same content (sold: {sold}).").format(sold=sold)
        return f"{head}\n{body}"
    body = _("Available: {available}\nReserved: {reserved}\nSold: {sold}").format(
        available=available, reserved=reserved, sold=sold
    )
    return f"{head}\n{body}"


def codes_added(sku: str, added: int, skipped: int, available: int) -> str:
    return ngettext(
        "Added {added} code to <code>{sku}</code>; {skipped} duplicates or blank lines "
        "skipped. Available now: {available}.",
        "Added {added} codes to <code>{sku}</code>; {skipped} duplicates or blank lines "
        "skipped. Available now: {available}.",
        added,
    ).format(added=added, sku=escape(sku), skipped=skipped, available=available)


UPLOAD_NO_SKU = __("Put the product's sku in the file's caption, e.g. <code>witcher3</code>.")
UPLOAD_NOT_TXT = __("Send the codes as a plain .txt file, one code per line.")
UPLOAD_EMPTY = __("The file has no codes in it.")
UPLOAD_UNLIMITED = __("That product is unlimited: it has no codes to add.")


def upload_too_big(limit: int) -> str:
    return _("The file is too big: at most {kib} KiB per upload. Split it and resend.").format(
        kib=limit // 1024
    )


def upload_not_utf8() -> str:
    return _("The file is not UTF-8 text. Save it as UTF-8 and send it again.")


def upload_bad_line(line: int, why: str) -> str:
    return _("Line {line} is not a valid code ({why}). Nothing was added.").format(
        line=line, why=why
    )


UPLOAD_CONTROL_CHARACTERS = __("it contains control characters")


def upload_line_too_long(limit: int) -> str:
    return _("longer than {limit} characters").format(limit=limit)


# Why a line of codes is refused, by the kind of hidden character in it (bot/shop/admin.py).
HIDDEN_CHARACTERS = {
    "bidi": __("it contains a bidi character, U+{code}"),
    "zero-width": __("it contains a zero-width character, U+{code}"),
    "control": __("it contains a control character, U+{code}"),
    "line separator": __("it contains a line separator character, U+{code}"),
    "formatting": __("it contains a formatting character, U+{code}"),
}


def upload_hidden_character(line: int, kind: str, char: str) -> str:
    why = HIDDEN_CHARACTERS.get(kind)
    code = f"{ord(char):04X}"
    reason = _(why).format(code=code) if why is not None else f"{escape(kind)}, U+{code}"
    return upload_bad_line(line, reason)


def upload_took(seconds: float) -> str:
    shown = format_decimal(round(seconds, 1), "0.0", locale=current_language())
    return _("Took {seconds} s.").format(seconds=shown)


def recheck(order_id: int, invoice_status: str, status: str) -> str:
    return _(
        "Order #{order_id}: Crypto Pay says the invoice is <b>{invoice_status}</b>; "
        "the order is {status}."
    ).format(order_id=order_id, invoice_status=escape(invoice_status), status=status_text(status))


def recheck_no_invoice(order_id: int) -> str:
    return _("Order #{order_id} has no Crypto Pay invoice to check.").format(order_id=order_id)


def low_stock(title: str, sku: str, left: int) -> str:
    return ngettext(
        "📉 <b>Low stock</b>: {title} (<code>{sku}</code>) has {n} code left. To add more, "
        "send a .txt file with one code per line and <code>{sku}</code> as its caption.",
        "📉 <b>Low stock</b>: {title} (<code>{sku}</code>) has {n} codes left. To add more, "
        "send a .txt file with one code per line and <code>{sku}</code> as its caption.",
        left,
    ).format(title=escape(title), sku=escape(sku), n=left)


ADMIN_HELP = __(
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


ADMIN_HELP_PHOTOS = __(
    "<b>Product photos</b>: send a photo with the product's sku as its caption (e.g. "
    "<code>witcher3</code>) to set or replace its picture."
)


def admin_help(bot_username: str) -> str:
    text = _(ADMIN_HELP).replace("{bot}", escape(bot_username or "your_bot"))
    return "\n\n".join((text, _(ADMIN_HELP_PHOTOS), _(ADMIN_HELP_GROWTH)))


# setMyCommands: what Telegram's command menu offers (descriptions: 1–256 characters).
SHOPPER_COMMANDS = (
    ("start", __("Main menu")),
    ("catalog", __("Browse the catalog")),
    ("cart", __("Your cart")),
    ("orders", __("My orders")),
    ("help", __("How buying works")),
    ("invite", __("Invite friends")),
    ("language", __("Change the language")),
)
ADMIN_COMMANDS = (
    ("orders", __("Orders, newest first (/orders paid)")),
    ("order", __("One order in full (/order 12)")),
    ("refund", __("Refund a buyer (/refund 12)")),
    ("recheck", __("Check an order's payment now (/recheck 12)")),
    ("stats", __("Sales and orders that need you")),
    ("balance", __("Crypto Pay app balance")),
    ("stock", __("Codes left per product (/stock sku)")),
    ("promo", __("Promo codes (/promo add CODE 10%, list, off)")),
    ("broadcast", __("Send a message to your customers")),
    ("broadcasts", __("Recent broadcasts and their results")),
    ("export", __("Orders as a CSV file (/export 2026-11-01 2026-11-30)")),
    ("referrals", __("Top referrers")),
    ("catalog", __("The catalog as buyers see it")),
    ("start", __("Main menu")),
    ("help", __("Admin commands with examples")),
    ("language", __("Change the language")),
)
# setMyDescription / setMyShortDescription (at most 512 / 120 characters).
BOT_DESCRIPTION = __(
    "A shop in your chat: browse the catalog, pay with crypto through @CryptoBot, and get "
    "your goods right here within seconds."
)
BOT_SHORT_DESCRIPTION = __("Buy digital goods, pay with crypto via @CryptoBot.")


STOCK_NO_PRODUCTS = __(
    "The catalog has no products yet. Import one: python -m bot catalog import FILE"
)


def stock_list(
    rows: Sequence[tuple[str, str, bool, bool, int, int]], threshold: int, *, more: int = 0
) -> str:
    """Every product's stock: (sku, title, active, unlimited, available, reserved)."""
    parts = [_("<b>Stock</b> (codes available; reserved ones are in unpaid orders):")]
    for sku, title, active, unlimited, available, reserved in rows:
        if unlimited:
            left = _("unlimited")
        else:
            left = codes_count(available)
            if reserved:
                left += " + " + _("{n} reserved").format(n=reserved)
            if available + reserved <= threshold:
                left = ("❌ " if available + reserved == 0 else "⚠ ") + left
        hidden = _(" (hidden)") if not active else ""
        parts.append(f"• <code>{escape(sku)}</code> {escape(title)}{hidden}: {left}")
    if more:
        parts.append(
            ngettext("… and {n} more product.", "… and {n} more products.", more).format(n=more)
        )
    parts.append("")
    parts.append(_("<code>/stock &lt;sku&gt;</code> shows one product with its sold codes."))
    return "\n".join(parts)


# Alerts composed when sent (bot/screens/outgoing.py); `summary`, `paid`, `total` and
# `buyer_text` are HTML already. Each ends with what the admin can do.
def paid_alert(
    order_id: int, summary: str, total: str, paid: str, buyer_text: str, *, late: bool
) -> str:
    if late:
        text = _(
            "💰 <b>Order #{order_id} paid</b> (late payment, after the order expired; "
            "fulfilled from stock): {summary} — {total}, paid {paid}. Buyer: {buyer}."
        )
    else:
        text = _(
            "💰 <b>Order #{order_id} paid</b>: {summary} — {total}, paid {paid}. Buyer: {buyer}."
        )
    return text.format(order_id=order_id, summary=summary, total=total, paid=paid, buyer=buyer_text)


def needs_refund_alert(order_id: int, paid: str, summary: str, buyer_text: str) -> str:
    return _(
        "⚠ <b>Order #{order_id} needs a refund</b>: {buyer} paid {paid} after the order "
        "expired, and the stock is gone ({summary}). The buyer has been told a refund is on "
        "its way. What to do: add codes and deliver by hand, or pay the money back with "
        "<code>/refund {order_id}</code>."
    ).format(order_id=order_id, buyer=buyer_text, paid=paid, summary=summary)


def review_reason_text(stored: str) -> str:
    """A payment's stored review reason (bot/shop/review_reasons.py) in the reader's language."""
    parsed = parse_review_reason(stored)
    if parsed is None:
        return stored  # free text kept by an older version
    reason, values = parsed
    if reason == CURRENCY:
        return _("the invoice is in {invoice}, the order in {order}").format(**values)
    if reason == AMOUNT:
        try:
            amounts = {key: plain(Decimal(value)) for key, value in values.items()}
        except ArithmeticError:  # (not a number: shown as stored)
            amounts = values
        return _("the invoice amount {invoice} differs from the order total {order}").format(
            **amounts
        )
    if reason == ASSET:
        return _("paid in {asset}, which the order did not accept").format(**values)
    return _("the invoice says paid but names no paid asset or amount")


def needs_review_alert(order_id: int, reason: str, paid: str, total: str, buyer_text: str) -> str:
    reason = review_reason_text(reason)
    return _(
        "⚠ <b>Order #{order_id} needs review</b>: {reason}. Paid {paid}; the order was for "
        "{total}. Buyer: {buyer}. No goods were sent. What to do: open the order and check "
        "the payment; pay it back with <code>/refund {order_id}</code>, or tap the buyer's "
        "name to settle it with them."
    ).format(order_id=order_id, reason=escape(reason), paid=paid, total=total, buyer=buyer_text)


def buyer_blocked_alert(order_id: int) -> str:
    return _(
        "⚠ The buyer of order #{order_id} has blocked the bot, so the goods could not be "
        "delivered; the order stays paid. What to do: open the order — it shows the goods "
        "and links the buyer, so you can send them another way — or refund it with "
        "<code>/refund {order_id}</code>."
    ).format(order_id=order_id)


def goods_not_shown(n: int) -> str:
    """Under an order whose goods would not fit in one message."""
    return ngettext(
        "Goods: {n} item, too long to show here (the buyer has it in My orders).",
        "Goods: {n} items, too long to show here (the buyer has them in My orders).",
        n,
    ).format(n=n)


# --- promo codes (PRODUCT.md §4.1) ----------------------------------------------------------
PROMO_USAGE = __(
    "Usage:\n"
    "<code>/promo add CODE 10%</code> — a percent off, or <code>/promo add CODE 5</code> — a "
    "fixed amount off, with options <code>uses=100 per_buyer=1 until=2027-01-31 min=20 "
    "sku=a,b</code>\n"
    "<code>/promo list</code> — every code with its uses and revenue\n"
    "<code>/promo off CODE</code> — switch a code off"
)


def promo_bad(why: str) -> str:
    return _("Promo code not added: {why}\n\n{usage}").format(
        why=escape(why, quote=False), usage=_(PROMO_USAGE)
    )


def promo_exists(code: str) -> str:
    return _("The promo code <b>{code}</b> exists already; pick another name.").format(
        code=escape(code.upper())
    )


PROMO_SWITCHED_OFF = __("switched off")


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
    parts = [
        _("<b>{code}</b> {value} off").format(code=escape(code.upper()), value=escape(value)),
        _("uses {uses}").format(uses=uses),
        _("{n} per buyer").format(n=per_buyer),
    ]
    if until:
        parts.append(_("until {date}").format(date=until))
    if minimum:
        parts.append(_("min {amount}").format(amount=minimum))
    if skus:
        only = ", ".join(f"<code>{escape(s)}</code>" for s in skus)
        parts.append(_("only {skus}").format(skus=only))
    if not active:
        parts.append(_(PROMO_SWITCHED_OFF))
    return " · ".join(parts)


def promo_added(terms_text: str) -> str:
    return _("✅ Promo code added: {terms}").format(terms=terms_text)


PROMO_NONE = __("No promo codes yet. Add one: <code>/promo add CODE 10%</code>")


def promo_list(rows: Iterable[tuple[str, int, str]]) -> str:
    """(terms text, paid orders, revenue text) per code."""
    parts = [_("<b>Promo codes</b> (newest first):")]
    for terms_text, paid, revenue in rows:
        orders = ngettext("{n} paid order", "{n} paid orders", paid).format(n=paid)
        parts.append(
            _("• {terms} — {orders}, revenue {revenue}").format(
                terms=terms_text, orders=orders, revenue=revenue
            )
        )
    return "\n".join(parts)


def promo_off(code: str) -> str:
    return _(
        "The promo code <b>{code}</b> is switched off; orders already placed with it keep "
        "their discount."
    ).format(code=escape(code.upper()))


def promo_unknown(code: str) -> str:
    return _("There is no promo code <b>{code}</b>.").format(code=escape(code.upper()))


def with_discount(total: str, code: str | None, discount: Decimal, currency: str) -> str:
    """An order's total (HTML) and, when it had a promo code, the code and the discount."""
    if not code or not discount:
        return total
    return _("{total} (promo {code}: −{discount})").format(
        total=total, code=escape(code.upper()), discount=money(discount, currency)
    )


PHOTO_NO_SKU = __(
    "Put the product's sku in the photo's caption, e.g. <code>witcher3</code>, to make it that "
    "product's picture."
)


def photo_unknown_sku(sku: str) -> str:
    return _("There is no product with the sku <code>{sku}</code>; /stock lists them all.").format(
        sku=escape(sku)
    )


def photo_saved(sku: str, title: str) -> str:
    return _("Photo saved: <b>{title}</b> (<code>{sku}</code>) shows it from now on.").format(
        sku=escape(sku), title=escape(title)
    )


def photo_refused(reason: str) -> str:
    return _("That photo could not be used: {reason}. Please send another one.").format(
        reason=escape(reason)
    )


translated(__name__)
