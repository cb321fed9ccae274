"""Payments settled together (settle_many) share one transaction (group commit): each gets
its own outcome, a failing one fails alone, and a database failure fails them all at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus, SettleOutcome, settle_batch, settle_common
from storage.models import OutboxMessage, PaymentEvent, StockUnit
from tests.storage.conftest import order_for, payment, seed


async def settle_all(
    db: storage.Database,
    payments: list[storage.SettlePayment],
    verify: storage.Verify | None = None,
) -> list[storage.SettleResult]:
    """storage.settle_many, every payment expected to settle without an error."""
    outcomes = await storage.settle_many(db, payments, verify)
    assert all(isinstance(o, storage.SettleResult) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, storage.SettleResult)]


async def invoiced(
    db: storage.Database, prod: storage.Product, telegram_id: int, qty: int = 1
) -> storage.Order:
    """A pending order with its invoice (500000 + id) attached, as checkout leaves it."""
    order = await order_for(db, prod, qty, telegram_id=telegram_id)
    assert order.id is not None
    invoice_id = 500_000 + order.id
    assert await storage.attach_invoice(db, order.id, invoice_id, f"h{order.id}", "https://t.me/x")
    got = await storage.get_order(db, order.id)
    assert got is not None
    return got.order


class Transactions:
    """Counts db.transaction() calls; `fail_with` makes the next `fail_times` of them (every
    one, when None) raise that instead."""

    def __init__(self, db: storage.Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.fail_with: Exception | None = None
        self.fail_times: int | None = None
        real = db.transaction

        @asynccontextmanager
        async def counted() -> AsyncIterator[Any]:
            self.count += 1
            if self.fail_with is not None and self.fail_times != 0:
                if self.fail_times is not None:
                    self.fail_times -= 1
                raise self.fail_with
            async with real() as s:
                yield s

        monkeypatch.setattr(db, "transaction", counted)


async def outbox_order_ids(db: storage.Database) -> list[int | None]:
    async with db.session() as s:
        return sorted((await s.scalars(sa.select(OutboxMessage.order_id))).all(), key=str)


async def test_concurrent_settlements_share_one_transaction(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = await seed(db, codes=30)
    orders = [await invoiced(db, prod, 100 + i, qty=2) for i in range(12)]
    transactions = Transactions(db, monkeypatch)

    results = await settle_all(db, [payment(o) for o in orders], lambda p, o: None)

    assert transactions.count == 1  # one batch, one commit
    assert [r.outcome for r in results] == [SettleOutcome.SETTLED] * 12
    sold = [code for r in results for codes in r.codes.values() for code in codes]
    assert len(sold) == 24 and len(set(sold)) == 24  # two each, nobody shares one
    for order, result in zip(orders, results, strict=True):
        assert result.order is not None and result.order.id == order.id
        stored = await storage.get_order(db, order.id or 0)
        assert stored is not None and stored.codes == result.codes
        # What settle hands back is what was written.
        for field in ("status", "invoice_id", "paid_asset", "paid_amount", "fee_amount"):
            assert getattr(result.order, field) == getattr(stored.order, field), field
        assert result.order.paid_at == stored.order.paid_at
        assert stored.order.status is OrderStatus.PAID and stored.order.paid_amount == order.total
    assert await storage.stock_counts(db, prod.id or 0) == (6, 0, 24)
    assert await outbox_order_ids(db) == sorted((o.id for o in orders), key=str)
    async with db.session() as s:
        events = (await s.scalars(sa.select(PaymentEvent))).all()
    assert sorted((e.invoice_id, e.order_id) for e in events) == sorted(
        (o.invoice_id, o.id) for o in orders
    )


async def test_a_batch_sells_each_line_of_orders_with_several_lines(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders of several lines and products in one batch: each gets its own units of each
    of its products, and its buyer's goods are enqueued — in one transaction (nothing taken
    for short of reserved units and redone one by one)."""
    keys = await seed(db, "key", codes=10)
    gift = await seed(db, "gift", codes=10, price="2.50")
    assert keys.id is not None and gift.id is not None
    orders = []
    for telegram_id in (31, 32, 33):
        customer = await storage.upsert_customer(db, telegram_id, None, "en")
        assert customer.id is not None
        lines = [(keys.id, 2, keys.price), (gift.id, telegram_id - 30, gift.price)]
        expires = storage.utcnow() + timedelta(minutes=15)
        order = await storage.create_order(db, customer.id, lines, "USD", expires)
        assert order is not None and order.id is not None
        invoice_id = 500_000 + order.id
        assert await storage.attach_invoice(db, order.id, invoice_id, "h", "https://t.me/x")
        orders.append(order)
    transactions = Transactions(db, monkeypatch)

    results = await settle_all(db, [payment(o) for o in orders], lambda p, o: None)

    assert transactions.count == 1
    assert [r.outcome for r in results] == [SettleOutcome.SETTLED] * 3
    for order, result, gifts in zip(orders, results, (1, 2, 3), strict=True):
        assert {pid: len(codes) for pid, codes in result.codes.items()} == {
            keys.id: 2,
            gift.id: gifts,
        }
        assert all(code.startswith("KEY-") for code in result.codes[keys.id])
        assert all(code.startswith("GIFT-") for code in result.codes[gift.id])
        stored = await storage.get_order(db, order.id or 0)
        assert stored is not None and stored.codes == result.codes
    sold = [c for r in results for codes in r.codes.values() for c in codes]
    assert len(set(sold)) == len(sold) == 12
    assert await storage.stock_counts(db, keys.id) == (4, 0, 6)
    assert await storage.stock_counts(db, gift.id) == (4, 0, 6)
    async with db.session() as s:
        query = sa.select(OutboxMessage.order_id, OutboxMessage.chat_id, OutboxMessage.kind)
        facts = sorted((await s.execute(query)).all())
    assert facts == [(o.id, 31 + n, storage.OutboxKind.GOODS) for n, o in enumerate(orders)]


