"""Settlement: a confirmed payment becomes a paid order with its goods, in one transaction.

The webhook, the reconciliation job and the admin's /recheck all call `settle`; whichever
comes first makes the transition, the others get `duplicate` and change nothing.

Settlements that arrive together share one transaction (group commit, storage._batch): the
clean ones — a pending order carrying the paid invoice, matching it, its units reserved —
are settled with one statement per step for all of them; everything else takes the careful
path one by one, in that same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, locked, snapshot, table_of
from storage.database import DATABASE_ERRORS, Database
from storage.enums import OrderStatus, SettleOutcome, StockStatus
from storage.models import Customer, Order, OrderLine, PaymentEvent, Product, StockUnit
from storage.order_states import SETTLEABLE
from storage.orders import pick_available, sold_codes, unreserve
from storage.outbox import OutboxDraft, add_in
from storage.types import aware_utc, to_money, utcnow

T = TypeVar("T")
log = logging.getLogger(__name__)

LATE_NO_STOCK_REASON = "paid after the order expired and the stock is gone: refund"


@dataclass(frozen=True, slots=True)
class SettlePayment:
    """A confirmed payment. `order_id` is the order our invoice payload names (None when the
    payload names none): the order is found by `invoice_id`, and by `order_id` only while
    that order has no invoice recorded yet (the webhook can beat `attach_invoice`)."""

    order_id: int | None
    invoice_id: int
    paid_asset: str
    paid_amount: Decimal
    fee_asset: str | None
    fee_amount: Decimal | None
    paid_at: datetime
    source: str  # webhook | reconcile | check | recheck
    raw_body: str = ""


@dataclass(slots=True)
class SettleContext:
    """What `render` gets to write the buyer's and the admins' messages."""

    order: Order
    lines: list[OrderLine]
    products: dict[int, Product]
    codes: dict[int, list[str]]  # product id -> codes sold to this order
    outcome: SettleOutcome
    buyer_telegram_id: int
    buyer_language: str | None


@dataclass(slots=True)
class SettleResult:
    outcome: SettleOutcome
    order: Order | None
    codes: dict[int, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.outcome not in (SettleOutcome.DUPLICATE, SettleOutcome.UNKNOWN_ORDER)


Render = Callable[[SettleContext], Sequence[OutboxDraft]]
# verify(order) -> why the payment does not match the order (amount, currency, asset), or
# None when it does. Called inside the settle transaction with the order row locked.
Verify = Callable[[Order], str | None]


# The statements of the settle path are built once, with bind parameters: building a
# statement (and the ORM's bulk-DML bookkeeping) cost more CPU than running it.
_orders = table_of(Order)
_units = table_of(StockUnit)
_events = table_of(PaymentEvent)
_other_order = _orders.alias("other_order")


def _record_event_stmt(insert: Callable[[sa.Table], Any]) -> Any:
    return (
        insert(_events)
        .values(
            invoice_id=sa.bindparam("p_invoice_id"),
            order_id=sa.bindparam("p_event_order_id"),
            status="paid",
            source=sa.bindparam("p_source"),
            body=sa.bindparam("p_body"),
            received_at=sa.bindparam("p_received_at", type_=_events.c.received_at.type),
        )
        .on_conflict_do_nothing(index_elements=["invoice_id", "status"])
    )


_RECORD_EVENT = {
    "postgresql": _record_event_stmt(postgresql.insert),
    "sqlite": _record_event_stmt(sqlite.insert),
}


def _event_params(payment: SettlePayment, order_id: int | None) -> dict[str, Any]:
    return {
        "p_invoice_id": payment.invoice_id,
        "p_event_order_id": order_id,
        "p_source": payment.source,
        "p_body": payment.raw_body,
        "p_received_at": utcnow(),
    }


async def _record_event(s: AsyncSession, payment: SettlePayment, order_id: int | None) -> None:
    await s.execute(_RECORD_EVENT[dialect_of(s)], _event_params(payment, order_id))


_BY_ID = _orders.c.id == sa.bindparam("p_order_id")
_BY_INVOICE = _orders.c.invoice_id == sa.bindparam("p_invoice_id")
# The order this payment is for: the one carrying the invoice (which must be the payload's
# order when the payload names one), or else the payload's order while it has no invoice
# recorded and no other order carries this one.
_BY_INVOICE_AND_PAYLOAD = sa.and_(
    _BY_ID,
    sa.or_(
        _BY_INVOICE,
        sa.and_(
            _orders.c.invoice_id.is_(None),
            ~sa.exists().where(_other_order.c.invoice_id == sa.bindparam("p_invoice_id")),
        ),
    ),
)


_TARGETS = {
    "id": _BY_ID,
    "invoice": _BY_INVOICE,
    "invoice_and_payload": _BY_INVOICE_AND_PAYLOAD,
}


def _for_invoice(payment: SettlePayment) -> str:
    """Which of `_TARGETS` finds the order of this payment."""
    return "invoice" if payment.order_id is None else "invoice_and_payload"


def _transition_stmt(target: sa.ColumnElement[bool], from_states: sa.ColumnElement[bool]) -> Any:
    """pending/… → `p_status` with the payment's fields, for the order `target` selects
    while `from_states` holds and it carries no other invoice."""
    c = _orders.c

    def param(name: str) -> Any:
        return sa.bindparam(f"p_{name}", type_=c[name].type)

    return (
        sa.update(_orders)
        .where(
            target,
            from_states,
            sa.or_(c.invoice_id.is_(None), c.invoice_id == sa.bindparam("p_invoice_id")),
        )
        .values(
            status=param("status"),
            invoice_id=sa.bindparam("p_invoice_id"),
            paid_asset=param("paid_asset"),
            paid_amount=param("paid_amount"),
            fee_asset=param("fee_asset"),
            fee_amount=param("fee_amount"),
            paid_at=param("paid_at"),
            attention_reason=param("attention_reason"),
            updated_at=param("updated_at"),
        )
    )


_IN_STATES = _orders.c.status.in_(sa.bindparam("p_from", expanding=True))
# The one-order transition, returning the updated row.
_TRANSITION = {
    name: _transition_stmt(target, _IN_STATES).returning(*_orders.c)
    for name, target in _TARGETS.items()
}
# The batch's pending → paid, run as one executemany (which cannot return rows on SQLite).
# Only for orders this transaction read as pending and holds since (PG: locked; SQLite:
# the write lock), so the new rows are the read rows with these fields. By primary key
# alone, no status condition: with one, PostgreSQL's planner — before its statistics knew
# the table — took a status index and walked every pending order for each one it paid.
_PAY_LOCKED = _transition_stmt(_BY_ID, sa.true())
# On PostgreSQL the payment event is recorded by the same statement (a CTE), one round
# trip for both; SQLite has no data-modifying CTEs and records it first.
_PAY_AND_RECORD = _PAY_LOCKED.add_cte(_RECORD_EVENT["postgresql"].cte("recorded"))


def _target(
    payment: SettlePayment,
    by_id: dict[int, dict[str, Any]],
    by_invoice: dict[int, dict[str, Any]],
) -> dict[str, Any] | None:
    """The candidate order this payment is for, by the rule of `_BY_INVOICE_AND_PAYLOAD`
    (or `_BY_INVOICE` when the payload names none): the order carrying the invoice, which
    must be the payload's; or else the payload's order while it carries no invoice."""
    carrier = by_invoice.get(payment.invoice_id)
    if carrier is not None:
        return carrier if payment.order_id in (None, carrier["id"]) else None
    named = None if payment.order_id is None else by_id.get(payment.order_id)
    return named if named is not None and named["invoice_id"] is None else None


_PAID_COLUMNS = (
    "status",
    "invoice_id",
    "paid_asset",
    "paid_amount",
    "fee_asset",
    "fee_amount",
    "paid_at",
    "attention_reason",
    "updated_at",
)


def _paid_fields(payment: SettlePayment, status: OrderStatus, reason: str | None) -> dict[str, Any]:
    """The order's columns a settling transition writes (_PAID_COLUMNS), by name."""
    fee = payment.fee_amount
    values = (
        status,
        payment.invoice_id,
        payment.paid_asset,
        to_money(payment.paid_amount),
        payment.fee_asset,
        None if fee is None else to_money(fee),
        aware_utc(payment.paid_at),
        reason,
        utcnow(),
    )
    return dict(zip(_PAID_COLUMNS, values, strict=True))


