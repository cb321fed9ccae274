"""The cart: Add to cart on a card, /cart and the cart screen's buttons, Checkout."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CartAction, CartAdd, CartButton
from bot.context import ShopContext
from bot.handlers.common import alert_text, buyer_of, show
from bot.handlers.shop import answer_placed, guarded_checkout, refusal_text
from bot.i18n import gettext
from bot.runtime.buy_guard import BuyGuard
from bot.screens.cart import cart_screen
from bot.screens.texts import texts as t
from bot.shop.cart import (
    CartRefusal,
    add_item,
    checkout_cart,
    empty,
    remove_item,
    step_item,
)
from bot.shop.checkout import CheckoutRefusal, CheckoutResult, promo_refusal_text

# Read in the current language where used: `gettext(_ADD_REFUSALS[…])`.
_ADD_REFUSALS = {
    CartRefusal.PRODUCT_GONE: t.PRODUCT_GONE,
    CartRefusal.CART_FULL: t.CART_FULL,
}


def build_router() -> Router:
    router = Router(name="cart")
    router.message.filter(F.chat.type == "private")

    @router.message(Command("cart"))
    async def cart_command(message: Message, ctx: ShopContext) -> None:
        if message.from_user:
            await show(message, await cart_screen(ctx, message.from_user.id))

    @router.callback_query(CartAdd.filter())
    async def add(query: CallbackQuery, callback_data: CartAdd, ctx: ShopContext) -> None:
        change = await add_item(ctx, buyer_of(query.from_user), callback_data.sku, callback_data.q)
        if change.refusal == CartRefusal.SOLD_OUT:
            text = t.cart_short(change.title, 0)
        elif change.refusal is not None:
            text = gettext(_ADD_REFUSALS[change.refusal])
        else:
            text = t.added_to_cart(change.title, change.quantity)
        await query.answer(alert_text(text), show_alert=not change.ok)

    @router.callback_query(CartButton.filter(F.a == CartAction.CHECKOUT))
    async def checkout(
        query: CallbackQuery, callback_data: CartButton, ctx: ShopContext, buy_guard: BuyGuard
    ) -> None:
        buyer = buyer_of(query.from_user)
        result = await guarded_checkout(
            query, ctx, buy_guard, lambda: checkout_cart(ctx, buyer, callback_data.h)
        )
        if result is None:
            return
        if result.ok:
            await answer_placed(query, ctx, result)
            return
        await query.answer(alert_text(_refusal(ctx, result)), show_alert=True)
        await show(query, await cart_screen(ctx, query.from_user.id))  # as it is now

    @router.callback_query(CartButton.filter())
    async def button(query: CallbackQuery, callback_data: CartButton, ctx: ShopContext) -> None:
        user_id, action, product_id = query.from_user.id, callback_data.a, callback_data.p
        note: str | None = None
        if action in (CartAction.INC, CartAction.DEC):
            change = await step_item(
                ctx, user_id, product_id, 1 if action == CartAction.INC else -1
            )
            note = {
                CartRefusal.AT_LIMIT: t.QTY_LIMIT,
                CartRefusal.AT_MIN: t.QTY_MIN,
                CartRefusal.NOT_IN_CART: t.CART_LINE_GONE,
            }.get(change.refusal)  # type: ignore[arg-type]
            if change.refusal in (CartRefusal.AT_LIMIT, CartRefusal.AT_MIN):
                await query.answer(note)
                return
        elif action == CartAction.REMOVE:
            if not await remove_item(ctx, user_id, product_id):
                note = t.CART_LINE_GONE
        elif action == CartAction.EMPTY:
            await empty(ctx, user_id)
            note = t.CART_EMPTIED
        elif action == CartAction.NOOP:
            await query.answer()
            return
        await show(query, await cart_screen(ctx, user_id))
        await query.answer(note)

    return router


def _refusal(ctx: ShopContext, result: CheckoutResult) -> str:
    """Why Checkout placed nothing, naming the product at fault."""
    if result.refusal == CheckoutRefusal.OUT_OF_STOCK and result.item:
        return t.cart_short(result.item, result.left or 0)
    if result.refusal == CheckoutRefusal.PRODUCT_GONE and result.item:
        return t.cart_product_gone(result.item)
    if result.refusal == CheckoutRefusal.OVER_LIMIT:
        return t.cart_over_limit(result.item, result.left or 0)
    if result.refusal == CheckoutRefusal.CART_CHANGED:
        return t.CART_CHANGED
    if result.refusal == CheckoutRefusal.CART_EMPTY:
        return t.CART_EMPTY
    if result.refusal == CheckoutRefusal.PROMO:
        return t.cart_promo_dropped(promo_refusal_text(result))
    return refusal_text(ctx, result)
