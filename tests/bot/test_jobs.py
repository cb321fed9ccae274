"""Reconciliation, expiry, late payments and the outbox worker (issue 5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import SendDocument, SendMessage

from bot import jobs
from bot.catalog_file import parse_catalog
from bot.catalog_sync import import_catalog_file
from bot.jobs import EXPIRY_GRACE_SECONDS, expire, reconcile
from bot.runtime.delivery import LEASE_SECONDS, OutboxWorker
from bot.screens.outgoing import compose
from bot.shop.checkout import checkout
from storage import (
    Buyer,
    OrderStatus,
    OutboxStatus,
    StockStatus,
    claim_due,
    get_customer,
    get_product,
    stock_counts,
)
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, Shop


async def place(shop: Shop, sku: str = "multi", qty: int = 1, user: int = ALICE) -> int:
    result = await checkout(shop.ctx, Buyer(user, None, None), sku, qty)
    assert result.ok and result.order_id is not None, result
    return result.order_id


async def invoice_of(shop: Shop, order_id: int) -> int:
    invoice_id = (await shop.order(order_id)).invoice_id
    assert invoice_id is not None
    return invoice_id


async def available(shop: Shop, sku: str) -> int:
    product = await get_product(shop.ctx.db, sku)
    assert product is not None and product.id is not None
    return (await stock_counts(shop.ctx.db, product.id)).available


async def test_reconcile_settles_a_missed_webhook(shop: Shop) -> None:
    paid = await place(shop, "multi", 2)
    unpaid = await place(shop, "solo")
    await shop.cp.pay(await invoice_of(shop, paid), send_webhook=False)

    assert await reconcile(shop.ctx) == 1
    assert (await shop.order(paid)).status == OrderStatus.PAID
    assert (await shop.order(unpaid)).status == OrderStatus.PENDING
    assert len(await shop.outbox(paid, kind="goods")) == 1
    assert shop.ctx.outbox_wakeup.is_set()
    (call,) = shop.cp.calls_of("getInvoices")[-1:]
    assert "invoice_ids" in call
    # A second round changes nothing.
    assert await reconcile(shop.ctx) == 0
    assert len(await shop.outbox(paid, kind="goods")) == 1


async def test_reconcile_settles_a_backlog_together(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payments whose webhooks were all missed (an outage) are settled a batch at a time
    (SETTLE_BATCH, here 4): a transaction per batch, not one per payment, and webhooks
    arriving meanwhile get their turn between batches."""
    batches: list[int] = []
    real = jobs.settle_invoices

    async def counted(ctx: Any, invoices: list[Any], *, source: str) -> Any:
        batches.append(len(invoices))
        return await real(ctx, invoices, source=source)

    monkeypatch.setattr(jobs, "settle_invoices", counted)
    monkeypatch.setattr(jobs, "SETTLE_BATCH", 4)
    orders = [
        await place(shop, sku, user=user)
        for user in (ALICE, BOB, 3003)
        for sku in ("multi", "guide")
    ]
    for order_id in orders:
        await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)

    transactions = 0
    transaction = shop.ctx.db.transaction

    def counted_transaction() -> Any:
        nonlocal transactions
        transactions += 1
        return transaction()

    monkeypatch.setattr(shop.ctx.db, "transaction", counted_transaction)
    assert await reconcile(shop.ctx) == 6
    assert batches == [4, 2]
    # A transaction per batch, and one for the low-stock alert ("multi" falls from 5 to 3).
    assert transactions == 3
    for order_id in orders:
        assert (await shop.order(order_id)).status == OrderStatus.PAID
        assert len(await shop.outbox(order_id, kind="goods")) == 1