async def _lock_order(s: AsyncSession, payment: SettlePayment) -> Order | None:
    """The order row, locked (PG) and current, with the payment event recorded; None when
    no order of ours matches the invoice and payload (the event is recorded orderless).
    Read with Core into a snapshot: claims of one batch share the session, and the ORM's
    identity map would hand a later claim the row as an earlier one first saw it."""
    row = (
        await s.execute(
            locked(s, sa.select(_orders).where(_TARGETS[_for_invoice(payment)])),
            {"p_invoice_id": payment.invoice_id, "p_order_id": payment.order_id},
        )
    ).first()
    order = None if row is None else snapshot(Order, row._mapping)
    await _record_event(s, payment, order.id if order else None)
    return order


async def _transition(
    s: AsyncSession,
    target: str,
    payment: SettlePayment,
    status: OrderStatus,
    reason: str | None,
    from_states: Sequence[OrderStatus] = SETTLEABLE,
    order_id: int | None = None,
) -> Order | None:
    """The one conditional write that decides who settles: None when the `target` order
    ("id" with `order_id`, or `_for_invoice(payment)`) is not in `from_states` (or
    belongs to another invoice) by the time this row lock is ours."""
    params = {f"p_{name}": value for name, value in _paid_fields(payment, status, reason).items()}
    params["p_order_id"] = payment.order_id if order_id is None else order_id
    params["p_from"] = list(from_states)
    res = await s.execute(_TRANSITION[target], params)
    row = res.first()
    return None if row is None else snapshot(Order, row._mapping)


