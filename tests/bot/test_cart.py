"""The cart through the real Dispatcher (PRODUCT.md §3.1): Add to cart, the cart screen,
Checkout as one order with one invoice, and what a multi-line order looks like afterwards."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiogram.methods import EditMessageText

from bot.app import create_dispatcher
from bot.callbacks import CartAction, CartAdd, CartButton, Menu, MenuAction, OrderButton
from bot.callbacks import OrderAction as OA
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.context import ShopContext
from bot.jobs import reconcile
from bot.screens.outgoing import compose
from storage import (
    Database,
    OrderLine,
    StockStatus,
    add_codes,
    get_customer,
    get_product,
    stock_counts,
)
from tests.bot.conftest import (
    ADMIN_ID,
    ALICE,
    BOB,
    CATALOG,
    Shop,
    button_texts,
    markup_buttons,
)


async def available(shop: Shop, sku: str) -> int:
    product = await get_product(shop.ctx.db, sku)
    assert product is not None and product.id is not None
    return (await stock_counts(shop.ctx.db, product.id)).available


async def product_id(shop: Shop, sku: str) -> int:
    product = await get_product(shop.ctx.db, sku)
    assert product is not None and product.id is not None
    return product.id


async def add(shop: Shop, sku: str, qty: int = 1, user: int = ALICE) -> str:
    update = await shop.press(CartAdd(sku=sku, q=qty), user)
    (answer,) = shop.answers_to(update)
    return answer.text or ""


async def open_cart(shop: Shop, user: int = ALICE) -> Any:
    await shop.send("/cart", user)
    return shop.last_text()


def checkout_button(screen: Any) -> CartButton:
    (button,) = [b for b in markup_buttons(screen) if b.text == "Checkout"]
    return CartButton.unpack(button.callback_data)


async def checkout(shop: Shop, user: int = ALICE) -> tuple[Any, str]:
    """Open the cart, tap its Checkout; returns (the message shown after, the alert)."""
    screen = await open_cart(shop, user)
    update = await shop.press(checkout_button(screen), user)
    (answer,) = shop.answers_to(update)
    return shop.last_text(), answer.text or ""


async def order_lines(shop: Shop, order_id: int) -> list[tuple[int, int, Decimal]]:
    rows = await shop.rows(OrderLine, OrderLine.order_id == order_id)
    return sorted((r.product_id, r.quantity, r.unit_price) for r in rows)


async def test_add_to_cart_the_menu_count_and_the_cart_screen(shop: Shop) -> None:
    assert "Multi Key — 2 in the cart" in await add(shop, "multi", 2)
    assert "Multi Key — 3 in the cart" in await add(shop, "multi", 5)  # max_per_order 3
    await add(shop, "guide")
    await shop.send("/start")
    assert "Cart (4)" in button_texts(shop.last_text())  # units, over all lines
    await shop.send("/start", BOB)
    assert "Cart" in button_texts(shop.last_text())  # Bob's cart is empty: no count

    screen = await open_cart(shop)
    assert "Multi Key × 3 — $7.50" in screen.text
    assert "Speedrun Guide × 1 — $1.25" in screen.text
    assert "Total: <b>$8.75</b>" in screen.text
    texts = button_texts(screen)
    assert texts.count("−") == 2 and texts.count("+") == 2 and texts.count("Remove") == 2
    assert {"Checkout", "Empty cart"} <= set(texts)

    multi = await product_id(shop, "multi")
    update = await shop.press(CartButton(a=CartAction.INC, p=multi))
    assert shop.answers_to(update)[0].text == "That is the most you can buy in one order."
    await shop.press(CartButton(a=CartAction.DEC, p=multi))
    assert "Multi Key × 2 — $5.00" in shop.last_text().text
    await shop.press(CartButton(a=CartAction.REMOVE, p=multi))
    assert "Multi Key" not in shop.last_text().text
    await shop.press(CartButton(a=CartAction.EMPTY))
    assert "Your cart is empty" in shop.last_text().text
    await shop.press(Menu(action=MenuAction.MENU))
    assert "Cart" in button_texts(shop.last_text())


async def test_plus_is_capped_by_stock(shop: Shop) -> None:
    await add(shop, "indie1", 2)
    update = await shop.press(CartButton(a=CartAction.INC, p=await product_id(shop, "indie1")))
    assert shop.answers_to(update)[0].text == "That is the most you can buy in one order."
    assert "Indie One × 2" in (await open_cart(shop)).text


async def test_three_product_cart_is_one_order_one_invoice_and_one_goods_message(
    shop: Shop,
) -> None:
    await add(shop, "solo")
    await add(shop, "multi", 2)
    await add(shop, "guide")
    shown, _ = await checkout(shop)

    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == Decimal("9.99") + 2 * Decimal("2.50") + Decimal("1.25")
    assert params["description"].endswith(": Solo Key × 1, Multi Key × 2, Speedrun Guide × 1"), (
        params["description"]
    )
    (order,) = await shop.orders()
    assert order.id is not None and params["payload"] == str(order.id)
    assert isinstance(shown, EditMessageText)
    assert f"Order #{order.id}" in shown.text and "Total: <b>$16.24</b>" in shown.text
    for line in ("Solo Key × 1", "Multi Key × 2", "Speedrun Guide × 1"):
        assert line in shown.text
    assert button_texts(shown) == ["Pay", "Check payment", "Cancel"]
    assert len(await order_lines(shop, order.id)) == 3
    assert sorted(u.status for u in await shop.units(order.id)) == [StockStatus.RESERVED] * 3
    assert "Your cart is empty" in (await open_cart(shop)).text
    assert order.message_id is not None  # recorded: paying it edits the order message

    assert order.invoice_id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    assert await reconcile(shop.ctx) == 0  # once
    (goods,) = await shop.outbox(order.id, kind="goods")
    text = (await compose(shop.ctx, goods)).text
    assert f"Order #{order.id} is paid" in text
    codes = sorted(u.code for u in await shop.units(order.id))
    assert codes[0].startswith("MULTI") and "SOLO-0001" in codes
    # Grouped by product: each title, then its goods.
    titles = ("Solo Key", "Multi Key", "Speedrun Guide")
    solo, multi, guide = (text.index(f"<b>{title}</b>") for title in titles)
    assert solo < text.index("SOLO-0001") < multi < text.index(codes[0]) < guide
    assert text.index("example.com/guide.pdf") > guide

    # The admin's notice and /order, the buyer's My orders and the order page: every line.
    (notice,) = await shop.outbox(order.id, kind="admin_paid")
    admin_text = (await compose(shop.ctx, notice)).text
    assert "Solo Key × 1, Multi Key × 2, Speedrun Guide × 1" in admin_text
    await shop.send(f"/order {order.id}", ADMIN_ID)
    view = shop.last_text().text
    assert all(
        f"({sku})" in view.replace("<code>", "").replace("</code>", "")
        for sku in ("solo", "multi", "guide")
    )
    await shop.press(Menu(action=MenuAction.ORDERS))
    (row,) = [b for b in button_texts(shop.last_text()) if b.startswith("#")]
    assert "Solo Key ×1 +2" in row and "$16.24" in row
    await shop.press(OrderButton(action=OA.SHOW, order_id=order.id))
    page = shop.last_text().text
    assert all(line in page for line in ("Solo Key × 1", "Multi Key × 2", "SOLO-0001"))
    # The goods again, grouped as in the goods message.
    assert page.index("<b>Solo Key</b>") < page.index("SOLO-0001") < page.index("<b>Multi Key</b>")
    assert page.index("<b>Multi Key</b>") < page.index(codes[0]) < page.index("<b>Speedrun Guide")


async def test_a_refund_of_a_cart_order_never_exceeds_what_was_paid(shop: Shop) -> None:
    await add(shop, "solo")
    await add(shop, "multi", 2)
    await checkout(shop)
    (order,) = await shop.orders()
    assert order.invoice_id is not None and order.id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    await reconcile(shop.ctx)
    paid = (await shop.order(order.id)).paid_amount
    assert paid == Decimal("14.99")
    await shop.send(f"/refund {order.id} {paid + Decimal('0.01')}", ADMIN_ID)
    assert "would exceed" in shop.last_text().text
    await shop.send(f"/refund {order.id}", ADMIN_ID)
    preview = shop.last_text().text
    assert "Solo Key × 1, Multi Key × 2" in preview and "14.99 USDT" in preview


async def test_a_line_short_of_stock_reserves_nothing_and_names_it(shop: Shop) -> None:
    await add(shop, "multi", 1)
    await add(shop, "indie1", 2)
    await shop.press(CartAdd(sku="indie1", q=1), BOB)
    await checkout(shop, BOB)  # Bob takes one of the two Indie One
    shown, alert = await checkout(shop)

    assert alert == "Sorry, only 1 of Indie One left. Lower it to 1 or fewer; nothing was reserved."
    assert len(await shop.orders()) == 1  # Bob's only
    assert len(shop.cp.calls_of("createInvoice")) == 1
    assert await available(shop, "multi") == 5
    assert "Multi Key × 1" in shown.text and "Indie One × 2" in shown.text  # left as it was
    assert "only 1 left" in shown.text


async def test_a_repriced_product_is_shown_and_never_charged_unseen(shop: Shop) -> None:
    await add(shop, "multi", 2)
    before = await open_cart(shop)
    await import_catalog_file(
        shop.ctx.db, parse_catalog(CATALOG.replace('price = "2.50"', 'price = "3.00"'), "USD")
    )
    update = await shop.press(checkout_button(before))  # the old screen's Checkout
    assert "changed since you saw it" in (shop.answers_to(update)[0].text or "")
    assert shop.cp.calls_of("createInvoice") == [] and await shop.orders() == []
    fresh = shop.last_text()
    assert "price changed: $2.50 → <b>$3.00</b> each" in fresh.text
    assert "Total: <b>$6.00</b>" in fresh.text

    await shop.press(checkout_button(fresh))
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == Decimal("6.00")
    (order,) = await shop.orders()
    assert order.id is not None
    assert await order_lines(shop, order.id) == [
        (await product_id(shop, "multi"), 2, Decimal("3.00"))
    ]


async def test_a_product_taken_off_sale_is_shown_and_refused(shop: Shop) -> None:
    await add(shop, "indie1")
    await import_catalog_file(
        shop.ctx.db,
        parse_catalog(
            CATALOG.replace('title = "Indie One"', 'title = "Indie One"\nactive = false'), "USD"
        ),
    )
    screen = await open_cart(shop)
    assert "no longer on sale" in screen.text
    update = await shop.press(checkout_button(screen))
    assert "Indie One is no longer on sale" in (shop.answers_to(update)[0].text or "")
    assert await shop.orders() == []


async def test_two_carts_racing_for_the_last_unit(shop: Shop) -> None:
    for user in (ALICE, BOB):
        await add(shop, "solo", user=user)
        await add(shop, "multi", 1, user=user)
    screens = [await open_cart(shop, user) for user in (ALICE, BOB)]
    pairs = zip(screens, (ALICE, BOB), strict=True)
    updates = [shop.callback(checkout_button(screen), user) for screen, user in pairs]
    await asyncio.gather(*(shop.dp.feed_update(shop.bot, u) for u in updates))

    (order,) = await shop.orders()
    assert order.id is not None
    alerts = [shop.answers_to(u)[0].text or "" for u in updates]
    assert sum("Solo Key is sold out" in a for a in alerts) == 1
    assert await available(shop, "solo") == 0 and await available(shop, "multi") == 4
    assert len(await shop.units(order.id)) == 2
    alice = await get_customer(shop.ctx.db, ALICE)
    assert alice is not None
    loser = BOB if order.customer_id == alice.id else ALICE
    assert "Solo Key × 1" in (await open_cart(shop, loser)).text  # the loser's cart unchanged


async def test_the_cart_survives_a_restart_and_is_shared_by_replicas(shop: Shop) -> None:
    await add(shop, "multi", 2)

    def replica() -> ShopContext:
        return ShopContext(
            settings=shop.ctx.settings,
            db=Database(shop.ctx.settings.database_url),
            cryptopay=shop.ctx.cryptopay,
            rates=shop.ctx.rates,
            bot=shop.bot,
            bot_username=shop.ctx.bot_username,
        )

    other = replica()
    other_dp = create_dispatcher(other)
    try:
        # A process started anew (its own context and pool) sees the cart; a tap on it
        # changes what the first one shows.
        shop_b = Shop(other, shop.cp, shop.session, shop.bot, shop.clock, other_dp, shop.tmp_path)
        assert "Multi Key × 2" in (await open_cart(shop_b)).text
        await shop_b.press(CartAdd(sku="guide", q=1))
        assert "Speedrun Guide × 1" in (await open_cart(shop)).text
        _, _ = await checkout(shop_b)
        assert len(await shop.orders()) == 1
        assert "Your cart is empty" in (await open_cart(shop)).text
    finally:
        await other.db.dispose()


async def test_long_goods_of_a_cart_order_go_as_one_grouped_txt(shop: Shop) -> None:
    long_codes = [f"INDIE-{n:02d}-" + "x" * 400 for n in range(10)]
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"max_reserved_units": 20})  # bulk
    await add_codes(shop.ctx.db, "indie1", long_codes)
    await add(shop, "indie1", 10)
    await add(shop, "solo")
    await checkout(shop)
    (order,) = await shop.orders()
    assert order.invoice_id is not None and order.id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    await reconcile(shop.ctx)
    (goods,) = await shop.outbox(order.id, kind="goods")
    out = await compose(shop.ctx, goods)
    assert out.document_name == f"order-{order.id}.txt" and out.document_data is not None
    assert f"Order #{order.id} is paid" in out.text and "11 items are in the file" in out.text
    document = out.document_data.decode()
    indie, solo = document.index("Indie One:"), document.index("Solo Key:")
    sold = [u.code for u in await shop.units(order.id) if u.code.startswith("INDIE")]
    assert len(sold) == 10 and all(indie < document.index(c) < solo for c in sold)
    assert document.index("SOLO-0001") > solo
