"""compose: an outbox row's facts become the message, when it is sent."""

from __future__ import annotations

import json

import pytest

from bot.jobs import reconcile
from bot.screens.outgoing import compose
from bot.shop.checkout import checkout
from storage import Buyer, OrderStatus, OutboxKind, OutboxMessage, release_order
from tests.bot.conftest import ADMIN_ID, ALICE, Shop


async def paid_order(shop: Shop, sku: str, qty: int) -> int:
    result = await checkout(shop.ctx, Buyer(ALICE, None, None), sku, qty)
    assert result.ok and result.order_id is not None
    invoice_id = (await shop.order(result.order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    return result.order_id


async def test_a_paid_order_is_announced_as_facts_and_composed_when_sent(shop: Shop) -> None:
    order_id = await paid_order(shop, "multi", 2)
    facts = await shop.outbox(order_id)
    assert [(m.kind, m.chat_id, m.text) for m in facts] == [
        (OutboxKind.GOODS, ALICE, ""),
        (OutboxKind.ADMIN_PAID, ADMIN_ID, ""),
    ]
    goods, admin = [await compose(shop.ctx, m) for m in facts]
    codes = [u.code for u in await shop.units(order_id)]
    assert len(codes) == 2 and all(code in goods.text for code in codes)
    assert f"Order #{order_id} is paid" in goods.text and goods.document_data is None
    assert f"Order #{order_id} paid" in admin.text
    assert "Multi Key × 2" in admin.text and "5.00 USD" in admin.text
    assert not any(code in admin.text for code in codes)  # goods go to the buyer only


async def test_an_unlimited_product_sends_its_content(shop: Shop) -> None:
    order_id = await paid_order(shop, "guide", 1)
    (goods,) = await shop.outbox(order_id, kind=OutboxKind.GOODS)
    assert "https://example.com/guide.pdf" in (await compose(shop.ctx, goods)).text


async def test_an_order_cancelled_and_paid_late_says_so_to_the_admins(shop: Shop) -> None:
    result = await checkout(shop.ctx, Buyer(ALICE, None, None), "solo", 1)
    assert result.order_id is not None
    assert await release_order(shop.ctx.db, result.order_id, OrderStatus.CANCELLED)
    invoice_id = (await shop.order(result.order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) == 1

    (admin,) = await shop.outbox(result.order_id, kind=OutboxKind.ADMIN_LATE_PAID)
    assert "late payment" in (await compose(shop.ctx, admin)).text


async def test_a_row_with_stored_text_is_sent_as_stored(shop: Shop) -> None:
    markup = {"inline_keyboard": [[{"text": "Open", "url": "https://t.me/x"}]]}
    row = OutboxMessage(
        chat_id=ALICE, text="↩ refund sent", kind="notice", reply_markup=json.dumps(markup)
    )
    out = await compose(shop.ctx, row)
    assert out.text == "↩ refund sent" and out.document_data is None
    assert out.reply_markup is not None
    assert out.reply_markup.inline_keyboard[0][0].url == "https://t.me/x"


async def test_a_row_without_text_of_no_known_fact_is_refused(shop: Shop) -> None:
    with pytest.raises(ValueError, match="no fact"):
        await compose(shop.ctx, OutboxMessage(id=5, chat_id=ALICE, kind="notice", order_id=1))


async def test_the_goods_message_names_the_products_and_leads_back(shop: Shop) -> None:
    order_id = await paid_order(shop, "multi", 2)
    (fact,) = await shop.outbox(order_id, kind=OutboxKind.GOODS)
    goods = await compose(shop.ctx, fact)
    assert "Multi Key × 2" in goods.text
    assert "My orders" in goods.text  # where the goods stay
    for unit in await shop.units(order_id):
        assert f"<code>{unit.code}</code>" in goods.text  # codes stay copyable
    assert goods.reply_markup is not None
    buttons = [b for row in goods.reply_markup.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["My orders", "Catalog"]


async def test_a_link_in_the_goods_is_tappable(shop: Shop) -> None:
    order_id = await paid_order(shop, "guide", 1)
    (fact,) = await shop.outbox(order_id, kind=OutboxKind.GOODS)
    text = (await compose(shop.ctx, fact)).text
    url = "https://example.com/guide.pdf"
    assert f'<a href="{url}">{url}</a>' in text and f"<code>{url}</code>" not in text
    assert "Speedrun Guide × 1" in text