async def _assign_units(
    s: AsyncSession, order_id: int, lines: list[OrderLine], products: dict[int, Product]
) -> dict[int, list[int]] | None:
    """Unit ids to sell per product: the order's reservations, topped up from available
    stock when they are gone (late payment). None when stock does not cover every line."""
    reserved: dict[int, list[int]] = {}
    rows = await s.execute(
        locked(
            s,
            sa.select(col(StockUnit.product_id), col(StockUnit.id))
            .where(
                col(StockUnit.order_id) == order_id, col(StockUnit.status) == StockStatus.RESERVED
            )
            .order_by(col(StockUnit.id)),
        )
    )
    for pid, uid in rows.all():
        if uid is not None:
            reserved.setdefault(pid, []).append(uid)
    chosen: dict[int, list[int]] = {}
    for line in lines:
        if products[line.product_id].unlimited:
            continue
        have = reserved.get(line.product_id, [])[: line.quantity]
        need = line.quantity - len(have)
        if need > 0:
            have = have + await pick_available(s, line.product_id, need)
            if len(have) < line.quantity:
                return None
        chosen.setdefault(line.product_id, []).extend(have)
    return chosen


_lines = table_of(OrderLine)
_products = table_of(Product)
_customers = table_of(Customer)
_CONTEXT_TABLES = {"o": _orders, "l": _lines, "p": _products, "c": _customers}


def _with_context(*tags: str, lineless: bool = False) -> Any:
    """Orders' lines, their products and buyers (and, with "o", the orders themselves) in
    one Core query, a row per line, columns labelled per table after `order_id`; the rows
    become read-only snapshots, cheaper than loading several entities through the ORM.
    With `lineless`, an order without lines is a row too (line and product columns None)."""
    labelled = (c.label(f"{tag}_{c.name}") for tag in tags for c in _CONTEXT_TABLES[tag].c)
    return (
        sa.select(_orders.c.id.label("order_id"), *labelled)
        .select_from(_orders)
        .join(_lines, _lines.c.order_id == _orders.c.id, isouter=lineless)
        .join(_products, _products.c.id == _lines.c.product_id, isouter=lineless)
        .join(_customers, _customers.c.id == _orders.c.customer_id)
    )


