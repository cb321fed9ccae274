"""The cart screen: each line with what changed since it was added, the total, and the
buttons; its Checkout carries the fingerprint of what it shows."""

from __future__ import annotations

from bot.context import ShopContext
from bot.screens import keyboards
from bot.screens.catalog import Screen
from bot.screens.texts import texts as t
from bot.shop.cart import CartView, view_cart


def render_cart(view: CartView) -> Screen:
    if view.empty:
        return Screen(t.CART_EMPTY, keyboards.cart([], fingerprint="", can_checkout=False))
    text = t.cart_screen(
        [
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
        ],
        view.total,
        view.currency,
        view.units,
    )
    markup = keyboards.cart(
        [(ln.product_id, ln.title, ln.quantity) for ln in view.lines],
        fingerprint=view.fingerprint,
        can_checkout=True,
    )
    return Screen(text, markup)


async def cart_screen(ctx: ShopContext, telegram_id: int) -> Screen:
    return render_cart(await view_cart(ctx, telegram_id))
