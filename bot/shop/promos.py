"""Promo codes: the admin's /promo, and the price of lines with the shopper's code.

`price_lines` is the one call a screen needs (the product card now, the cart after it):
the lines' subtotal, the discount and the total with the shopper's saved code — or why that
code does not apply — computed by the same functions the checkout transaction uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from bot.callbacks import MAX_ID, parse_int
from bot.context import ShopContext
from bot.i18n import _
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from bot.shop.admin import audit
from storage import (
    ORDER_DEPENDENT,
    Buyer,
    PromoExists,
    PromoKind,
    PromoRefusal,
    PromoTerms,
    add_promo,
    all_products,
    forget_promo,
    get_product,
    get_promo,
    list_promos,
    minor_unit,
    quote_promo,
    save_promo,
    saved_promo,
    switch_off_promo,
    to_money,
)

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{2,32}$")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Priced:
    """Lines priced with a promo code. `refusal` set: the code does not apply, and the
    total is the subtotal."""

    subtotal: Decimal
    discount: Decimal
    total: Decimal
    currency: str
    code: str | None = None
    refusal: PromoRefusal | None = None
    minimum: Decimal | None = None  # the code's minimum order, for BELOW_MINIMUM

    @property
    def applies(self) -> bool:
        return self.code is not None and self.refusal is None


def refusal_text(priced: Priced) -> str:
    """One sentence: why the code does not apply."""
    assert priced.refusal is not None and priced.code is not None
    return t.promo_refusal(priced.refusal, priced.code, priced.minimum, priced.currency)


def priced_text(priced: Priced) -> str:
    """The lines under a card's or a cart's total: the discount and the new total, or
    why the saved code does not apply; empty without a code."""
    if priced.code is None:
        return ""
    if priced.refusal is not None:
        if priced.refusal in ORDER_DEPENDENT:
            return t.promo_not_applied(refusal_text(priced))
        return t.promo_forgotten(refusal_text(priced))
    return t.promo_total(priced.code, priced.discount, priced.total, priced.currency)


async def price_lines(
    ctx: ShopContext, telegram_id: int, lines: list[tuple[str, int]], code: str | None = None
) -> Priced:
    """`lines` (sku, quantity) priced with `code`, or else with the shopper's saved code.
    A product no longer on sale counts for nothing (the checkout refuses it anyway)."""
    specs: list[tuple[int, int, Decimal]] = []
    currency = ctx.settings.shop_currency
    for sku, quantity in lines:
        product = await get_product(ctx.db, sku)
        if product is None or product.id is None or not product.active:
            continue
        specs.append((product.id, quantity, product.price))
        currency = product.currency
    subtotal = sum((price * qty for _pid, qty, price in specs), Decimal(0))
    saved = code is None
    if code is None:
        code = await saved_promo(ctx.db, telegram_id)
    plain = Priced(subtotal, Decimal(0), subtotal, currency)
    if code is None or not specs:
        return plain
    quote = await quote_promo(ctx.db, code, telegram_id, specs, currency, ctx.clock())
    if isinstance(quote, PromoRefusal):
        minimum = None
        if quote == PromoRefusal.BELOW_MINIMUM:
            terms = await get_promo(ctx.db, code)
            minimum = terms.min_total if terms else None
        if saved and quote not in ORDER_DEPENDENT:
            # Switched off, expired, used up…: no order can use it, so it is not kept (and
            # Buy, which charges the full price then, says nothing of it).
            await forget_promo(ctx.db, telegram_id, code)
        return Priced(subtotal, Decimal(0), subtotal, currency, code, quote, minimum)
    return Priced(quote.subtotal, quote.discount, quote.total, currency, code)


async def apply_code(ctx: ShopContext, buyer: Buyer, code: str, sku: str, quantity: int) -> Priced:
    """The shopper typed `code` on a product's card: saved for Buy when it applies to
    that product now; refused (and not saved) otherwise."""
    code = code.strip()
    if not CODE_RE.match(code):
        return Priced(Decimal(0), Decimal(0), Decimal(0), "", code, PromoRefusal.UNKNOWN)
    priced = await price_lines(ctx, buyer.telegram_id, [(sku, quantity)], code)
    if priced.applies:
        await save_promo(ctx.db, buyer, code)
    return priced


# --- the admin's /promo -----------------------------------------------------------------


class BadPromo(ValueError):
    """What is wrong with a /promo add, in a sentence."""


MAX_AMOUNT = Decimal(10**9)  # far above any price; keeps the value within the Money column


def _positive_int(name: str, text: str) -> int:
    value = parse_int(text, 1, MAX_ID)  # ASCII digits ("²" is isdigit() too), an INTEGER
    if value is None:
        raise BadPromo(
            _("{name} must be a whole number of at least 1, not {text}.").format(
                name=name, text=repr(text)
            )
        )
    return value


def _amount(name: str, text: str, currency: str) -> Decimal:
    try:
        value = to_money(Decimal(text))
        if not value.is_finite() or value > MAX_AMOUNT:
            raise ValueError(text)
    except (InvalidOperation, ValueError, ArithmeticError):
        raise BadPromo(
            _("{name} must be an amount like 5 or 2.50, not {text}.").format(
                name=name, text=repr(text)
            )
        ) from None
    if value <= 0 or value != value.quantize(minor_unit(currency)):
        raise BadPromo(
            _("{name} must be a positive amount in whole {currency} cents.").format(
                name=name, currency=currency
            )
        )
    return value


def parse_promo_add(
    args: list[str],
    currency: str,
    known_skus: set[str] | None = None,
    now: datetime | None = None,
) -> PromoTerms:
    """`CODE 10%` or `CODE 5` and options; raises BadPromo with the reason."""
    if len(args) < 2:
        raise BadPromo(_("a code and a discount are needed."))
    code, value_text, *options = args
    if not CODE_RE.match(code):
        raise BadPromo(_("a code is 2–32 letters, digits, - or _."))
    if value_text.endswith("%"):
        kind = PromoKind.PERCENT
        try:
            value = to_money(Decimal(value_text[:-1]))
        except (InvalidOperation, ValueError):
            raise BadPromo(_("{text} is not a percentage.").format(text=repr(value_text))) from None
        if value >= HUNDRED:
            raise BadPromo(
                _(
                    "a discount of {percent} or more would make orders free, and Crypto Pay "
                    "cannot invoice zero; use less than {percent}."
                ).format(percent="100%")
            )
        if value <= 0:
            raise BadPromo(_("the percentage must be more than 0."))
    else:
        kind, value = PromoKind.FIXED, _amount(_("the discount"), value_text, currency)
    fields: dict[str, str] = {}
    for option in options:
        name, sep, text = option.partition("=")
        if not sep or name not in ("uses", "per_buyer", "until", "min", "sku") or not text:
            raise BadPromo(_("unknown option {option}.").format(option=repr(option)))
        fields[name] = text
    until = None
    if "until" in fields:
        try:
            day = date.fromisoformat(fields["until"])
        except ValueError:
            bad = fields["until"]
            raise BadPromo(
                _("until must be a date like 2027-01-31, not {text}.").format(text=repr(bad))
            ) from None
        until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)  # the whole day
        if now is not None and until <= now:
            raise BadPromo(_("until={date} has passed already.").format(date=day.isoformat()))
    skus = tuple(s for s in fields.get("sku", "").split(",") if s)
    if known_skus is not None and (unknown := [s for s in skus if s not in known_skus]):
        raise BadPromo(_("no product has the sku {skus}.").format(skus=", ".join(unknown)))
    return PromoTerms(
        code=code,
        kind=kind,
        value=value,
        currency=currency,
        max_uses=_positive_int("uses", fields["uses"]) if "uses" in fields else None,
        per_buyer=_positive_int("per_buyer", fields["per_buyer"]) if "per_buyer" in fields else 1,
        valid_until=until,
        min_total=_amount("min", fields["min"], currency) if "min" in fields else None,
        skus=skus,
    )


def terms_text(terms: PromoTerms) -> str:
    if terms.kind == PromoKind.PERCENT:
        value = f"{terms.value.normalize():f}%"
    else:
        value = f"{t.plain(terms.value)} {terms.currency}"
    until = None
    if terms.valid_until is not None:
        until = (terms.valid_until - timedelta(seconds=1)).date().isoformat()
    return ta.promo_terms(
        terms.code,
        value,
        uses=f"{terms.used}/{terms.max_uses}" if terms.max_uses is not None else f"{terms.used}",
        per_buyer=terms.per_buyer,
        until=until,
        minimum=None if terms.min_total is None else t.money(terms.min_total, terms.currency),
        skus=terms.skus,
        active=terms.active,
    )


async def promo_command(ctx: ShopContext, admin_id: int, args: str) -> str:
    """`/promo add …`, `/promo list`, `/promo off CODE`: the answer, audited."""
    words = args.split()
    action = words[0].lower() if words else ""
    if action == "list" and len(words) == 1:
        summaries = await list_promos(ctx.db)
        await audit(ctx, admin_id, "promo.list", "", "shown")
        if not summaries:
            return ta.PROMO_NONE
        return ta.promo_list(
            (terms_text(s.terms), s.paid_orders, t.money(s.revenue, s.terms.currency))
            for s in summaries
        )
    if action == "off" and len(words) == 2:
        found = await switch_off_promo(ctx.db, words[1])
        await audit(ctx, admin_id, "promo.off", words[1], "off" if found else "not found")
        return ta.promo_off(words[1]) if found else ta.promo_unknown(words[1])
    if action == "add":
        return await _add(ctx, admin_id, words[1:], args)
    await audit(ctx, admin_id, "promo", args, "usage")
    return ta.PROMO_USAGE


async def _add(ctx: ShopContext, admin_id: int, words: list[str], args: str) -> str:
    currency = ctx.settings.shop_currency
    try:
        known = {p.sku for p in await all_products(ctx.db)}
        terms = parse_promo_add(words, currency, known, ctx.clock())
    except BadPromo as bad:
        await audit(ctx, admin_id, "promo.add", args, "refused")
        return ta.promo_bad(str(bad))
    try:
        added = await add_promo(ctx.db, terms)
    except PromoExists:
        await audit(ctx, admin_id, "promo.add", args, "exists")
        return ta.promo_exists(terms.code)
    await audit(ctx, admin_id, "promo.add", args, "added")
    return ta.promo_added(terms_text(added))