_CONTEXT = (
    _with_context("l", "p", "c")
    .where(_orders.c.id == sa.bindparam("p_order_id"))
    .order_by(_lines.c.id)
)
# The orders a batch may be for — those carrying its invoices and those its payloads
# name — with their contexts, in one round trip; the orders locked (PG). An order without
# lines is still a candidate: it carries its invoice (`_target` must see it).
_CANDIDATES = (
    _with_context("o", "l", "p", "c", lineless=True)
    .where(
        sa.or_(
            _orders.c.invoice_id.in_(sa.bindparam("p_invoice_ids", expanding=True)),
            _orders.c.id.in_(sa.bindparam("p_order_ids", expanding=True)),
        )
    )
    .order_by(_orders.c.id, _lines.c.id)
)
_CANDIDATE_ORDERS = {
    "postgresql": _CANDIDATES.with_for_update(of=_orders),
    "sqlite": _CANDIDATES,
}

_Context = tuple[list[OrderLine], dict[int, Product], Customer]


def _part(model: type[T], tag: str, values: sa.RowMapping) -> T:
    """The `tag`-labelled columns of a `_with_context` row as a read-only `model` snapshot."""
    names = (c.name for c in _CONTEXT_TABLES[tag].c)
    return snapshot(model, {name: values[f"{tag}_{name}"] for name in names})


def _by_order(rows: Sequence[sa.Row[Any]]) -> dict[int, list[sa.RowMapping]]:
    """`_with_context` rows grouped by order id (in the order they came)."""
    grouped: dict[int, list[sa.RowMapping]] = {}
    for row in rows:
        values = row._mapping
        grouped.setdefault(values["order_id"], []).append(values)
    return grouped


def _contexts_of(
    grouped: dict[int, list[sa.RowMapping]], order_ids: Sequence[int]
) -> dict[int, _Context]:
    """These orders' lines, their products (one snapshot per product) and buyers."""
    products: dict[int, Product] = {}
    found: dict[int, _Context] = {}
    for order_id in order_ids:
        mine = [values for values in grouped.get(order_id, ()) if values["l_id"] is not None]
        if not mine:
            raise RuntimeError(f"order {order_id} has no lines")
        lines = [_part(OrderLine, "l", values) for values in mine]
        for values in mine:
            if values["p_id"] not in products:
                products[values["p_id"]] = _part(Product, "p", values)
        used = {line.product_id: products[line.product_id] for line in lines}
        found[order_id] = (lines, used, _part(Customer, "c", mine[0]))
    return found


async def _context(s: AsyncSession, order_id: int) -> _Context:
    """The order's lines, their products and its buyer, in one query."""
    rows = (await s.execute(_CONTEXT, {"p_order_id": order_id})).all()
    return _contexts_of(_by_order(rows), [order_id])[order_id]


_SELL_RESERVED = (
    sa.update(_units)
    .where(
        _units.c.order_id.in_(sa.bindparam("p_order_ids", expanding=True)),
        _units.c.status == StockStatus.RESERVED,
    )
    .values(
        status=StockStatus.SOLD,
        reserved_until=None,
        sold_at=sa.bindparam("p_sold_at", type_=_units.c.sold_at.type),
    )
    .returning(_units.c.order_id, _units.c.id, _units.c.product_id, _units.c.code)
)


class _Reroute(Exception):
    """Internal: the fast path found something unusual; redo it the careful way."""


@dataclass(frozen=True, slots=True)
class _Claim:
    """One `settle` call: its payment and its callbacks."""

    payment: SettlePayment
    render: Render
    verify: Verify | None


