"""PRODUCT.md §5 on the paths this change added: a Mini App checkout racing a chat checkout
for the last unit (3: no overselling); a referred buyer's first payment arriving as duplicate
concurrent webhooks while reconciliation runs rewards the referrer once (2); a Mini App
checkout through Crypto Pay 5xx (8); a cart order paid after it expired and lost one line's
stock is recorded and flagged for refund whole (1, 3); a signed webhook short of a cart
order's total delivers nothing (6); and at DEBUG a Mini App purchase logs no goods, init
data, tokens or webhook body, and a referral reward not its code (9)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.jobs import reconcile
from bot.logs import QUIET_LOGGERS, setup_logging
from bot.runtime.delivery import OutboxWorker
from bot.shop import checkout as chat_checkout
from bot.web import build_web_app
from bot.webapp import add_webapp
from storage import Buyer, OrderStatus, OutboxKind
from storage.promos import PromoCode
from tests.bot.conftest import ALICE, BOB, BOT_TOKEN, CP_TOKEN, Shop
from tests.bot.test_cart import add, available, checkout, checkout_button, open_cart
from tests.bot.test_jobs import _expire_keeping_invoice, invoice_of, place
from tests.bot.test_referrals import invite_link
from tests.bot.test_webapp_api import auth


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(shop.ctx)
    add_webapp(app, shop.ctx)
    async with TestClient(TestServer(app)) as c:
        shop.cp.webhook_url = str(c.make_url(shop.ctx.settings.cryptopay_webhook_path))
        yield c


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


async def test_a_mini_app_checkout_racing_a_chat_checkout_for_the_last_unit(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    resp = await client.post("/app/api/cart/items", json={"sku": "solo"}, headers=auth(ALICE))
    page_cart = await resp.json()
    assert resp.status == 200, page_cart
    await add(shop, "solo", user=BOB)
    tap = shop.callback(checkout_button(await open_cart(shop, BOB)), BOB)

    page, _ = await asyncio.gather(
        client.post(
            "/app/api/checkout",
            json={"fingerprint": page_cart["fingerprint"]},
            headers=auth(ALICE),
        ),
        shop.dp.feed_update(shop.bot, tap),
    )
    page_answer = await page.json()
    chat_alert = shop.answers_to(tap)[0].text or ""

    (order,) = await shop.orders()  # one of them placed it, and only one
    assert order.id is not None
    assert len(shop.cp.created_invoices) == 1
    assert await available(shop, "solo") == 0
    assert len(await shop.units(order.id)) == 1
    page_won = page.status == 200
    assert page_won != ("Solo Key is sold out" not in chat_alert), (page_answer, chat_alert)
    if not page_won:
        assert page.status == 409 and "Solo Key is sold out" in page_answer["error"]


async def test_duplicate_webhooks_racing_reconciliation_reward_the_referrer_once(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{code}", BOB)
    result = await chat_checkout.checkout(shop.ctx, Buyer(BOB, None, None), "multi", 1)
    assert result.ok and result.order_id is not None, result
    invoice_id = (await shop.order(result.order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)

    statuses, _ = await asyncio.gather(
        shop.cp.deliver_webhook(invoice_id, times=4, concurrently=True), reconcile(shop.ctx)
    )
    assert statuses == [200] * 4
    assert await reconcile(shop.ctx) == 0

    (row,) = await shop.outbox(kind=OutboxKind.REFERRAL_REWARD)
    assert (row.chat_id, row.order_id) == (ALICE, result.order_id)
    assert len(await shop.rows(PromoCode, PromoCode.owner_id.is_not(None))) == 1
    assert len(await shop.units(result.order_id)) == 1


@pytest.mark.usefixtures("restore_logging")
async def test_a_mini_app_purchase_at_debug_logs_no_goods_init_data_or_bodies(
    client: TestClient[Any, Any], shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG", "text")
    headers = auth(ALICE)
    await client.post("/app/api/cart/items", json={"sku": "multi", "quantity": 2}, headers=headers)
    resp = await client.post("/app/api/cart/items", json={"sku": "guide"}, headers=headers)
    cart = await resp.json()
    resp = await client.post(
        "/app/api/checkout", json={"fingerprint": cart["fingerprint"]}, headers=headers
    )
    order = await resp.json()
    assert resp.status == 200, order
    invoice = next(iter(shop.cp.invoices.values()))
    assert await shop.cp.pay(invoice["invoice_id"]) == 200
    resp = await client.get(f"/app/api/orders/{order['id']}", headers=headers)
    paid = await resp.json()
    codes = [code for g in paid["goods"] for code in g["items"]]
    assert len(codes) == 3, paid  # two Multi keys and the guide: the goods were shown

    output = capsys.readouterr().err
    # Our DEBUG lines were written (the webhook's among them): silence below means something.
    assert "bot.web: Crypto Pay webhook verified" in output, output
    (delivery,) = shop.cp.webhook_deliveries
    init_data = headers["Authorization"].removeprefix("tma ")
    secrets = {f"goods {code}": code for code in codes}
    secrets |= {
        "init data hash": init_data.rsplit("hash=", 1)[1],
        "bot token": BOT_TOKEN,
        "Crypto Pay token": CP_TOKEN,
        "webhook body": delivery.body.decode()[:60],
        "webhook signature": delivery.headers["crypto-pay-api-signature"],
        "invoice hash": invoice["hash"],
    }
    leaked = [name for name, value in secrets.items() if value in output]
    assert leaked == [], (leaked, output[-3000:])


async def test_a_mini_app_checkout_keeps_serving_through_crypto_pay_5xx(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    headers = auth(ALICE)
    body = {"sku": "multi", "quantity": 2}
    resp = await client.post("/app/api/cart/items", json=body, headers=headers)
    cart = await resp.json()
    assert resp.status == 200, cart

    shop.cp.fail_next("createInvoice", 500, times=2)  # every attempt of the client
    seen = {"fingerprint": cart["fingerprint"]}
    failed = await client.post("/app/api/checkout", json=seen, headers=headers)
    refusal = await failed.json()
    assert failed.status == 409 and "payment service is not answering" in refusal["error"]
    assert await available(shop, "multi") == 5  # nothing stays reserved
    (cancelled,) = await shop.orders()
    assert cancelled.status == OrderStatus.CANCELLED and cancelled.invoice_id is None
    resp = await client.get("/app/api/cart", headers=headers)
    kept = await resp.json()
    assert [(ln["sku"], ln["quantity"]) for ln in kept["lines"]] == [("multi", 2)]

    shop.cp.fail_next("createInvoice", 502)  # one nginx page: the client's retry gets through
    placed = await client.post(
        "/app/api/checkout", json={"fingerprint": kept["fingerprint"]}, headers=headers
    )
    order = await placed.json()
    assert placed.status == 200 and order["pending"] is True, order
    assert len(shop.cp.created_invoices) == 1
    assert await available(shop, "multi") == 3


async def test_a_cart_order_paid_late_without_one_lines_stock_needs_refund_whole(
    shop: Shop,
) -> None:
    await add(shop, "solo")
    await add(shop, "multi", 2)
    await checkout(shop)
    (cart_order,) = await shop.orders()
    assert cart_order.id is not None
    await _expire_keeping_invoice(shop, cart_order.id)
    bob = await place(shop, "solo", user=BOB)  # the unit the cart order released

    await shop.cp.pay(await invoice_of(shop, cart_order.id), send_webhook=False)
    assert await reconcile(shop.ctx) == 1  # recorded, not lost

    late = await shop.order(cart_order.id)
    assert late.status == OrderStatus.NEEDS_REFUND and late.paid_amount == late.total
    assert await shop.units(cart_order.id) == []  # no line half-delivered
    assert await available(shop, "multi") == 5
    assert len(await shop.units(bob)) == 1  # Bob's unit stays his
    assert await shop.outbox(cart_order.id, kind="goods") == []


async def test_a_signed_webhook_short_of_a_cart_orders_total_delivers_nothing(
    client: TestClient[Any, Any], shop: Shop
) -> None:
    await add(shop, "solo")
    await add(shop, "multi", 2)
    await checkout(shop)
    (order,) = await shop.orders()
    assert order.id is not None and order.total == Decimal("14.99")
    invoice_id = await invoice_of(shop, order.id)
    shop.cp.invoice(invoice_id)["amount"] = "9.99"  # one line's worth, signed all the same
    assert await shop.cp.pay(invoice_id) == 200

    reviewed = await shop.order(order.id)
    assert reviewed.status == OrderStatus.NEEDS_REVIEW
    assert await shop.units(order.id) == []
    assert await shop.outbox(order.id, kind="goods") == []
    assert await available(shop, "solo") == 1 and await available(shop, "multi") == 5


@pytest.mark.usefixtures("restore_logging")
async def test_a_referral_reward_sent_at_debug_logs_not_its_code(
    client: TestClient[Any, Any], shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG", "text")
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{code}", BOB)
    result = await chat_checkout.checkout(shop.ctx, Buyer(BOB, None, None), "multi", 1)
    assert result.ok and result.order_id is not None, result
    assert await shop.cp.pay(await invoice_of(shop, result.order_id)) == 200
    worker = OutboxWorker(shop.ctx)
    while await worker.drain_once():
        pass

    (promo,) = await shop.rows(PromoCode, PromoCode.owner_id.is_not(None))
    texts = {
        chat: [
            getattr(m, "text", "") or ""
            for m in shop.session.accepted
            if getattr(m, "chat_id", None) == chat
        ]
        for chat in (ALICE, BOB)
    }
    assert any(promo.code.upper() in text for text in texts[ALICE])  # the reward went out
    assert any("MULTI-" in text for text in texts[BOB])  # and the goods
    output = capsys.readouterr().err
    assert "bot.web: Crypto Pay webhook verified" in output, output
    assert promo.code.upper() not in output.upper(), output[-3000:]
    assert "MULTI-" not in output, output[-3000:]
