"""The shopper's Promo code: the card's (or the cart's) button asks for the code, the next
message is it."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CartPromoAsk, PromoAsk
from bot.context import ShopContext
from bot.handlers.common import buyer_of, show
from bot.screens import keyboards
from bot.screens.cart import cart_promo_prompt, cart_screen
from bot.screens.catalog import Screen, product_screen
from bot.screens.texts import texts as t
from bot.shop.cart import apply_cart_code
from bot.shop.promos import apply_code, refusal_text


class PromoEntry(StatesGroup):
    code = State()


def build_router() -> Router:
    router = Router(name="promo")
    router.message.filter(F.chat.type == "private")

    @router.callback_query(PromoAsk.filter())
    async def ask(
        query: CallbackQuery, callback_data: PromoAsk, state: FSMContext, ctx: ShopContext
    ) -> None:
        if callback_data.back:
            await state.clear()
            sku, qty = callback_data.sku, callback_data.qty
            screen = await product_screen(ctx, sku, qty, buyer_id=query.from_user.id)
            await show(query, screen or t.PRODUCT_GONE, None if screen else keyboards.main_menu())
            await query.answer()
            return
        await state.set_state(PromoEntry.code)
        await state.set_data({"sku": callback_data.sku, "qty": callback_data.qty})
        await show(query, t.PROMO_ASK, keyboards.promo_prompt(callback_data.sku, callback_data.qty))
        await query.answer()

    @router.callback_query(CartPromoAsk.filter())
    async def ask_for_cart(
        query: CallbackQuery, callback_data: CartPromoAsk, state: FSMContext, ctx: ShopContext
    ) -> None:
        if callback_data.back:
            await state.clear()
            await show(query, await cart_screen(ctx, query.from_user.id))
            await query.answer()
            return
        await state.set_state(PromoEntry.code)
        await state.set_data({"cart": 1})
        await show(query, t.CART_PROMO_ASK, cart_promo_prompt())
        await query.answer()

    # Commands still work while the bot waits for a code (their routers come first or match
    # any state); any other text is taken as the code.
    @router.message(PromoEntry.code, F.text, ~F.text.startswith("/"))
    async def entered(message: Message, state: FSMContext, ctx: ShopContext) -> None:
        assert message.from_user is not None and message.text is not None
        data = await state.get_data()
        await state.clear()
        if data.get("cart"):
            await _cart_code_entered(message, ctx)
            return
        sku, quantity = str(data.get("sku", "")), int(data.get("qty", 1))
        priced = await apply_code(ctx, buyer_of(message.from_user), message.text, sku, quantity)
        if not priced.applies and priced.refusal is None:  # taken off sale meanwhile
            await message.answer(t.PRODUCT_GONE, reply_markup=keyboards.main_menu())
            return
        if not priced.applies:
            await message.answer(
                refusal_text(priced), reply_markup=keyboards.promo_retry(sku, quantity)
            )
            return
        screen = await product_screen(ctx, sku, quantity, buyer_id=message.from_user.id)
        if screen is None:
            await message.answer(t.PRODUCT_GONE, reply_markup=keyboards.main_menu())
            return
        await show(message, screen)

    @router.message(PromoEntry.code, ~F.text)
    async def not_text(message: Message) -> None:
        await message.answer(t.PROMO_EMPTY)

    return router


async def _cart_code_entered(message: Message, ctx: ShopContext) -> None:
    """The code sent after the cart's Promo code: the cart again, with the discount and the
    new total, or under the sentence saying why the code does not apply."""
    assert message.from_user is not None and message.text is not None
    priced = await apply_cart_code(ctx, buyer_of(message.from_user), message.text)
    screen = await cart_screen(ctx, message.from_user.id)
    if priced is not None and not priced.applies:
        screen = Screen(f"{refusal_text(priced)}\n\n{screen.text}", screen.markup)
    await show(message, screen)
