"""The cart's Promo code through the real Dispatcher (PRODUCT.md §3.1, issue 16): the code
asked for from the cart screen, the discount on its own line and the new total, Checkout
invoicing exactly that total, each refusal in one sentence with the full price, a code
switched off between the screen and Checkout, and a refund of the discounted order."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from aiogram.methods import EditMessageText, SendMessage

from bot.callbacks import CartPromoAsk, RefundConfirm, RefundDecision
from bot.jobs import reconcile
from bot.shop.cart import view_cart
from storage import OrderLine, saved_promo
from tests.bot.conftest import ADMIN_ID, ALICE, Shop, button_texts, markup_buttons
from tests.bot.test_cart import add, checkout_button, open_cart
from tests.bot.test_promos import promo

TO_PAY = re.compile(r"Total with the promo code: <b>\$([0-9.]+)</b>")
TOTAL = re.compile(r"Total: <b>\$([0-9.]+)</b>")


def shown_total(screen: Any) -> Decimal:
    """What the cart screen says Checkout charges: the discounted total when a code
    applies, else the total."""
    found = TO_PAY.search(screen.text) or TOTAL.search(screen.text)
    assert found is not None, screen.text
    return Decimal(found.group(1))


async def enter(shop: Shop, code: str, user: int = ALICE) -> Any:
    """The cart's Promo code, then the code as a message: the cart shown again."""
    await shop.press(CartPromoAsk(), user)
    prompt = shop.last_text()
    assert isinstance(prompt, EditMessageText) and "promo code" in prompt.text
    assert "Checkout" in prompt.text
    await shop.send(code, user)
    answer = shop.last_text()
    assert isinstance(answer, SendMessage) and answer.chat_id == user
    assert "Your cart" in answer.text
    return answer


async def tap_checkout(shop: Shop, screen: Any, user: int = ALICE) -> tuple[Any, str, bool]:
    """Tap the Checkout of `screen`: (the message shown after, the alert, shown as alert)."""
    update = await shop.press(checkout_button(screen), user)
    (answer,) = shop.answers_to(update)
    return shop.last_text(), answer.text or "", bool(answer.show_alert)


async def three_lines(shop: Shop) -> None:
    await add(shop, "solo")
    await add(shop, "multi", 2)
    await add(shop, "guide")  # 9.99 + 2 × 2.50 + 1.25 = 16.24


async def test_the_cart_has_promo_code_and_back_stops_waiting(shop: Shop) -> None:
    await add(shop, "multi")
    screen = await open_cart(shop)
    texts = button_texts(screen)
    assert texts.index("Remove") < texts.index("Promo code") < texts.index("Checkout")
    promo_button = markup_buttons(screen)[texts.index("Promo code")]
    assert CartPromoAsk.unpack(promo_button.callback_data) == CartPromoAsk()

    await promo(shop, "add SAVE10 10%")
    await shop.press(CartPromoAsk())
    (back,) = markup_buttons(shop.last_text())
    assert back.text == "◀ Back to the cart"
    await shop.press(back.callback_data)
    cart = shop.last_text()
    assert isinstance(cart, EditMessageText) and "Multi Key × 1" in cart.text
    await shop.send("save10")  # no longer taken as a code
    assert "How it works" in shop.last_text().text
    assert await saved_promo(shop.ctx.db, ALICE) is None


async def test_ten_percent_on_a_three_line_cart_is_what_checkout_invoices(shop: Shop) -> None:
    await three_lines(shop)
    await promo(shop, "add SAVE10 10%")
    screen = await enter(shop, "save10")
    assert "Total: <b>$16.24</b>" in screen.text
    assert "Promo <b>SAVE10</b>: −$1.62" in screen.text  # 1.624, half-up to the cent
    assert "Total with the promo code: <b>$14.62</b>" in screen.text
    assert shown_total(screen) == Decimal("14.62")
    assert await saved_promo(shop.ctx.db, ALICE) == "save10"

    placed, _, alert = await tap_checkout(shop, screen)
    assert not alert
    (order,) = await shop.orders()
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == shown_total(screen) == order.total
    assert (order.discount, order.promo_code) == (Decimal("1.62"), "save10")
    lines = await shop.rows(OrderLine, OrderLine.order_id == order.id)
    assert len(lines) == 3 and sum(ln.discount for ln in lines) == Decimal("1.62")
    assert "Promo <b>SAVE10</b>: −$1.62" in placed.text and "$14.62" in placed.text


async def test_a_fixed_code_for_one_product_of_the_cart(shop: Shop) -> None:
    await add(shop, "multi", 2)
    await add(shop, "guide")  # 5.00 + 1.25
    await promo(shop, "add TWO 2 sku=multi")
    screen = await enter(shop, "two")
    assert "Promo <b>TWO</b>: −$2.00" in screen.text
    assert shown_total(screen) == Decimal("4.25")
    await tap_checkout(shop, screen)
    (order,) = await shop.orders()
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == order.total == Decimal("4.25")
    lines = await shop.rows(OrderLine, OrderLine.order_id == order.id)
    # Only the Multi Key line is discounted; the guide is charged in full.
    assert sorted((ln.quantity, ln.discount) for ln in lines) == [
        (1, Decimal(0)),
        (2, Decimal("2.00")),
    ]


