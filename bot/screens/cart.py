"""The cart screen: each line with what changed since it was added, the total (and the
saved promo code's discount and new total), and the buttons; its Checkout carries the
fingerprint of what it shows."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CartPromoAsk
from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.catalog import Screen
from bot.screens.texts import texts as t
from bot.shop.cart import CartView, view_cart
from bot.shop.promos import Priced, refusal_text
from storage import ORDER_DEPENDENT


def promo_text(priced: Priced | None) -> str:
    """Under the cart's total: the discount and the new total, or why the saved code does
    not apply; empty without a code."""
    if priced is None or priced.code is None:
        return ""
    if priced.refusal is None:
        return t.promo_total(priced.code, priced.discount, priced.total, priced.currency)
    if priced.refusal in ORDER_DEPENDENT:
        return t.cart_promo_not_applied(refusal_text(priced))
    return t.cart_promo_forgotten(refusal_text(priced))


def render_cart(view: CartView) -> Screen:
    if view.empty:
        return Screen(t.CART_EMPTY, keyboards.cart([], fingerprint="", can_checkout=False))
    lines = [
        t.cart_line(
            ln.title,
            ln.quantity,
            ln.price,
            ln.currency,
            added_price=ln.added_price,
            active=ln.active,
            available=ln.available,
        )
        for ln in view.lines
    ]
    promo = promo_text(view.priced)
    if promo:
        text = t.cart_screen_promo(lines, view.total, view.currency, view.units, promo)
    else:
        text = t.cart_screen(lines, view.total, view.currency, view.units)
    markup = keyboards.cart(
        [(ln.product_id, ln.title, ln.quantity) for ln in view.lines],
        fingerprint=view.fingerprint,
        can_checkout=True,
    )
    return Screen(text, with_promo_button(markup, len(view.lines)))


def with_promo_button(markup: InlineKeyboardMarkup, at: int) -> InlineKeyboardMarkup:
    """The cart's keyboard with Promo code after the lines' rows, above Checkout."""
    rows = list(markup.inline_keyboard)
    button = InlineKeyboardButton(text=t.BTN_PROMO, callback_data=CartPromoAsk().pack())
    rows.insert(at, [button])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def cart_promo_prompt() -> InlineKeyboardMarkup:
    """Under "send me your promo code": back to the cart (and no longer waiting for a
    code)."""
    back = InlineKeyboardButton(text=t.BTN_BACK_TO_CART, callback_data=CartPromoAsk(back=1).pack())
    return InlineKeyboardMarkup(inline_keyboard=[[back]])


async def cart_screen(ctx: ShopContext, telegram_id: int) -> Screen:
    return render_cart(await view_cart(ctx, telegram_id))