async def test_reconcile_settles_the_rest_when_one_payment_fails(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One payment of the backlog failing does not hold the others back; the job still
    reports the failure (logged, retried next round) and the next round settles it."""
    orders = [await place(shop, "guide", user=user) for user in (ALICE, BOB, 3003)]
    for order_id in orders:
        await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)
    failing = await invoice_of(shop, orders[1])
    real = jobs.settle_invoices

    async def settle(ctx: Any, invoices: list[Any], *, source: str) -> list[Any]:
        """The real settle, but the failing invoice's settlement fails (nothing written)."""
        others = [i for i in invoices if i.invoice_id != failing]
        settled = iter(await real(ctx, others, source=source))
        error = ConnectionResetError("the database went away")
        return [error if i.invoice_id == failing else next(settled) for i in invoices]

    monkeypatch.setattr(jobs, "settle_invoices", settle)
    with pytest.raises(ConnectionResetError):
        await reconcile(shop.ctx)
    statuses = [(await shop.order(order_id)).status for order_id in orders]
    assert statuses == [OrderStatus.PAID, OrderStatus.PENDING, OrderStatus.PAID]

    monkeypatch.setattr(jobs, "settle_invoices", real)
    assert await reconcile(shop.ctx) == 1
    assert (await shop.order(orders[1])).status == OrderStatus.PAID


async def test_expiry_expires_the_unpaid_when_settling_a_paid_one_fails(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Settling the paid overdue orders fails (two different errors): the unpaid ones are
    expired all the same, the paid ones stay pending for the next round (never expired),
    the first error is raised for the job's log and the other is logged here."""
    paid = [await place(shop, "guide", user=user) for user in (ALICE, BOB)]
    unpaid = await place(shop, "multi", user=3003)
    for order_id in paid:
        await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)
    errors = {
        await invoice_of(shop, paid[0]): ConnectionResetError("the database went away"),
        await invoice_of(shop, paid[1]): RuntimeError("a template bug"),
    }

    async def settle(ctx: Any, invoices: list[Any], *, source: str) -> list[Any]:
        return [errors[invoice.invoice_id] for invoice in invoices]

    monkeypatch.setattr(jobs, "settle_invoices", settle)
    shop.clock.advance(901)
    with pytest.raises((ConnectionResetError, RuntimeError)) as raised:
        await expire(shop.ctx)

    assert (await shop.order(unpaid)).status == OrderStatus.EXPIRED
    assert [(await shop.order(o)).status for o in paid] == [OrderStatus.PENDING] * 2
    (other,) = [e for e in errors.values() if e is not raised.value]
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert logged == [other]


async def test_expiry_releases_and_tells_the_buyer(shop: Shop) -> None:
    order_id = await place(shop, "multi", 3)
    assert await available(shop, "multi") == 2
    assert await expire(shop.ctx) == 0  # not due yet
    assert (await shop.order(order_id)).status == OrderStatus.PENDING

    shop.clock.advance(901)
    assert await expire(shop.ctx) == 1
    assert (await shop.order(order_id)).status == OrderStatus.EXPIRED
    assert await shop.units(order_id) == []
    assert await available(shop, "multi") == 5
    (notice,) = await shop.outbox(order_id, kind="notice")
    assert notice.chat_id == ALICE and f"#{order_id} expired" in notice.text
    deleted = [int(p["invoice_id"]) for p in shop.cp.calls_of("deleteInvoice")]
    assert deleted == [await invoice_of(shop, order_id)]


async def test_expiry_settles_an_overdue_order_that_was_paid(shop: Shop) -> None:
    order_id = await place(shop, "solo")
    await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)
    shop.clock.advance(901)
    assert await expire(shop.ctx) == 0
    assert (await shop.order(order_id)).status == OrderStatus.PAID
    assert await shop.outbox(order_id, kind="notice") == []


async def test_expiry_waits_for_crypto_pay_then_gives_the_stock_back(shop: Shop) -> None:
    order_id = await place(shop, "multi", 1)
    shop.cp.fail_next("getInvoices", 500, times=100)
    shop.clock.advance(901)
    assert await expire(shop.ctx) == 0  # Crypto Pay down: a payment may be landing now
    assert (await shop.order(order_id)).status == OrderStatus.PENDING
    shop.clock.advance(EXPIRY_GRACE_SECONDS)
    assert await expire(shop.ctx) == 1  # past the grace period the stock goes back on sale
    assert (await shop.order(order_id)).status == OrderStatus.EXPIRED
    assert await available(shop, "multi") == 5


async def _expire_keeping_invoice(shop: Shop, order_id: int) -> None:
    """Expire our order while the invoice stays payable at Crypto Pay (deleteInvoice fails:
    the race in which a buyer pays in the last second)."""
    shop.cp.fail_next("deleteInvoice", 500, times=5)
    shop.clock.advance(901)
    assert await expire(shop.ctx) == 1
    assert (await shop.order(order_id)).status == OrderStatus.EXPIRED