async def test_an_order_without_lines_still_carries_its_invoice(db: storage.Database) -> None:
    """A payment whose invoice belongs to an order without lines is not taken for the
    order its payload names (the invoice is not that order's): it is unknown, not an
    error. (Checkout never writes an order without lines; the rule must hold anyway.)"""
    prod = await seed(db, codes=3)
    named = await order_for(db, prod, telegram_id=41)  # pending, no invoice recorded yet
    customer = await storage.upsert_customer(db, 42, None, "en")
    async with db.transaction() as s:
        lineless = storage.Order(
            customer_id=customer.id or 0,
            total=Decimal("1.00"),
            currency="USD",
            status=OrderStatus.PENDING,
            invoice_id=777_777,
            expires_at=storage.utcnow() + timedelta(minutes=15),
        )
        s.add(lineless)
    claim = payment(named, invoice_id=777_777)

    results = await settle_all(db, [claim, payment(named)])

    assert results[0].outcome is SettleOutcome.UNKNOWN_ORDER
    assert results[1].outcome is SettleOutcome.SETTLED  # its own invoice settles it
    stored = await storage.get_order(db, named.id or 0)
    assert stored is not None and stored.order.invoice_id == 500_000 + (named.id or 0)


async def test_one_batch_with_every_kind_of_claim(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = await seed(db, codes=10)
    clean = await invoiced(db, prod, 1)
    twice = await invoiced(db, prod, 2)
    wrong = await invoiced(db, prod, 3)
    late = await invoiced(db, prod, 4)
    assert await storage.release_order(db, late.id or 0, OrderStatus.EXPIRED)
    early = await order_for(db, prod, telegram_id=5)  # no invoice recorded yet
    transactions = Transactions(db, monkeypatch)

    def short(p: storage.SettlePayment, o: storage.Order) -> str | None:
        return "invoice amount 1.00 differs" if o.id == wrong.id else None

    ghost = payment(clean, invoice_id=999_999, order_id=None)
    claims = [
        payment(clean),
        payment(twice),
        payment(twice, source="reconcile"),
        payment(wrong),
        payment(late),
        payment(early),
        ghost,
    ]
    results = await settle_all(db, claims, short)

    assert transactions.count == 1
    assert [r.outcome for r in results] == [
        SettleOutcome.SETTLED,
        SettleOutcome.SETTLED,
        SettleOutcome.DUPLICATE,
        SettleOutcome.NEEDS_REVIEW,
        SettleOutcome.LATE_SETTLED,
        SettleOutcome.SETTLED,
        SettleOutcome.UNKNOWN_ORDER,
    ]
    assert results[2].codes == results[1].codes != {}
    assert results[3].order is not None and results[3].order.attention_reason
    assert results[3].codes == {}
    # One message each for the five orders that changed; none for the duplicate or ghost.
    expected = sorted((o.id for o in (clean, twice, wrong, late, early)), key=str)
    assert await outbox_order_ids(db) == expected
    # clean, twice, late and early hold one unit each; wrong's went back to stock.
    assert await storage.stock_counts(db, prod.id or 0) == (6, 0, 4)
    # Every invoice's payment is recorded once, with its order (the mismatched one too;
    # the ghost's without one).
    async with db.session() as s:
        events = (await s.scalars(sa.select(PaymentEvent))).all()
    by_invoice = {p.invoice_id: p.order_id for p in claims}
    assert {e.invoice_id: e.order_id for e in events} == by_invoice


@pytest.mark.parametrize("error", [RuntimeError("template bug"), FileNotFoundError("x.txt")])
async def test_a_failing_claim_fails_alone(db: storage.Database, error: Exception) -> None:
    prod = await seed(db, codes=5)
    good = [await invoiced(db, prod, 10 + i) for i in range(3)]
    bad = await invoiced(db, prod, 20)

    def verify(p: storage.SettlePayment, o: storage.Order) -> str | None:
        if o.id == bad.id:
            raise error
        return None

    outcomes = await storage.settle_many(
        db, [payment(o) for o in [good[0], bad, *good[1:]]], verify
    )

    assert outcomes[1] is error
    assert all(
        isinstance(r, storage.SettleResult) and r.outcome is SettleOutcome.SETTLED
        for i, r in enumerate(outcomes)
        if i != 1
    )
    stored = await storage.get_order(db, bad.id or 0)
    assert stored is not None and stored.order.status is OrderStatus.PENDING
    assert await storage.stock_counts(db, prod.id or 0) == (1, 1, 3)
    assert await outbox_order_ids(db) == sorted((o.id for o in good), key=str)
    again = await storage.settle(db, payment(bad))
    assert again.outcome is SettleOutcome.SETTLED


@pytest.mark.parametrize(
    ("error", "answers_ping"),
    [
        # SQLite locked past its busy timeout: no need to ask.
        (sa.exc.OperationalError("BEGIN", {}, Exception("database is locked")), True),
        # A refused connection, and the server does not answer a ping either.
        (ConnectionRefusedError(111, "Connection refused"), False),
    ],
)
async def test_a_database_failure_fails_the_batch_once(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch, error: Exception, answers_ping: bool
) -> None:
    prod = await seed(db, codes=5)
    orders = [await invoiced(db, prod, 30 + i) for i in range(4)]
    transactions = Transactions(db, monkeypatch)
    transactions.fail_with = error
    real_ping = db.ping

    async def ping() -> bool:
        return answers_ping and await real_ping()

    monkeypatch.setattr(db, "ping", ping)
    outcomes = await storage.settle_many(db, [payment(o) for o in orders])

    assert all(o is error for o in outcomes)
    assert transactions.count == 1  # not waited out once more per claim
    transactions.fail_with = None
    results = await settle_all(db, [payment(o) for o in orders])
    assert [r.outcome for r in results] == [SettleOutcome.SETTLED] * 4


async def test_an_order_short_of_reserved_units_is_settled_the_careful_way(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=4)
    clean = await invoiced(db, prod, 40)
    robbed = await invoiced(db, prod, 41)
    async with db.transaction() as s:  # its reservation vanished (e.g. a manual fix)
        await s.execute(
            sa.update(StockUnit)
            .where(StockUnit.order_id == robbed.id)  # type: ignore[arg-type]
            .values(status=storage.StockStatus.AVAILABLE, order_id=None, reserved_until=None)
        )

    results = await settle_all(db, [payment(clean), payment(robbed)])

    assert [r.outcome for r in results] == [SettleOutcome.SETTLED, SettleOutcome.SETTLED]
    assert all(sum(len(c) for c in r.codes.values()) == 1 for r in results)
    assert await storage.stock_counts(db, prod.id or 0) == (2, 0, 2)
    paid = await storage.get_order(db, robbed.id or 0)
    assert paid is not None and paid.order.paid_amount == Decimal("9.99")


async def test_a_pending_order_robbed_of_its_units_with_no_stock_left_needs_review(
    db: storage.Database,
) -> None:
    """The state table has no pending -> needs_refund: a pending order whose reservation
    vanished and whose stock cannot replace it is paid into review (a human decides), its
    payment recorded — never lost, never taken for a duplicate."""
    prod = await seed(db, codes=1)
    robbed = await invoiced(db, prod, 45)
    async with db.transaction() as s:  # the unit went to someone else by hand
        await s.execute(
            sa.update(StockUnit)
            .where(StockUnit.order_id == robbed.id)  # type: ignore[arg-type]
            .values(status=storage.StockStatus.SOLD, order_id=None, reserved_until=None)
        )

    (result,) = await settle_all(db, [payment(robbed)])

    assert result.outcome is SettleOutcome.NEEDS_REVIEW and result.codes == {}
    assert result.order is not None and result.order.status is OrderStatus.NEEDS_REVIEW
    assert result.order.attention_reason == storage.settlement.SHORT_OF_STOCK_REASON
    assert result.order.paid_amount == Decimal("9.99")
    async with db.session() as s:
        kinds = (await s.scalars(sa.select(OutboxMessage.kind))).all()
    assert kinds == [storage.OutboxKind.UNDER_REVIEW]


async def test_claims_racing_for_one_order_before_its_invoice_is_recorded(
    db: storage.Database,
) -> None:
    prod = await seed(db, codes=3)
    order = await order_for(db, prod, telegram_id=50)  # no invoice recorded yet
    first = payment(order, invoice_id=7001)
    other_invoice = payment(order, invoice_id=7002)  # names the same order, another invoice
    no_payload = payment(order, invoice_id=7001, order_id=None, source="reconcile")

    results = await settle_all(db, [first, other_invoice, no_payload])

    assert [r.outcome for r in results] == [
        SettleOutcome.SETTLED,
        SettleOutcome.UNKNOWN_ORDER,  # the order carries 7001 now: 7002 is no order of ours
        SettleOutcome.DUPLICATE,
    ]
    stored = await storage.get_order(db, order.id or 0)
    assert stored is not None and stored.order.invoice_id == 7001
    assert stored.order.status is OrderStatus.PAID
    assert await storage.stock_counts(db, prod.id or 0) == (2, 0, 1)
    assert await outbox_order_ids(db) == [order.id]


async def test_a_broken_connection_redoes_the_batch_claim_by_claim(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg reports a connection the server dropped as a plain DBAPIError: the database
    still answers, so the claims are settled alone instead of all failing."""
    prod = await seed(db, codes=5)
    orders = [await invoiced(db, prod, 60 + i) for i in range(3)]
    transactions = Transactions(db, monkeypatch)
    transactions.fail_with = sa.exc.DBAPIError(
        "SELECT", {}, Exception("connection was closed"), connection_invalidated=True
    )
    transactions.fail_times = 1  # then the pool hands out a fresh connection
    results = await settle_all(db, [payment(o) for o in orders])

    assert [r.outcome for r in results] == [SettleOutcome.SETTLED] * 3
    assert transactions.count == 1 + 3


async def test_a_naive_payment_time_is_refused(db: storage.Database) -> None:
    prod = await seed(db, codes=2)
    order = await invoiced(db, prod, 80)
    naive = payment(order, paid_at=datetime(2026, 1, 2, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        await storage.settle(db, naive)
    stored = await storage.get_order(db, order.id or 0)
    assert stored is not None and stored.order.status is OrderStatus.PENDING


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(node type, index name) of every scan in an EXPLAIN (FORMAT JSON) plan tree."""
    found = [(plan["Node Type"], plan.get("Index Name"))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


async def test_postgres_pays_a_batch_by_primary_key_before_statistics(
    db: storage.Database,
) -> None:
    """Until PostgreSQL has statistics for the orders table (a new shop, a burst of new
    orders), the batch's pay-and-record statement still finds each order by its primary
    key. With a status condition as well, the planner took a status index and walked every
    pending order for each order it paid (with 2,000 pending, that statement ran four
    times slower)."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    prod = await seed(db, codes=40)
    orders = [await invoiced(db, prod, 700 + i) for i in range(40)]
    order = orders[17]
    paid = payment(order)
    params = (
        settle_common.paid_params(paid, OrderStatus.PAID)
        | {"p_order_id": order.id}
        | settle_common.event_params(paid, order.id)
    )

    def explain(*args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return f"EXPLAIN (FORMAT JSON) {statement}", parameters

    engine = db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", explain, retval=True)
    try:
        async with db.session() as s:
            out = (await s.execute(settle_batch.PAY_AND_RECORD, params)).scalar_one()
    finally:
        sa.event.remove(engine, "before_cursor_execute", explain)
    plan = (json.loads(out) if isinstance(out, str) else out)[0]["Plan"]
    assert plan["Node Type"] == "ModifyTable" and plan["Relation Name"] == "orders"
    assert _scans(plan) == [("Index Scan", "pk_orders")]
