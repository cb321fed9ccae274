"""The Crypto Pay webhook, /healthz and /metrics against the real aiohttp app (issue 5)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.jobs import BATCH, fetch_invoices, settle_together
from bot.screens.outgoing import compose
from bot.shop.checkout import checkout
from bot.web import build_web_app, webhook_settler
from storage import Buyer, Database, OrderStatus, pending_orders_with_invoice, upgrade
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, CATALOG, CP_TOKEN, VECTORS, Shop
from tests.conftest import PG_ADMIN_URL, PgServer, pg_dsn

HEADER = "crypto-pay-api-signature"
UNREACHABLE_DB = "postgresql+asyncpg://postgres@127.0.0.1:1/x"


def sign(body: bytes, token: str = CP_TOKEN) -> str:
    key = hashlib.sha256(token.encode()).digest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def compact(update: dict[str, Any]) -> bytes:
    return json.dumps(update, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_web_app(shop.ctx))) as c:
        shop.cp.webhook_url = str(c.make_url(shop.ctx.settings.cryptopay_webhook_path))
        yield c


async def post(client: TestClient[Any, Any], shop: Shop, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[HEADER] = signature
    return await client.post(shop.ctx.settings.cryptopay_webhook_path, data=body, headers=headers)


async def place(shop: Shop, sku: str = "multi", qty: int = 1, user: int = ALICE) -> int:
    result = await checkout(shop.ctx, Buyer(user, None, None), sku, qty)
    assert result.ok and result.order_id is not None
    return result.order_id


async def invoice_of(shop: Shop, order_id: int) -> int:
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    return invoice_id


def sample(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def sample_cases() -> list[dict[str, Any]]:
    return sample("webhook_signature_vectors.json")["cases"]


@pytest.mark.parametrize("case", sample_cases(), ids=lambda c: c["name"])
async def test_signature_vectors(shop: Shop, client: TestClient[Any, Any], case: Any) -> None:
    # The context's token is the case's token (NEG_wrong_token: signed with another one).
    token = SecretStr(case["token"])
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"cryptopay_token": token})
    response = await post(
        client, shop, case["body"].encode("utf-8"), case["header_crypto_pay_api_signature"]
    )
    if case["expected_valid"]:
        assert response.status == 200, await response.text()
        # None of these invoices is ours: recorded, not settled.
        assert len(await shop.events()) == 1
    else:
        assert response.status == 401
        assert await shop.events() == []


async def test_missing_signature_is_401(shop: Shop, client: TestClient[Any, Any]) -> None:
    body = sample_cases()[2]["body"].encode()
    assert (await post(client, shop, body, None)).status == 401
    assert (await post(client, shop, body, "")).status == 401
    assert await shop.events() == []


async def test_body_over_one_mib_is_413(shop: Shop, client: TestClient[Any, Any]) -> None:
    body = b'{"pad":"' + b"x" * (1024 * 1024) + b'"}'
    response = await post(client, shop, body, sign(body))
    assert response.status == 413


async def test_signed_but_not_json_is_400(shop: Shop, client: TestClient[Any, Any]) -> None:
    for body in (b"not json at all", b"[1,2,3]", b'{"update_type":"invoice_paid"}'):
        response = await post(client, shop, body, sign(body))
        assert response.status == 400, body


async def test_other_update_types_are_ignored(shop: Shop, client: TestClient[Any, Any]) -> None:
    order_id = await place(shop)
    invoice_id = await invoice_of(shop, order_id)
    await shop.cp.pay(invoice_id, send_webhook=False)
    update = {
        "update_id": 7,
        "update_type": "invoice_refunded",
        "request_date": "2026-01-01T00:00:00.000Z",
        "payload": shop.cp.invoice(invoice_id),
    }
    body = compact(update)
    response = await post(client, shop, body, sign(body))
    assert response.status == 200
    assert (await response.json())["ignored"] is True
    assert (await shop.order(order_id)).status == OrderStatus.PENDING
    assert await shop.events() == []


async def test_unknown_invoice_is_200_and_recorded(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    case = next(c for c in sample_cases() if c["name"] == "minimal")
    body = case["body"].encode()
    response = await post(client, shop, body, case["header_crypto_pay_api_signature"])
    assert response.status == 200
    assert (await response.json())["result"] == "unknown_order"
    (event,) = await shop.events()
    assert event.invoice_id == json.loads(body)["payload"]["invoice_id"]
    assert event.order_id is None
    assert event.source == "webhook"


async def test_paid_webhook_from_the_fake_settles(shop: Shop, client: TestClient[Any, Any]) -> None:
    order_id = await place(shop, "multi", 2)
    invoice_id = await invoice_of(shop, order_id)
    status = await shop.cp.pay(invoice_id)  # the fake POSTs its signed compact JSON
    assert status == 200
    (delivery,) = shop.cp.webhook_deliveries
    assert json.loads(delivery.response_body)["result"] == "settled"
    order = await shop.order(order_id)
    assert order.status == OrderStatus.PAID
    assert order.paid_amount == Decimal(shop.cp.invoice(invoice_id)["paid_amount"])
    (goods,) = await shop.outbox(order_id, kind="goods")
    text = (await compose(shop.ctx, goods)).text
    assert goods.chat_id == ALICE and f"#{order_id}" in text
    assert "MULTI-" in text
    (admin,) = await shop.outbox(order_id, kind="admin_paid")
    assert admin.chat_id == ADMIN_ID


async def test_webhooks_arriving_together_share_one_transaction(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook route's group commit: payments whose webhooks arrive while no settle
    transaction runs are settled together in the next one, each answered on its own."""
    orders = [await place(shop, "guide", user=user) for user in (ALICE, BOB, 3003)]
    invoice_ids = [await invoice_of(shop, order_id) for order_id in orders]
    for invoice_id in invoice_ids:
        await shop.cp.pay(invoice_id, send_webhook=False)
    paid = await shop.ctx.cryptopay.get_invoices(invoice_ids=invoice_ids)
    settle = webhook_settler(shop.ctx)
    transactions = 0
    transaction = shop.ctx.db.transaction

    def counted() -> Any:
        nonlocal transactions
        transactions += 1
        return transaction()

    monkeypatch.setattr(shop.ctx.db, "transaction", counted)
    reports = await asyncio.gather(*(settle((invoice, "{}")) for invoice in [*paid, paid[0]]))

    assert transactions == 1
    assert sorted(r.outcome for r in reports) == ["duplicate", "settled", "settled", "settled"]
    assert sorted(r.order_id for r in reports if r.changed) == sorted(orders)
    for order_id in orders:
        assert (await shop.order(order_id)).status == OrderStatus.PAID


