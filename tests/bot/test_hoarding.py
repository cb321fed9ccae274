"""Nobody can hoard the stock: Buy checks the quantity on the server (whatever the button
says), a shopper's units in unpaid orders are capped, abandoning many orders makes Buy wait
(on every replica), and a burst of taps does not become a burst of Crypto Pay calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import sqlalchemy as sa
from aiogram import Dispatcher
from aiogram.types import Update

from bot.app import create_dispatcher
from bot.callbacks import OrderAction, OrderButton, ProductAction, ProductCard
from bot.context import ShopContext
from bot.screens.texts import texts as t
from payments import CryptoPayClient, ExchangeRateCache
from storage import Database, Order, OrderStatus
from tests.bot.conftest import BOB, BOT_USERNAME, CP_TOKEN, Shop


def buy_button(sku: str, qty: int = 1) -> str:
    """Buy's callback data as a client may forge it (ProductCard refuses to pack a quantity
    out of its bounds, so the string is written out)."""
    return f"p:{ProductAction.BUY}:{sku}:{qty}"


def answer_of(shop: Shop, update: Update) -> str:
    (answer,) = shop.answers_to(update)
    return answer.text or ""


async def test_forged_quantity_never_reaches_create_invoice(shop: Shop) -> None:
    # The card caps the quantity; a forged callback does not go through the card.
    for sku, qty in (("guide", 10**6), ("guide", 11), ("multi", 4), ("solo", 10**25)):
        update = await shop.press(buy_button(sku, qty))
        text = answer_of(shop, update)
        assert text and "Sorry, something went wrong" not in text, text
    assert shop.cp.calls_of("createInvoice") == []
    assert await shop.orders() == []
    # Past the callback parser's bound the button is simply stale; within it, the server's
    # cap answers.
    assert answer_of(shop, await shop.press(buy_button("guide", 10**6))) == t.STALE_BUTTON
    update = await shop.press(buy_button("guide", 11))
    refusal = "At most 10 items can wait for payment at once. Please choose fewer."
    assert answer_of(shop, update) == refusal


async def test_units_in_unpaid_orders_are_capped_across_orders(shop: Shop) -> None:
    first = await shop.press(buy_button("guide", 6))  # unlimited: no stock stops it
    assert "Order #" in shop.last_text().text, answer_of(shop, first)
    update = await shop.press(buy_button("guide", 5))
    text = answer_of(shop, update)
    assert "You already hold 6 items in unpaid orders (at most 10 at once)" in text
    assert "My orders" in text
    assert len(shop.cp.calls_of("createInvoice")) == 1
    assert len(await shop.orders()) == 1
    # Up to the cap is fine, and someone else has their own.
    await shop.press(buy_button("guide", 4))
    await shop.press(buy_button("guide", 10), user=BOB)
    assert len(shop.cp.calls_of("createInvoice")) == 3


@asynccontextmanager
async def replica(shop: Shop) -> AsyncIterator[Dispatcher]:
    """A second bot process on the same database (and the same Crypto Pay and Telegram)."""
    db = Database(shop.ctx.settings.database_url)
    cryptopay = CryptoPayClient(CP_TOKEN, shop.cp.base_url, timeout=5.0, max_attempts=1)
    rates = ExchangeRateCache(cryptopay, ttl_seconds=60)
    ctx = ShopContext(
        settings=shop.ctx.settings,
        db=db,
        cryptopay=cryptopay,
        rates=rates,
        bot=shop.bot,
        bot_username=BOT_USERNAME,
        clock=shop.clock,
    )
    try:
        yield create_dispatcher(ctx)
    finally:
        await cryptopay.aclose()
        await db.dispose()


async def test_abandoned_orders_make_buy_wait_on_every_replica(shop: Shop) -> None:
    async with replica(shop) as other:
        dispatchers = [shop.dp, other]

        async def press(n: int, data: ProductCard | OrderButton) -> Update:
            update = shop.callback(data)
            await dispatchers[n % 2].feed_update(shop.bot, update)
            return update

        # Orders the shop gives up itself (Crypto Pay down) are not the shopper's doing.
        for n in range(3):
            shop.cp.fail_next("createInvoice", 500, times=2)
            update = await press(n, buy_button("guide"))
            assert "payment service is not answering" in answer_of(shop, update)
        # Five given up by the shopper: four cancelled, one let expire (Check payment sees
        # the invoice expired), alternating between the replicas.
        for n in range(5):
            shop.clock.advance(3)  # a human pace
            await press(n, buy_button("guide"))
            (order,) = [o for o in await shop.orders() if o.status == OrderStatus.PENDING]
            assert order.id is not None and order.invoice_id is not None
            if n < 4:
                await press(n + 1, OrderButton(action=OrderAction.CANCEL, order_id=order.id))
            else:
                shop.cp.expire(order.invoice_id)
                await press(n + 1, OrderButton(action=OrderAction.CHECK, order_id=order.id))
            assert (await shop.order(order.id)).status in (
                OrderStatus.CANCELLED,
                OrderStatus.EXPIRED,
            )
        invoices = len(shop.cp.calls_of("createInvoice"))
        async with shop.ctx.db.session() as s:
            first = await s.scalar(sa.select(sa.func.min(Order.abandoned_at)))
        assert first is not None
        until = first + timedelta(hours=1)
        for n in range(2):  # either replica says the same
            shop.clock.advance(3)
            update = await press(n, buy_button("guide"))
            assert answer_of(shop, update) == t.ordering_paused(until)
        assert "You can order again at " in t.ordering_paused(until)
        assert len(shop.cp.calls_of("createInvoice")) == invoices  # no order, no invoice
        # Someone else is not held up.
        update = shop.callback(buy_button("guide"), user=BOB)
        await other.feed_update(shop.bot, update)
        assert len(shop.cp.calls_of("createInvoice")) == invoices + 1


async def test_a_burst_of_check_payment_taps_costs_a_handful_of_calls(shop: Shop) -> None:
    await shop.press(buy_button("multi", 1))
    (order,) = await shop.orders()
    assert order.id is not None
    check = OrderButton(action=OrderAction.CHECK, order_id=order.id)
    before = len(shop.cp.calls)

    # 40 at once (as fast as Telegram delivers them), then 40 more one after another.
    updates = [shop.callback(check) for _ in range(40)]
    await asyncio.gather(*(shop.dp.feed_update(shop.bot, u) for u in updates))
    for _ in range(40):
        updates.append(await shop.press(check))

    assert len(shop.cp.calls) - before == 1  # one getInvoices for the 80 taps
    answers = [answer_of(shop, u) for u in updates]  # every tap is answered, once
    throttled = [a for a in answers if a == t.TAPS_THROTTLED]
    assert len(throttled) >= 80 - shop.ctx.taps.burst
    no_payment = f"Order #{order.id}: no payment yet. Tap Pay to pay the invoice."
    assert set(answers) == {t.TAPS_THROTTLED, no_payment}

    # A few seconds on, the shopper's taps count again and Crypto Pay is asked afresh.
    shop.clock.advance(6)
    update = await shop.press(check)
    assert answer_of(shop, update) == no_payment
    assert len(shop.cp.calls) - before == 2


async def test_a_burst_of_buy_taps_is_throttled_per_user(shop: Shop) -> None:
    before = len(shop.cp.calls)
    updates = [shop.callback(buy_button("guide")) for _ in range(40)]
    await asyncio.gather(*(shop.dp.feed_update(shop.bot, u) for u in updates))
    answers = [answer_of(shop, u) for u in updates]
    throttled = [a for a in answers if a == t.TAPS_THROTTLED]
    assert len(throttled) >= 40 - shop.ctx.taps.burst
    assert len(shop.cp.calls) - before <= shop.ctx.taps.burst
    # Another shopper is not slowed down by the first one's taps.
    update = await shop.press(buy_button("guide"), user=BOB)
    assert answer_of(shop, update) == ""  # the order message shows the order
    assert shop.last_text().chat_id == BOB