async def test_late_payment_with_stock_is_fulfilled(shop: Shop) -> None:
    order_id = await place(shop, "multi", 2)
    await _expire_keeping_invoice(shop, order_id)
    assert await available(shop, "multi") == 5

    await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    order = await shop.order(order_id)
    assert order.status == OrderStatus.PAID
    units = await shop.units(order_id)
    assert len(units) == 2 and all(u.status == StockStatus.SOLD for u in units)
    assert await available(shop, "multi") == 3
    (goods,) = await shop.outbox(order_id, kind="goods")
    text = (await compose(shop.ctx, goods)).text
    assert all(u.code in text for u in units)
    (admin,) = await shop.outbox(order_id, kind="admin_late_paid")
    assert "late payment" in (await compose(shop.ctx, admin)).text


async def test_late_payment_without_stock_needs_refund(shop: Shop) -> None:
    alice = await place(shop, "solo", user=ALICE)
    await _expire_keeping_invoice(shop, alice)
    bob = await place(shop, "solo", user=BOB)  # the unit Alice's order released
    await shop.cp.pay(await invoice_of(shop, bob), send_webhook=False)
    await shop.cp.pay(await invoice_of(shop, alice), send_webhook=False)

    assert await reconcile(shop.ctx) == 2
    assert (await shop.order(bob)).status == OrderStatus.PAID
    order = await shop.order(alice)
    assert order.status == OrderStatus.NEEDS_REFUND
    assert order.paid_amount is not None and order.paid_asset == "USDT"
    assert await shop.units(alice) == []
    assert await shop.outbox(alice, kind="goods") == []
    (expired,) = await shop.outbox(alice, kind="notice")
    (late,) = await shop.outbox(alice, kind="late_needs_refund")
    assert expired.chat_id == late.chat_id == ALICE and expired.id < late.id
    assert "expired" in expired.text and "refund" in (await compose(shop.ctx, late)).text
    (alert,) = await shop.outbox(alice, kind="admin_needs_refund")
    assert alert.chat_id == ADMIN_ID
    assert f"/refund {alice}" in (await compose(shop.ctx, alert)).text


# --- the outbox worker -----------------------------------------------------------------------


async def paid_order(shop: Shop, sku: str = "multi", qty: int = 1) -> int:
    order_id = await place(shop, sku, qty)
    await shop.cp.pay(await invoice_of(shop, order_id), send_webhook=False)
    assert await reconcile(shop.ctx) == 1
    return order_id


def goods_sent(shop: Shop, order_id: int) -> list[Any]:
    return [
        m
        for m in shop.session.accepted
        if isinstance(m, SendMessage | SendDocument)
        and m.chat_id == ALICE
        and f"Order #{order_id} is paid" in (getattr(m, "text", None) or m.caption or "")
    ]


def fail_sends(shop: Shop, error: Any, times: int = 2) -> None:
    """The next sends fail (the goods message and the admin's 'paid' notice)."""
    shop.session.fail["sendMessage"] = [error] * times


async def test_outbox_500_then_429_then_success_delivers_once(shop: Shop) -> None:
    order_id = await paid_order(shop)
    worker = OutboxWorker(shop.ctx)

    fail_sends(shop, lambda m: TelegramServerError(method=m, message="Internal Server Error"))
    assert await worker.drain_once() == 2
    (goods,) = await shop.outbox(order_id, kind="goods")
    assert goods.status == OutboxStatus.PENDING and goods.sent_at is None
    assert goods.attempts == 1 and "TelegramServerError" in (goods.last_error or "")
    assert goods.next_attempt_at > shop.clock()
    assert goods_sent(shop, order_id) == []
    assert (await shop.order(order_id)).status == OrderStatus.PAID
    assert await worker.drain_once() == 0  # not due yet

    shop.clock.advance(700)  # past any backoff
    # Flood control on the goods message (sent first): that chat and the whole bot wait
    # retry_after, so the admin's notice goes out only after the pause, without a 429.
    fail_sends(
        shop,
        lambda m: TelegramRetryAfter(method=m, message="Too Many Requests", retry_after=2),
        times=1,
    )
    started = shop.clock()
    assert await worker.drain_once() == 2
    (goods,) = await shop.outbox(order_id, kind="goods")
    assert goods.status == OutboxStatus.PENDING
    wait = goods.next_attempt_at - started
    assert timedelta(seconds=1.9) < wait <= timedelta(seconds=2.1)
    assert goods_sent(shop, order_id) == []
    (_,) = [m for m in shop.session.accepted if getattr(m, "chat_id", None) == ADMIN_ID]
    assert shop.clock() - started >= timedelta(seconds=2)  # it waited out the pause
    assert len(shop.session.calls("sendMessage")) == 2 + 2  # the 500s, then one 429 + notice

    shop.clock.advance(3)
    assert await worker.drain_once() == 1
    (goods,) = await shop.outbox(order_id, kind="goods")
    assert goods.status == OutboxStatus.SENT and goods.sent_at is not None
    (sent,) = goods_sent(shop, order_id)
    assert "MULTI-" in sent.text
    assert (await shop.order(order_id)).status == OrderStatus.DELIVERED
    admin = [m for m in shop.session.accepted if getattr(m, "chat_id", None) == ADMIN_ID]
    assert len(admin) == 1

    shop.clock.advance(3600)
    assert await worker.drain_once() == 0
    assert len(goods_sent(shop, order_id)) == 1


