"""The shopper's way in: /start, the catalog, product cards and Buy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CategoryPage, Menu, MenuAction, ProductAction, ProductCard
from bot.context import ShopContext
from bot.handlers.common import alert_text, buyer_of, show, show_orders
from bot.i18n import gettext
from bot.runtime.buy_guard import BuyGuard, Claim
from bot.screens import keyboards
from bot.screens.catalog import category_screen, product_screen
from bot.screens.orders import order_placed, order_screen
from bot.screens.texts import en_growth as tg
from bot.screens.texts import texts as t
from bot.shop import referrals
from bot.shop.cart import units_in_cart
from bot.shop.checkout import CheckoutRefusal, CheckoutResult, checkout, promo_refusal_text
from bot.shop.customers import remember
from bot.webapp.chat import with_open_shop
from storage import OPEN, Attribution, Buyer, order_status, record_order_message

# Read in the current language where used: `gettext(REFUSALS[…])`.
REFUSALS = {
    CheckoutRefusal.PRODUCT_GONE: t.PRODUCT_GONE,
    CheckoutRefusal.OUT_OF_STOCK: t.OUT_OF_STOCK,
    CheckoutRefusal.PAYMENTS_DOWN: t.PAYMENTS_DOWN,
}


def build_router() -> Router:
    router = Router(name="shop")
    router.message.filter(F.chat.type == "private")

    @router.message(CommandStart(deep_link=True, magic=F.args.startswith("p_")))
    async def start_product(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        if message.from_user:
            await remember(ctx, buyer_of(message.from_user))
        sku = (command.args or "")[2:]
        buyer_id = message.from_user.id if message.from_user else None
        screen = await product_screen(ctx, sku, buyer_id=buyer_id)
        if screen is None:
            await message.answer(t.PRODUCT_GONE, reply_markup=keyboards.main_menu())
            return
        await show(message, screen)

    @router.message(CommandStart(deep_link=True, magic=F.args.startswith(referrals.PREFIX)))
    async def start_referred(message: Message, command: CommandObject, ctx: ShopContext) -> None:
        note = None
        if message.from_user:
            buyer = buyer_of(message.from_user)
            # Before `start` remembers the customer: attribution happens only for a customer
            # not known yet.
            arrived = await referrals.arrive(ctx, buyer, command.args or "")
            if arrived == Attribution.OWN_CODE:
                note = tg.OWN_INVITE_LINK
        await start(message, ctx)
        if note is not None:
            await message.answer(note)

    @router.message(Command("invite"))
    async def invite_command(message: Message, ctx: ShopContext) -> None:
        if message.from_user:
            await message.answer(await invite_text(ctx, buyer_of(message.from_user)))

    @router.message(CommandStart())
    async def start(message: Message, ctx: ShopContext) -> None:
        if message.from_user:
            await remember(ctx, buyer_of(message.from_user))
        name = message.from_user.first_name if message.from_user else None
        units = await units_in_cart(ctx, message.from_user.id) if message.from_user else 0
        menu = with_open_shop(keyboards.main_menu(units), ctx.settings)
        await message.answer(t.welcome(name), reply_markup=menu)

    @router.message(Command("help"))
    async def help_command(message: Message, ctx: ShopContext) -> None:
        help_text = t.help_text(ctx.settings.support_contact)
        await message.answer(help_text, reply_markup=keyboards.help_menu())

    @router.message(Command("catalog"))
    async def catalog_command(message: Message, ctx: ShopContext) -> None:
        screen = await category_screen(ctx, "")
        assert screen is not None  # the root always exists
        await show(message, screen)

    @router.message(Command("orders"))
    async def orders_command(message: Message, ctx: ShopContext) -> None:
        if message.from_user:
            await show_orders(message, ctx, message.from_user.id)

    @router.callback_query(Menu.filter())
    async def menu(query: CallbackQuery, callback_data: Menu, ctx: ShopContext) -> None:
        if callback_data.action == MenuAction.CATALOG:
            screen = await category_screen(ctx, "")
            assert screen is not None
            await show(query, screen)
        elif callback_data.action == MenuAction.ORDERS:
            await show_orders(query, ctx, query.from_user.id)
        elif callback_data.action == MenuAction.HELP:
            await show(query, t.help_text(ctx.settings.support_contact), keyboards.help_menu())
        elif callback_data.action == MenuAction.INVITE:
            text = await invite_text(ctx, buyer_of(query.from_user))
            await show(query, text, keyboards.back_to_menu())
        else:
            units = await units_in_cart(ctx, query.from_user.id)
            await show(query, t.welcome(query.from_user.first_name), keyboards.main_menu(units))
        await query.answer()

    @router.callback_query(CategoryPage.filter())
    async def category(query: CallbackQuery, callback_data: CategoryPage, ctx: ShopContext) -> None:
        screen = await category_screen(ctx, callback_data.slug, callback_data.after)
        if screen is None:
            await query.answer(t.CATEGORY_GONE, show_alert=True)
            root = await category_screen(ctx, "")
            assert root is not None
            await show(query, root)
            return
        await show(query, screen)
        await query.answer()

    @router.callback_query(ProductCard.filter(F.action == ProductAction.BUY))
    async def buy(
        query: CallbackQuery, callback_data: ProductCard, ctx: ShopContext, buy_guard: BuyGuard
    ) -> None:
        await _buy(query, callback_data, ctx, buy_guard)

    @router.callback_query(ProductCard.filter())
    async def product(query: CallbackQuery, callback_data: ProductCard, ctx: ShopContext) -> None:
        wanted = callback_data.qty
        stepped = callback_data.action in (ProductAction.INC, ProductAction.DEC)
        if stepped:
            wanted += 1 if callback_data.action == ProductAction.INC else -1
        # One read of the product: the card caps the quantity to stock and max_per_order.
        screen = await product_screen(ctx, callback_data.sku, wanted, buyer_id=query.from_user.id)
        if screen is None:
            await query.answer(t.PRODUCT_GONE, show_alert=True)
            return
        note = None
        if stepped and screen.quantity != wanted:
            note = t.QTY_MIN if wanted < 1 else t.QTY_LIMIT
        if note is None or callback_data.action == ProductAction.SHOW:
            await show(query, screen)
        await query.answer(note)

    return router


async def invite_text(ctx: ShopContext, buyer: Buyer) -> str:
    link = await referrals.my_invite_link(ctx, buyer)
    return tg.invite(link, ctx.settings.referral_reward_percent)


async def _buy(query: CallbackQuery, data: ProductCard, ctx: ShopContext, guard: BuyGuard) -> None:
    result = await guarded_checkout(
        query, ctx, guard, lambda: checkout(ctx, buyer_of(query.from_user), data.sku, data.qty)
    )
    if result is None:
        return
    if not result.ok:
        await query.answer(alert_text(refusal_text(ctx, result)), show_alert=True)
        if result.refusal in (CheckoutRefusal.OUT_OF_STOCK, CheckoutRefusal.PROMO):
            screen = await product_screen(ctx, data.sku, data.qty, buyer_id=query.from_user.id)
            if screen is not None:
                await show(query, screen)
        return
    await answer_placed(query, ctx, result)


async def guarded_checkout(
    query: CallbackQuery,
    ctx: ShopContext,
    guard: BuyGuard,
    place: Callable[[], Awaitable[CheckoutResult]],
) -> CheckoutResult | None:
    """Buy's and Checkout's one order per tapped message: `place` runs unless this message
    already placed an open order or another tap is placing one, or the shopper is tapping
    faster than the throttle allows (answered here: None)."""
    if not await ctx.taps.allow(query.from_user.id, ctx.clock().timestamp()):
        await query.answer(t.TAPS_THROTTLED)
        return None
    message = query.message
    key = (query.from_user.id, message.message_id if message else 0)
    async with guard.turn(key):
        claim = await guard.claim(key)
        if isinstance(claim, int):  # this message already placed an order
            # (Checked to be this buyer's: a key left in Redis by another database names
            # another order.)
            status = await order_status(ctx.db, claim, query.from_user.id)
            if status in OPEN:
                await query.answer(t.already_placed(claim))
                return None
            claim = Claim.FREE if await guard.retake(key, claim) else Claim.BUSY
        if claim is Claim.BUSY:
            await query.answer(t.PLACING)
            return None
        placed: int | None = None
        try:
            result = await place()
            placed = result.order_id if result.ok else None
        finally:
            await guard.done(key, placed)
    return result


def refusal_text(ctx: ShopContext, result: CheckoutResult) -> str:
    if result.refusal == CheckoutRefusal.TOO_MANY_UNPAID:
        return t.too_many_unpaid(ctx.settings.max_unpaid_orders)
    if result.refusal == CheckoutRefusal.TOO_MANY_UNITS:
        return t.too_many_units(result.held, result.limit or ctx.settings.max_reserved_units)
    if result.refusal == CheckoutRefusal.TOO_MANY_ABANDONED:
        assert result.retry_at is not None
        return t.ordering_paused(result.retry_at)
    if result.refusal == CheckoutRefusal.OUT_OF_STOCK and result.left:
        return t.only_left(result.left)
    if result.refusal == CheckoutRefusal.PROMO:
        return t.promo_dropped(promo_refusal_text(result))
    return gettext(REFUSALS[result.refusal])  # type: ignore[index]


async def answer_placed(query: CallbackQuery, ctx: ShopContext, result: CheckoutResult) -> None:
    """The order message (Pay, Check payment, Cancel), recorded on the order so that paying
    or releasing it edits the message."""
    assert result.order_id is not None
    shown = await show(query, order_placed(ctx, result))
    await query.answer()
    if shown is not None:
        status = await record_order_message(
            ctx.db, result.order_id, shown.chat.id, shown.message_id
        )
        if status is not None and status not in OPEN:
            # Settled or released before the message was recorded: nothing is queued to
            # edit it, so it shows the order's state now.
            _, screen = await order_screen(ctx, query.from_user.id, result.order_id)
            if screen is not None:
                await show(query, screen)