async def test_ten_identical_deliveries_settle_once(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    order_id = await place(shop, "solo")
    invoice_id = await invoice_of(shop, order_id)
    await shop.cp.pay(invoice_id, send_webhook=False)
    statuses = await shop.cp.deliver_webhook(invoice_id, times=10, concurrently=True)
    assert len(statuses) == 10
    assert all(s is not None and 200 <= s < 300 for s in statuses), statuses
    results = sorted(json.loads(d.response_body)["result"] for d in shop.cp.webhook_deliveries)
    assert results == ["duplicate"] * 9 + ["settled"]
    registry = shop.ctx.metrics.registry
    settled = registry.get_sample_value(
        "shop_settlements_total", {"source": "webhook", "outcome": "settled"}
    )
    assert settled == 1
    assert len(await shop.outbox(order_id, kind="goods")) == 1
    assert (await shop.order(order_id)).status == OrderStatus.PAID


async def test_webhooks_racing_reconciliation_deliver_each_order_once(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    """PRODUCT.md §5.2: reconciliation has read six orders as pending and paid at Crypto
    Pay, and settles them while their webhooks arrive. Each order is settled once, by
    whichever comes first (here, mostly, reconciliation); the other claim is a duplicate;
    each order gets one goods message."""
    buyers, skus = (ALICE, BOB, 3003), ("multi", "guide")
    orders = [await place(shop, sku, user=user) for user in buyers for sku in skus]
    invoices = [await invoice_of(shop, order_id) for order_id in orders]
    for invoice_id in invoices:
        await shop.cp.pay(invoice_id, send_webhook=False)
    pending = await pending_orders_with_invoice(shop.ctx.db, limit=BATCH)
    found = await fetch_invoices(shop.ctx, pending)  # reconciliation's read, before settling
    assert sorted(found) == sorted(invoices)

    deliveries, (reconciled, error) = await asyncio.gather(
        asyncio.gather(*(shop.cp.deliver_webhook(i) for i in invoices)),
        settle_together(shop.ctx, list(found.values()), "reconcile"),
    )

    assert error is None
    assert [status for (status,) in deliveries] == [200] * 6
    results = [json.loads(d.response_body)["result"] for d in shop.cp.webhook_deliveries]
    assert results.count("settled") + reconciled == 6
    assert results.count("settled") + results.count("duplicate") == 6
    for order_id in orders:
        assert (await shop.order(order_id)).status == OrderStatus.PAID
        assert len(await shop.outbox(order_id, kind="goods")) == 1


async def test_database_down_is_503_then_retry_settles(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    order_id = await place(shop, "solo")
    invoice_id = await invoice_of(shop, order_id)
    real_db = shop.ctx.db
    await shop.cp.pay(invoice_id, send_webhook=False)
    shop.ctx.db = Database(UNREACHABLE_DB)
    try:
        (status,) = await shop.cp.deliver_webhook(invoice_id)
        assert status == 503
        health = await client.get("/healthz")
        assert health.status == 503
    finally:
        await shop.ctx.db.dispose()
        shop.ctx.db = real_db
    assert (await shop.order(order_id)).status == OrderStatus.PENDING
    # Crypto Pay retries; now the database answers.
    (status,) = await shop.cp.deliver_webhook(invoice_id)
    assert status == 200
    assert (await shop.order(order_id)).status == OrderStatus.PAID


@pytest.mark.parametrize(
    ("change", "reason_says"),
    [
        ({"amount": "1.00"}, "the invoice amount 1.00 differs from the order total 5.00."),
        ({"fiat": "EUR"}, "the invoice is in EUR, the order in USD"),  # another currency
        ({"currency_type": "crypto", "asset": "TON", "fiat": None}, "is in TON"),  # not fiat
        ({"paid_asset": "DOGE", "accepted_assets": ["USDT", "TON"]}, "paid in DOGE"),
        ({"paid_amount": "0"}, "no paid asset or amount"),
    ],
)
async def test_a_payment_that_does_not_match_its_order_needs_review(
    shop: Shop, client: TestClient[Any, Any], change: dict[str, Any], reason_says: str
) -> None:
    order_id = await place(shop, "multi", 2)  # 5.00 USD
    invoice_id = await invoice_of(shop, order_id)
    await shop.cp.pay(invoice_id, send_webhook=False)
    invoice = copy.deepcopy(shop.cp.invoice(invoice_id))
    invoice.update(change)
    body = compact(
        {
            "update_id": 99,
            "update_type": "invoice_paid",
            "request_date": "2026-01-01T00:00:00.000Z",
            "payload": invoice,
        }
    )
    response = await post(client, shop, body, sign(body))
    assert response.status == 200
    order = await shop.order(order_id)
    assert order.status == OrderStatus.NEEDS_REVIEW
    assert order.attention_reason
    assert await shop.outbox(order_id, kind="goods") == []
    (alert,) = await shop.outbox(order_id, kind="admin_needs_review")
    assert alert.chat_id == ADMIN_ID
    alert_text = (await compose(shop.ctx, alert)).text
    assert "needs review" in alert_text and reason_says in alert_text, alert_text
    (notice,) = await shop.outbox(order_id, kind="under_review")
    assert notice.chat_id == ALICE
    assert "does not match" in (await compose(shop.ctx, notice)).text


def _aligned_sample(order_id: int, invoice_id: int) -> dict[str, Any]:
    update = sample("webhook_payload_testnet_2022_sample.json")["update"]
    update["payload"]["invoice_id"] = invoice_id
    update["payload"]["payload"] = str(order_id)
    return update


async def test_2022_sample_as_is_is_recorded_for_review(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    """The published sample is a *crypto* invoice (asset USDT, amount 2.5). Our orders are
    fiat invoices, so aligned with one of our orders it must not deliver: needs_review."""
    order_id = await place(shop, "multi", 1)  # 2.50 USD
    invoice_id = await invoice_of(shop, order_id)
    body = compact(_aligned_sample(order_id, invoice_id))
    response = await post(client, shop, body, sign(body))
    assert response.status == 200
    assert (await shop.order(order_id)).status == OrderStatus.NEEDS_REVIEW
    assert await shop.outbox(order_id, kind="goods") == []


async def test_2022_sample_patched_into_fiat_settles(
    shop: Shop, client: TestClient[Any, Any]
) -> None:
    """The same real-shaped payload, patched into the fiat invoice we create (as Crypto Pay
    sends for currency_type=fiat), re-signed: it settles."""
    order_id = await place(shop, "multi", 1)  # 2.50 USD
    invoice_id = await invoice_of(shop, order_id)
    update = _aligned_sample(order_id, invoice_id)
    invoice = update["payload"]
    del invoice["asset"]
    invoice.update(
        currency_type="fiat",
        fiat="USD",
        amount="2.5",
        accepted_assets=["USDT", "TON", "BTC"],
        paid_asset="USDT",
        paid_amount="2.5",
        paid_fiat_rate="1",
        fee_asset="USDT",
        fee_amount="0.075",
    )
    body = compact(update)
    response = await post(client, shop, body, sign(body))
    assert response.status == 200
    assert (await response.json())["result"] == "settled"
    order = await shop.order(order_id)
    assert order.status == OrderStatus.PAID
    assert order.paid_amount == Decimal("2.5") and order.paid_asset == "USDT"
    assert len(await shop.outbox(order_id, kind="goods")) == 1


async def test_healthz(shop: Shop, client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    await shop.ctx.db.dispose()
    real_db = shop.ctx.db
    shop.ctx.db = Database(UNREACHABLE_DB)
    try:
        response = await client.get("/healthz")
        assert response.status == 503
    finally:
        await shop.ctx.db.dispose()
        shop.ctx.db = real_db


async def test_metrics(shop: Shop, client: TestClient[Any, Any]) -> None:
    def created(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('shop_checkouts_total{result="created"}'):
                return float(line.split()[-1])
        return 0.0

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert "shop_cryptopay_webhook_responses" in text and "shop_checkouts" in text
    before = created(text)

    await place(shop)
    after = created(await (await client.get("/metrics")).text())
    assert after == before + 1


async def test_postgres_connections_killed_healthz_and_webhook_recover(
    shop: Shop, client: TestClient[Any, Any], pg_server: PgServer
) -> None:
    """No pre-ping on a busy connection: after the server drops every connection of the
    pool, /healthz still answers 200 and a webhook settles (Crypto Pay may have to retry
    once: a 503, never a lost payment)."""
    url = pg_server.new_url()
    name = make_url(url).database
    conn = await asyncpg.connect(pg_dsn(PG_ADMIN_URL), timeout=5)
    sqlite_db = shop.ctx.db
    try:
        pg = Database(url)
        shop.ctx.db = pg
        await upgrade(pg)
        await import_catalog_file(pg, parse_catalog(CATALOG, "USD"))
        first, second = await place(shop), await place(shop)

        async def kill_all() -> int:
            return len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
            )

        assert await kill_all() >= 1
        assert (await client.get("/healthz")).status == 200
        invoice_id = await invoice_of(shop, first)
        await shop.cp.pay(invoice_id, send_webhook=False)
        (status,) = await shop.cp.deliver_webhook(invoice_id)
        assert status == 200
        assert (await shop.order(first)).status == OrderStatus.PAID

        # Killed again, and this time the webhook comes first.
        invoice_id = await invoice_of(shop, second)
        await shop.cp.pay(invoice_id, send_webhook=False)
        assert await kill_all() >= 1
        statuses = list(await shop.cp.deliver_webhook(invoice_id))
        if statuses != [200]:
            assert statuses == [503]
            statuses = await shop.cp.deliver_webhook(invoice_id)  # Crypto Pay retries
        assert statuses == [200]
        assert (await shop.order(second)).status == OrderStatus.PAID
        assert (await client.get("/healthz")).status == 200
    finally:
        if shop.ctx.db is not sqlite_db:
            await shop.ctx.db.dispose()
        shop.ctx.db = sqlite_db
        await conn.close()
