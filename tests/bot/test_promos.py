"""Promo codes through the real Dispatcher: the admin's /promo, the card's Promo code, Buy
with the code, paid, settled and refunded (PRODUCT.md §3.1, §4.1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from aiogram.methods import EditMessageText, SendMessage

from bot.callbacks import (
    OrderAction,
    OrderButton,
    ProductAction,
    ProductCard,
    PromoAsk,
    RefundConfirm,
    RefundDecision,
)
from bot.jobs import reconcile
from bot.screens.outgoing import compose
from bot.screens.texts import texts as t
from storage import AuditEntry, OrderLine, OrderStatus, Product, get_promo, saved_promo
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, Shop, button_texts, markup_buttons


async def promo(shop: Shop, args: str, user: int = ADMIN_ID) -> str:
    await shop.send(f"/promo {args}", user)
    sent = shop.last_text()
    assert isinstance(sent, SendMessage) and sent.chat_id == user
    return str(sent.text)


async def enter(shop: Shop, code: str, sku: str = "multi", qty: int = 1, user: int = ALICE) -> Any:
    """Promo code on the card, then the code as a message: the bot's answer."""
    await shop.press(PromoAsk(sku=sku, qty=qty), user)
    prompt = shop.last_text()
    assert isinstance(prompt, EditMessageText) and "promo code" in prompt.text
    await shop.send(code, user)
    answer = shop.last_text()
    assert isinstance(answer, SendMessage) and answer.chat_id == user
    return answer


async def buy(shop: Shop, sku: str = "multi", qty: int = 1, user: int = ALICE) -> tuple[Any, Any]:
    """Tap Buy: (the new order or None, the tap's answer)."""
    before = {o.id for o in await shop.orders()}
    update = await shop.press(ProductCard(action=ProductAction.BUY, sku=sku, qty=qty), user)
    new = [o for o in await shop.orders() if o.id not in before]
    (answer,) = shop.answers_to(update)
    return (new[0] if new else None), answer


async def test_the_card_has_promo_code(shop: Shop) -> None:
    await shop.send("/start p_multi")
    card = shop.last_text()
    assert button_texts(card)[3:6] == ["Buy", "Add to cart", "Promo code"]
    assert PromoAsk.unpack(markup_buttons(card)[5].callback_data) == PromoAsk(sku="multi", qty=1)