async def test_a_fixed_code_never_takes_more_than_its_products(shop: Shop) -> None:
    await add(shop, "multi")
    await add(shop, "guide")  # 2.50 + 1.25
    await promo(shop, "add BIG 6 sku=multi")
    screen = await enter(shop, "big")
    assert "Promo <b>BIG</b>: −$2.50" in screen.text and shown_total(screen) == Decimal("1.25")
    await tap_checkout(shop, screen)
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == Decimal("1.25")


async def test_a_code_for_other_products_says_why_and_the_cart_is_full_price(shop: Shop) -> None:
    await add(shop, "multi")
    await add(shop, "guide")
    await promo(shop, "add INDIE 10% sku=indie1")
    screen = await enter(shop, "indie")
    assert screen.text.startswith("The promo code <b>INDIE</b> does not apply to these products.")
    assert "Promo <b>" not in screen.text and shown_total(screen) == Decimal("3.75")
    assert await saved_promo(shop.ctx.db, ALICE) is None  # refused: not saved
    assert "There is no promo code <b>NOPE</b>" in (await enter(shop, "nope")).text


async def test_a_code_below_its_minimum_on_the_cart(shop: Shop) -> None:
    await add(shop, "multi", 2)
    await add(shop, "guide")  # 6.25
    await promo(shop, "add MIN20 10% min=20")
    screen = await enter(shop, "min20")
    assert screen.text.startswith("The promo code <b>MIN20</b> needs an order of at least $20.00.")
    assert shown_total(screen) == Decimal("6.25")
    await tap_checkout(shop, screen)
    (order,) = await shop.orders()
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == order.total == Decimal("6.25")
    assert order.promo_code is None


async def test_a_saved_code_below_the_minimum_says_so_under_the_total(shop: Shop) -> None:
    await promo(shop, "add MIN5 10% min=5")
    await add(shop, "multi", 2)
    applied = await enter(shop, "min5")  # 5.00: it applies
    assert "Promo <b>MIN5</b>" in applied.text and shown_total(applied) == Decimal("4.50")
    (minus,) = [b for b in markup_buttons(applied) if b.text == "−"]
    await shop.press(minus.callback_data)  # 2.50: below the minimum
    screen = shop.last_text()
    assert "needs an order of at least $5.00. Checkout charges the full price." in screen.text
    assert shown_total(screen) == Decimal("2.50")
    await tap_checkout(shop, screen)
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == Decimal("2.50")


async def test_a_code_switched_off_after_the_cart_was_shown(shop: Shop) -> None:
    await three_lines(shop)
    await promo(shop, "add LATER 20%")
    screen = await enter(shop, "later")
    assert shown_total(screen) == Decimal("12.99")  # 16.24 − 3.25
    await promo(shop, "off LATER")

    shown, alert, as_alert = await tap_checkout(shop, screen)
    assert as_alert and alert.startswith("The promo code LATER has been switched off.")
    assert "tap Checkout again to pay the full price" in alert
    assert await shop.orders() == [] and shop.cp.calls_of("createInvoice") == []
    assert "Promo" not in shown.text and shown_total(shown) == Decimal("16.24")  # shown again
    assert (await view_cart(shop.ctx, ALICE)).units == 4  # the cart is left as it was

    _, alert, as_alert = await tap_checkout(shop, shown)
    assert not as_alert
    (order,) = await shop.orders()
    (params,) = shop.cp.calls_of("createInvoice")
    assert Decimal(params["amount"]) == order.total == Decimal("16.24")
    assert order.promo_code is None


async def test_checkout_from_a_screen_without_the_discount_is_refused(shop: Shop) -> None:
    await add(shop, "multi")
    before = await open_cart(shop)
    await promo(shop, "add SAVE10 10%")
    after = await enter(shop, "save10")
    assert checkout_button(before).h != checkout_button(after).h
    _, alert, as_alert = await tap_checkout(shop, before)  # a price the shopper was not shown
    assert as_alert and "changed since you saw it" in alert
    assert await shop.orders() == []


async def test_a_refund_of_a_discounted_cart_order_never_exceeds_what_was_paid(
    shop: Shop,
) -> None:
    await three_lines(shop)
    await promo(shop, "add SAVE10 10%")
    await tap_checkout(shop, await enter(shop, "save10"))
    (order,) = await shop.orders()
    assert order.invoice_id is not None and order.id is not None
    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    paid = (await shop.order(order.id)).paid_amount
    assert paid is not None and paid == Decimal("14.62")  # the discounted total, in USDT
    await shop.send(f"/refund {order.id} {paid + Decimal('0.01')}", ADMIN_ID)
    assert "would exceed" in shop.last_text().text
    assert shop.cp.transfers == {}

    shop.cp.balances["USDT"] = Decimal("1000")
    await shop.send(f"/refund {order.id}", ADMIN_ID)
    preview = shop.last_text().text
    assert "Solo Key × 1, Multi Key × 2, Speedrun Guide × 1" in preview
    assert "14.62 USDT" in preview
    token = RefundConfirm.unpack(markup_buttons(shop.last_text())[0].callback_data).token
    await shop.press(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)
    (transfer,) = shop.cp.transfers.values()
    assert Decimal(transfer["amount"]) == paid  # what was paid, never the undiscounted price