async def _settle_pending(s: AsyncSession, claims: Sequence[_Claim]) -> dict[int, SettleResult]:
    """The common case, one statement per step for the whole batch: the pending orders the
    payments are for (found as `_target` says). Those that match their payment are paid and
    their reserved units sold; those that do not go to review. Returns the results by claim
    index; the other claims (no such order, not pending, a second claim for one order or
    invoice) are left to `_settle_general`. Raises `_Reroute` when an order turns out to be
    short of reserved units (the caller redoes it the careful way)."""
    dialect = dialect_of(s)
    rows = await s.execute(
        _CANDIDATE_ORDERS[dialect],
        {
            "p_invoice_ids": [c.payment.invoice_id for c in claims],
            "p_order_ids": [c.payment.order_id for c in claims if c.payment.order_id is not None],
        },
    )
    grouped = _by_order(rows.all())
    by_id: dict[int, dict[str, Any]] = {}
    by_invoice: dict[int, dict[str, Any]] = {}
    for order_id, mine in grouped.items():
        by_id[order_id] = candidate = {c.name: mine[0][f"o_{c.name}"] for c in _orders.c}
        if candidate["invoice_id"] is not None:
            by_invoice[candidate["invoice_id"]] = candidate
    paid: dict[int, tuple[_Claim, Order]] = {}  # claim index -> the claim, its paid order
    mismatched: dict[int, tuple[_Claim, Order, str]] = {}  # ... and why it does not match
    taken_orders: set[int] = set()  # a second claim for one of these: general path
    taken_invoices: set[int] = set()
    for index, claim in enumerate(claims):
        row = _target(claim.payment, by_id, by_invoice)
        if (
            row is None
            or row["status"] != OrderStatus.PENDING
            or row["id"] in taken_orders
            or claim.payment.invoice_id in taken_invoices
        ):
            continue
        taken_orders.add(row["id"])
        taken_invoices.add(claim.payment.invoice_id)
        order = snapshot(Order, {**row, **_paid_fields(claim.payment, OrderStatus.PAID, None)})
        reason = claim.verify(order) if claim.verify is not None else None
        if reason is None:
            paid[index] = (claim, order)
        else:
            mismatched[index] = (claim, order, reason)
    results = await _sell_paid(s, paid, grouped) if paid else {}
    if mismatched:
        await s.execute(
            _RECORD_EVENT[dialect],
            [_event_params(claim.payment, order.id) for claim, order, _ in mismatched.values()],
        )
    for index, (claim, order, reason) in mismatched.items():
        results[index] = await _review(
            s, order, claim.payment, reason, claim.render, (OrderStatus.PENDING,)
        )
    return results


async def _sell_paid(
    s: AsyncSession,
    paid: dict[int, tuple[_Claim, Order]],
    candidates: dict[int, list[sa.RowMapping]],
) -> dict[int, SettleResult]:
    """These pending orders (locked, their `candidates` rows read) become `paid` as given,
    with their payment events recorded and their reserved units sold; their render drafts
    go into the outbox."""
    order_ids = [order.id for _, order in paid.values() if order.id is not None]
    contexts = _contexts_of(candidates, order_ids)
    payments = [
        {f"p_{name}": getattr(order, name) for name in _PAID_COLUMNS}
        | {"p_order_id": order.id}
        | _event_params(claim.payment, order.id)
        for claim, order in paid.values()
    ]
    if dialect_of(s) == "postgresql":
        await s.execute(_PAY_AND_RECORD, payments)
    else:
        await s.execute(_RECORD_EVENT["sqlite"], payments)
        await s.execute(_PAY_LOCKED, payments)
    sold = await s.execute(_SELL_RESERVED, {"p_order_ids": order_ids, "p_sold_at": utcnow()})
    codes: dict[int, dict[int, list[str]]] = {order_id: {} for order_id in order_ids}
    for order_id, _uid, product_id, code in sorted(sold.all()):
        codes[order_id].setdefault(product_id, []).append(code)
    results: dict[int, SettleResult] = {}
    drafts: list[OutboxDraft] = []
    for index, (claim, order) in paid.items():
        assert order.id is not None
        lines, products, customer = contexts[order.id]
        mine = codes[order.id]
        for line in lines:
            if not products[line.product_id].unlimited:
                if len(mine.get(line.product_id, ())) != line.quantity:
                    raise _Reroute
        ctx = SettleContext(
            order,
            lines,
            products,
            mine,
            SettleOutcome.SETTLED,
            customer.telegram_id,
            customer.language,
        )
        drafts.extend(claim.render(ctx))
        results[index] = SettleResult(SettleOutcome.SETTLED, order, mine)
    await add_in(s, drafts)
    return results


# The batch limit: one transaction holds SQLite's write lock (and these order rows on
# PostgreSQL) this many settlements long at most.
SETTLE_BATCH = 64