async def test_percent_code_applied_bought_paid_settled_and_refunded(shop: Shop) -> None:
    assert "added" in await promo(shop, "add SAVE10 10%")
    card = await enter(shop, "save10", qty=2)  # case-insensitive
    assert "total $5.00" in card.text
    assert "Promo <b>SAVE10</b>: −$0.50" in card.text
    assert "Total with the promo code: <b>$4.50</b>" in card.text
    assert await saved_promo(shop.ctx.db, ALICE) == "save10"

    order, _ = await buy(shop, qty=2)
    assert order is not None and order.id is not None
    assert (order.total, order.discount, order.promo_code) == (
        Decimal("4.50"),
        Decimal("0.50"),
        "save10",
    )
    lines = await shop.rows(OrderLine, OrderLine.order_id == order.id)
    assert [ln.discount for ln in lines] == [Decimal("0.50")]
    placed = shop.last_text()
    assert "Promo <b>SAVE10</b>: −$0.50" in placed.text and "$4.50" in placed.text
    assert order.invoice_id is not None
    assert Decimal(shop.cp.invoice(order.invoice_id)["amount"]) == Decimal("4.50")
    assert await saved_promo(shop.ctx.db, ALICE) is None  # used: the next Buy is full price

    await shop.cp.pay(order.invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    paid = await shop.order(order.id)
    assert paid.status == OrderStatus.PAID  # the paid amount matched the discounted total
    assert paid.paid_amount is not None

    await shop.press(OrderButton(action=OrderAction.SHOW, order_id=order.id))
    assert "Promo <b>SAVE10</b>: −$0.50" in shop.last_text().text
    await shop.send(f"/order {order.id}", ADMIN_ID)
    assert "$4.50 (promo SAVE10: −$0.50)" in shop.last_text().text
    (notice,) = await shop.outbox(order.id, "admin_paid")
    assert "promo SAVE10: −$0.50" in (await compose(shop.ctx, notice)).text
    (edit,) = await shop.outbox(order.id, "order_message")
    settled = (await compose(shop.ctx, edit)).text
    assert "Promo <b>SAVE10</b>: −$0.50" in settled and "Total: $4.50" in settled

    listing = await promo(shop, "list")
    assert "<b>SAVE10</b> 10% off" in listing and "uses 1" in listing
    assert "1 paid order, revenue $4.50" in listing

    shop.cp.balances["USDT"] = Decimal("1000")
    await shop.send(f"/refund {order.id}", ADMIN_ID)
    token = RefundConfirm.unpack(markup_buttons(shop.last_text())[0].callback_data).token
    await shop.press(RefundConfirm(decision=RefundDecision.CONFIRM, token=token), ADMIN_ID)
    (transfer,) = shop.cp.transfers.values()
    assert Decimal(transfer["amount"]) == paid.paid_amount  # what was paid, never the price
    await shop.send(f"/refund {order.id} 0.01", ADMIN_ID)
    assert not shop.cp.transfers.keys() - {transfer["transfer_id"]}
    assert len(shop.cp.transfers) == 1


async def test_fixed_code_with_a_minimum_and_products(shop: Shop) -> None:
    assert "added" in await promo(shop, "add FIVE 5 min=5 sku=multi,indie1 uses=3 per_buyer=2")
    refused = await enter(shop, "FIVE", sku="solo")
    assert refused.text == "The promo code <b>FIVE</b> does not apply to these products."
    assert button_texts(refused) == ["Promo code", "◀ Back to the product"]
    below = await enter(shop, "five", qty=1)
    assert below.text == "The promo code <b>FIVE</b> needs an order of at least $5.00."
    card = await enter(shop, "five", qty=3)
    assert "Promo <b>FIVE</b>: −$5.00" in card.text and "<b>$2.50</b>" in card.text
    order, _ = await buy(shop, qty=3)
    assert order is not None and order.total == Decimal("2.50")
    # per_buyer=2: the same buyer may use it once more.
    assert "Promo <b>FIVE</b>" in (await enter(shop, "five", sku="indie1", qty=2)).text
    order, _ = await buy(shop, sku="indie1", qty=2)
    assert order is not None and order.total == Decimal("3.00")
    again = await enter(shop, "five", sku="indie1", qty=2)
    assert again.text == "You have already used the promo code <b>FIVE</b>."


async def test_each_refusal_is_one_sentence(shop: Shop) -> None:
    assert (await enter(shop, "NOPE")).text == (
        "There is no promo code <b>NOPE</b>. Please check the spelling."
    )
    await promo(shop, "add GONE 10%")
    assert "switched off" in await promo(shop, "off gone")
    assert (await enter(shop, "gone")).text == "The promo code <b>GONE</b> has been switched off."

    today = shop.ctx.clock().date().isoformat()
    await promo(shop, f"add SOON 10% until={today}")
    assert "Promo <b>SOON</b>" in (await enter(shop, "soon")).text  # valid all of today
    shop.clock.advance(2 * 86400)
    assert (await enter(shop, "soon")).text == "The promo code <b>SOON</b> has expired."

    await promo(shop, "add ONCE 10% uses=1")
    await enter(shop, "once", user=BOB)
    order, _ = await buy(shop, user=BOB)
    assert order is not None and order.promo_code == "once"
    assert (await enter(shop, "once")).text == "The promo code <b>ONCE</b> has been used up."

    await promo(shop, "add MINE 10%")
    await enter(shop, "mine")
    await buy(shop)
    assert (await enter(shop, "mine")).text == "You have already used the promo code <b>MINE</b>."

    await promo(shop, "add BIG 3")
    zero = await enter(shop, "big")  # 3 off a 2.50 key: nothing left to invoice
    assert "would bring the total to zero" in zero.text


async def test_a_saved_code_that_stopped_applying_is_dropped_at_buy(shop: Shop) -> None:
    await promo(shop, "add LATER 20%")
    await enter(shop, "later")
    await promo(shop, "off LATER")
    order, answer = await buy(shop)
    assert order is None
    assert answer.show_alert and "has been switched off" in answer.text
    assert "tap Buy again to pay the full price" in answer.text
    card = shop.last_text()
    assert "Promo" not in card.text and "total $2.50" in card.text
    order, _ = await buy(shop)
    assert order is not None and order.total == Decimal("2.50") and order.promo_code is None


async def test_cancelled_order_gives_the_use_back(shop: Shop) -> None:
    await promo(shop, "add ONE 10% uses=1")
    await enter(shop, "one")
    order, _ = await buy(shop)
    assert order is not None and order.id is not None
    terms = await get_promo(shop.ctx.db, "one")
    assert terms is not None and terms.used == 1
    await shop.press(OrderButton(action=OrderAction.CANCEL, order_id=order.id))
    assert (await shop.order(order.id)).status == OrderStatus.CANCELLED
    terms = await get_promo(shop.ctx.db, "one")
    assert terms is not None and terms.used == 0
    assert "Promo <b>ONE</b>" in (await enter(shop, "one", user=BOB)).text


async def test_admin_input_is_checked_and_audited(shop: Shop) -> None:
    hundred = await promo(shop, "add FREE 100%")
    assert "100% or more" in hundred and "Crypto Pay cannot invoice zero" in hundred
    assert "Usage" in await promo(shop, "")
    assert "Usage" in await promo(shop, "add X1")
    assert "unknown option 'foo=1'" in await promo(shop, "add X1 5 foo=1")
    assert "no product has the sku nosuch" in await promo(shop, "add X1 5 sku=nosuch")
    assert "has passed already" in await promo(shop, "add X1 5 until=2020-01-01")
    assert "whole USD cents" in await promo(shop, "add X1 5.001")
    # Numbers that would have raised: superscript digits, past the INTEGER column, huge.
    for typed in ("add X1 5 uses=²", "add X1 5 uses=99999999999999999999", "add X1 5 per_buyer=0"):
        assert "whole number of at least 1" in await promo(shop, typed)
    assert "an amount like 5 or 2.50" in await promo(shop, "add X1 5000000000000000000")
    assert "an amount like 5 or 2.50" in await promo(shop, "add X1 5 min=1e999")
    assert "exists already" not in await promo(shop, "add X1 5")
    assert "exists already" in await promo(shop, "add x1 7")
    assert "There is no promo code" in await promo(shop, "off nosuch")
    assert "No promo codes" not in await promo(shop, "list")
    audit = [(a.action, a.result) for a in await shop.rows(AuditEntry)]
    assert ("promo.add", "refused") in audit and ("promo.add", "added") in audit
    assert ("promo.add", "exists") in audit and ("promo.list", "shown") in audit
    assert ("promo.off", "not found") in audit

    await shop.send("/promo add SNEAKY 50%", ALICE)  # not an admin: no such command
    assert await get_promo(shop.ctx.db, "sneaky") is None


async def test_back_from_the_prompt_stops_waiting_for_a_code(shop: Shop) -> None:
    await promo(shop, "add SAVE10 10%")
    await shop.press(PromoAsk(sku="multi", qty=2))
    prompt = shop.last_text()
    (back,) = markup_buttons(prompt)
    assert back.text == "◀ Back to the product"
    await shop.press(back.callback_data)
    card = shop.last_text()
    assert isinstance(card, EditMessageText) and "Multi Key" in card.text
    assert "Quantity: <b>2</b>" in card.text
    await shop.send("save10")  # no longer taken as a code: the ordinary help
    assert "How it works" in shop.last_text().text
    assert await saved_promo(shop.ctx.db, ALICE) is None


async def test_a_code_for_other_products_stays_and_buy_charges_the_full_price(shop: Shop) -> None:
    await promo(shop, "add MULTI 10% sku=multi")
    assert "Promo <b>MULTI</b>" in (await enter(shop, "multi")).text
    await shop.press(ProductCard(action=ProductAction.SHOW, sku="indie1"))
    card = shop.last_text()
    assert "does not apply to these products. Buy charges the full price." in card.text
    order, _ = await buy(shop, sku="indie1")
    assert order is not None and order.total == Decimal("4.00") and order.promo_code is None
    assert await saved_promo(shop.ctx.db, ALICE) == "multi"  # kept for the product it fits
    order, _ = await buy(shop, sku="multi", qty=2)
    assert order is not None and order.total == Decimal("4.50") and order.promo_code == "multi"


async def test_a_saved_code_nobody_can_use_is_removed_when_the_card_shows(shop: Shop) -> None:
    await promo(shop, "add SHORT 10%")
    await enter(shop, "short")
    await promo(shop, "off short")
    await shop.press(ProductCard(action=ProductAction.INC, sku="multi", qty=1))
    card = shop.last_text()
    assert "has been switched off. It was removed; Buy charges the full price." in card.text
    assert await saved_promo(shop.ctx.db, ALICE) is None
    order, answer = await buy(shop, qty=2)
    assert order is not None and order.total == Decimal("5.00") and not answer.show_alert


async def test_a_product_taken_off_sale_while_the_code_is_typed(shop: Shop) -> None:
    assert "added" in await promo(shop, "add SAVE10 10%")
    await shop.press(PromoAsk(sku="multi", qty=1))
    async with shop.ctx.db.transaction() as s:
        await s.execute(sa.update(Product).where(Product.sku == "multi").values(active=False))
    await shop.send("SAVE10")
    answer = shop.last_text()
    assert isinstance(answer, SendMessage) and answer.text == t.PRODUCT_GONE