async def test_outbox_403_marks_blocked_and_tells_admins(shop: Shop) -> None:
    order_id = await paid_order(shop)
    worker = OutboxWorker(shop.ctx)
    shop.session.fail["sendMessage"] = [
        lambda m: TelegramForbiddenError(method=m, message="Forbidden: bot was blocked by the user")
    ]
    # The goods message goes first (lower id); the admin's notice is accepted.
    await worker.drain_once()
    (goods,) = await shop.outbox(order_id, kind="goods")
    assert goods.status == OutboxStatus.FAILED and goods.sent_at is None
    assert "403" in (goods.last_error or "")
    customer = await get_customer(shop.ctx.db, ALICE)
    assert customer is not None and customer.blocked_bot is True
    admin = await shop.outbox(order_id, kind="admin")
    blocked = [m for m in admin if "blocked the bot" in m.text]
    assert len(blocked) == 1 and blocked[0].chat_id == ADMIN_ID
    assert (await shop.order(order_id)).status == OrderStatus.PAID  # stays paid

    await worker.drain_once()  # the admin notice goes out; the goods are not retried
    assert goods_sent(shop, order_id) == []
    assert (await shop.outbox(order_id, kind="goods"))[0].status == OutboxStatus.FAILED


async def test_restart_between_settle_and_send_delivers_on_next_start(shop: Shop) -> None:
    order_id = await paid_order(shop)
    crashed = OutboxWorker(shop.ctx)
    claimed = await claim_due(
        shop.ctx.db, crashed.worker_id, shop.clock(), limit=20, lease_seconds=LEASE_SECONDS
    )
    assert {m.kind for m in claimed} == {"goods", "admin_paid"}  # claimed, then it died

    restarted = OutboxWorker(shop.ctx)
    assert await restarted.drain_once() == 0  # the dead worker's lease still holds
    shop.clock.advance(LEASE_SECONDS + 1)
    assert await restarted.drain_once() == 2
    assert len(goods_sent(shop, order_id)) == 1
    assert (await shop.order(order_id)).status == OrderStatus.DELIVERED


async def test_long_code_list_goes_as_a_txt_document(shop: Shop) -> None:
    codes = ", ".join(f'"BULK-{n:04d}-XXXXXXXXXXXX"' for n in range(300))
    catalog = f"""
[[categories]]
slug = "bulk"
title = "Bulk"

[[products]]
sku = "bulk"
category = "bulk"
title = "Bulk codes"
price = "0.10"
codes = [{codes}]
"""
    await import_catalog_file(shop.ctx.db, parse_catalog(catalog, "USD"))
    shop.ctx.settings = shop.ctx.settings.model_copy(update={"max_reserved_units": 1000})  # bulk
    order_id = await paid_order(shop, "bulk", 300)
    worker = OutboxWorker(shop.ctx)
    await worker.drain_once()

    (document,) = shop.session.calls("sendDocument")
    assert document.chat_id == ALICE
    assert document.document.filename == f"order-{order_id}.txt"
    lines = document.document.data.decode().split()
    assert len(lines) == 300 and len(set(lines)) == 300
    assert all(line.startswith("BULK-") for line in lines)
    assert f"#{order_id}" in (document.caption or "")
    assert not [m for m in shop.session.calls("sendMessage") if m.chat_id == ALICE]
    assert (await shop.order(order_id)).status == OrderStatus.DELIVERED