async def settle(
    db: Database, payment: SettlePayment, render: Render, verify: Verify | None = None
) -> SettleResult:
    """Settle a confirmed payment of `payment.invoice_id` (for the order the payload names).

    One transaction: the order is found (by the invoice; by `payment.order_id` while that
    order has no invoice recorded) and locked, the payment event is recorded (once per
    invoice), and `verify(order)` is asked whether the payment matches the order. If it
    does, a pending order becomes paid and its reserved units sold; an expired/cancelled one
    (late payment) gets fresh units if stock allows (`late_settled`), otherwise becomes
    `needs_refund`. If it does not, the order takes the `mark_needs_review` path
    (`needs_review`, reserved units returned, nothing delivered) in this same transaction.
    The drafts returned by `render(ctx)` go into the outbox. Calling it again for a settled
    invoice changes nothing and returns `duplicate` (with the order and its codes; `verify`
    is not asked); no matching order gives `unknown_order` (the event is still recorded).
    `render` is called only when something changed; if it or `verify` raises, nothing is
    written for this payment.

    Calls made at the same time share that transaction (at most SETTLE_BATCH of them); one
    that fails or raises is redone alone, so only its own caller sees the error — except
    when the database itself fails, which every caller of the batch hears.
    """
    coalescer = db.coalescer("settle", partial(_settle_batch, db), SETTLE_BATCH)
    return await coalescer(_Claim(payment, render, verify))


PING_TIMEOUT_S = 5.0


async def _database_failed(db: Database, error: Exception) -> bool:
    """Whether a batch failed because of the database itself (gone, locked, timed out)
    rather than one of its claims — then it fails all its claims at once: redoing each
    alone would only wait for the database once per claim. SQLite's own errors (locked
    past the busy timeout, disk I/O) are such; a database or I/O error otherwise is when
    the database does not answer a ping (asyncpg reports a server going away as a plain
    DBAPIError, a refused connection as an OSError — as a missing template file would)."""
    if isinstance(error, sa.exc.OperationalError):
        return True
    if not isinstance(error, DATABASE_ERRORS):
        return False  # a claim's own error (a render bug, a reroute): no need to ask
    try:
        return not await asyncio.wait_for(db.ping(), PING_TIMEOUT_S)
    except TimeoutError:
        return True


async def _settle_batch(db: Database, claims: list[_Claim]) -> Sequence[SettleResult | Exception]:
    if len(claims) > 1:
        try:
            async with db.transaction() as s:
                return await _settle_all(s, claims)
        except Exception as error:
            if await _database_failed(db, error):
                return [error] * len(claims)
            log.info(
                "settling %d payments together failed (%s); settling each alone",
                len(claims),
                type(error).__name__,
            )
    outcomes: list[SettleResult | Exception] = []
    for claim in claims:
        try:
            outcomes.append(await _settle_one(db, claim))
        except Exception as error:
            outcomes.append(error)
    return outcomes


async def _settle_one(db: Database, claim: _Claim) -> SettleResult:
    try:
        async with db.transaction() as s:
            return (await _settle_all(s, [claim]))[0]
    except _Reroute:
        async with db.transaction() as s:
            return await _settle_general(s, claim.payment, claim.render, claim.verify)


async def _settle_all(s: AsyncSession, claims: list[_Claim]) -> list[SettleResult]:
    """Every claim settled in this transaction: the clean ones together, then the others
    one by one (they see what the first step wrote: a second claim for an invoice the
    batch just settled is a duplicate)."""
    fast = await _settle_pending(s, claims)
    return [
        fast[index]
        if index in fast
        else await _settle_general(s, claim.payment, claim.render, claim.verify)
        for index, claim in enumerate(claims)
    ]


