"""The growth tools' texts (PRODUCT.md §4.2: the orders' export, the sales chart, referrals),
in English (the msgids) and, through bot/locales, in Russian. Same patterns as en.py:
`__("…")` constants translated when read, `_()` / `ngettext` inside functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from html import escape

from bot.i18n import _, __, ngettext, translated
from bot.screens.texts.en import money, when

# ---- the shopper: invite friends ------------------------------------------------------------

BTN_INVITE = __("🎁 Invite friends")


def invite(link: str, percent: Decimal) -> str:
    """/invite and Help → Invite friends: the shopper's own link, and what it earns them."""
    head = _("<b>Invite friends</b>\nShare your personal link:\n{link}").format(link=escape(link))
    if percent > 0:
        reward = _(
            "When a friend who joins through it makes their first purchase, you get a "
            "{percent}% promo code for your next order."
        ).format(percent=percent_text(percent))
    else:
        reward = _("Friends who join through it are counted as yours.")
    return f"{head}\n\n{reward}"


OWN_INVITE_LINK = __(
    "That is your own invite link: share it with friends. (It does not work for yourself.)"
)


def referral_reward(code: str, percent: Decimal, valid_until: datetime | None) -> str:
    """The referrer's reward message (sent through the outbox, in their language)."""
    text = _(
        "🎁 A friend you invited just made their first purchase. Thank you! Here is your "
        "personal promo code for your next order (−{percent}%): <code>{code}</code>"
    ).format(percent=percent_text(percent), code=escape(code.upper()))
    if valid_until is not None:
        text += "\n" + _("It can be used once, until {date}.").format(date=when(valid_until))
    return text


def percent_text(percent: Decimal) -> str:
    text = format(percent, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---- the admin: /export -----------------------------------------------------------------------

EXPORT_USAGE = __(
    "Usage: <code>/export [from] [to]</code> with dates as YYYY-MM-DD (UTC), e.g. "
    "<code>/export 2026-11-01 2026-11-30</code>. Without dates: the last 30 days."
)


def export_bad_date(text: str) -> str:
    return _(
        "“{text}” is not a date. Write dates as YYYY-MM-DD, e.g. <code>/export 2026-11-01</code>."
    ).format(text=escape(text))


EXPORT_BAD_ORDER = __("The first date is after the second one. Put the earlier date first.")


def export_caption(count: int, first: date, last: date) -> str:
    return ngettext(
        "{n} order created from {first} to {last} (UTC).",
        "{n} orders created from {first} to {last} (UTC).",
        count,
    ).format(n=count, first=first.isoformat(), last=last.isoformat())


# ---- the admin: /stats' chart and referrals ---------------------------------------------------

CHART_TITLE = __("Sales, last 30 days")
CHART_REVENUE = __("Revenue")
CHART_ORDERS = __("Paid orders")


def chart_revenue_axis(currency: str) -> str:
    return _("Revenue, {currency}").format(currency=currency)


def chart_caption(count: int, revenue: Decimal, currency: str, first: date, last: date) -> str:
    orders = ngettext("{n} paid order", "{n} paid orders", count).format(n=count)
    return _("📈 Sales from {first} to {last} (UTC): {orders}, {revenue}.").format(
        first=first.isoformat(),
        last=last.isoformat(),
        orders=orders,
        revenue=money(revenue, currency),
    )


def referrals_line(referred: int, converted: int, revenue: Decimal, currency: str) -> str:
    """/stats' line on referrals."""
    return ngettext(
        "<b>Referrals</b>: {n} customer came through a friend's link, {paid} of them paid; "
        "their sales: {revenue}.",
        "<b>Referrals</b>: {n} customers came through friends' links, {paid} of them paid; "
        "their sales: {revenue}.",
        referred,
    ).format(n=referred, paid=converted, revenue=money(revenue, currency))


REFERRALS_NONE = __(
    "No referrals yet. Customers find their invite link under Help → Invite friends, or /invite."
)


def referrals(rows: Sequence[tuple[int, str | None, int, int, Decimal]], currency: str) -> str:
    """/referrals: (telegram id, username, referred, paid, their sales), best first."""
    if not rows:
        return _(REFERRALS_NONE)
    parts = [_("<b>Top referrers</b> (customers brought · of them paid · their sales):")]
    for place, (telegram_id, username, referred, converted, revenue) in enumerate(rows, 1):
        who = f"@{escape(username)}" if username else f"<code>{telegram_id}</code>"
        parts.append(
            f"{place}. {who} (<code>{telegram_id}</code>) · {referred} · {converted} · "
            f"{money(revenue, currency)}"
        )
    return "\n".join(parts)


ADMIN_HELP_GROWTH = __(
    "<b>Growing the shop</b>:\n"
    "/broadcast — a message to your customers (text or a photo, with a button if you like); "
    "/broadcasts — the recent ones and how they went\n"
    "/export — orders as a CSV file: <code>/export</code> (the last 30 days), "
    "<code>/export 2026-11-01 2026-11-30</code>\n"
    "/stats also sends a chart of the last 30 days\n"
    "/referrals — the customers who brought the most friends (each customer's invite link: "
    "/invite)"
)

translated(__name__)