async def _settle_general(
    s: AsyncSession, payment: SettlePayment, render: Render, verify: Verify | None
) -> SettleResult:
    order = await _lock_order(s, payment)
    if order is None:
        return SettleResult(SettleOutcome.UNKNOWN_ORDER, None)
    assert order.id is not None
    if order.status not in SETTLEABLE:
        return SettleResult(SettleOutcome.DUPLICATE, order, await sold_codes(s, order.id))
    reason = verify(order) if verify is not None else None
    if reason is not None:
        return await _review(s, order, payment, reason, render, SETTLEABLE)
    late = order.status != OrderStatus.PENDING
    lines, products, customer = await _context(s, order.id)
    chosen = await _assign_units(s, order.id, lines, products)
    if chosen is None:
        outcome = SettleOutcome.NEEDS_REFUND
        updated = await _transition(
            s,
            "id",
            payment,
            OrderStatus.NEEDS_REFUND,
            LATE_NO_STOCK_REASON,
            order_id=order.id,
        )
    else:
        outcome = SettleOutcome.LATE_SETTLED if late else SettleOutcome.SETTLED
        updated = await _transition(s, "id", payment, OrderStatus.PAID, None, order_id=order.id)
    if updated is None:  # defensive: the row lock makes this unreachable
        return SettleResult(SettleOutcome.DUPLICATE, order, await sold_codes(s, order.id))
    await unreserve(s, order.id)
    if chosen:
        await _sell(s, order.id, [uid for ids in chosen.values() for uid in ids])
    codes = await sold_codes(s, order.id)
    ctx = SettleContext(
        updated, lines, products, codes, outcome, customer.telegram_id, customer.language
    )
    await add_in(s, list(render(ctx)))
    return SettleResult(outcome, updated, codes)


async def _review(
    s: AsyncSession,
    order: Order,
    payment: SettlePayment,
    reason: str,
    render: Render | None,
    from_states: Sequence[OrderStatus],
) -> SettleResult:
    """`order` (locked, its event recorded) → needs_review with the paid fields; its
    reserved units go back to stock; `render(ctx)` (e.g. the admins' alert) is enqueued."""
    assert order.id is not None
    updated = await _transition(
        s, "id", payment, OrderStatus.NEEDS_REVIEW, reason, from_states, order_id=order.id
    )
    if updated is None:
        return SettleResult(SettleOutcome.DUPLICATE, order, await sold_codes(s, order.id))
    await unreserve(s, order.id)
    if render is not None:
        lines, products, customer = await _context(s, order.id)
        ctx = SettleContext(
            updated,
            lines,
            products,
            {},
            SettleOutcome.NEEDS_REVIEW,
            customer.telegram_id,
            customer.language,
        )
        await add_in(s, list(render(ctx)))
    return SettleResult(SettleOutcome.NEEDS_REVIEW, updated, {})


async def _sell(s: AsyncSession, order_id: int, unit_ids: list[int]) -> None:
    res = await s.execute(
        sa.update(StockUnit)
        .where(
            col(StockUnit.id).in_(unit_ids),
            sa.or_(
                col(StockUnit.status) == StockStatus.AVAILABLE,
                sa.and_(
                    col(StockUnit.status) == StockStatus.RESERVED,
                    col(StockUnit.order_id) == order_id,
                ),
            ),
        )
        .values(status=StockStatus.SOLD, order_id=order_id, reserved_until=None, sold_at=utcnow())
        .returning(col(StockUnit.id))
    )
    if len(res.all()) != len(unit_ids):
        raise RuntimeError(f"order {order_id}: stock changed under the settlement; rolled back")


async def mark_needs_review(
    db: Database, payment: SettlePayment, reason: str, render: Render | None = None
) -> SettleResult:
    """A verified payment that does not match the order (amount/asset): record the event
    and the paid fields, move pending/expired/cancelled → needs_review, return reserved
    units to stock, and enqueue `render(ctx)` (e.g. the admins' alert) — one transaction.
    (`settle` with a `verify` callback takes this path itself on a mismatch.)"""
    async with db.transaction() as s:
        order = await _lock_order(s, payment)
        if order is None:
            return SettleResult(SettleOutcome.UNKNOWN_ORDER, None)
        return await _review(s, order, payment, reason, render, SETTLEABLE)


async def mark_delivered(db: Database, order_id: int) -> bool:
    """paid → delivered (the buyer's goods message was accepted by Telegram)."""
    now = utcnow()
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Order)
            .where(col(Order.id) == order_id, col(Order.status) == OrderStatus.PAID)
            .values(status=OrderStatus.DELIVERED, delivered_at=now, updated_at=now)
            .returning(col(Order.id))
        )
        return res.first() is not None
