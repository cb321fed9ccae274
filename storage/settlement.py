"""Settlement: a confirmed payment becomes a paid order with its goods, in one transaction.

The webhook, the reconciliation job and the admin's /recheck all call `settle`; whichever
comes first makes the transition, the others get `duplicate` and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, locked, snapshot, table_of
from storage.database import Database
from storage.enums import SETTLEABLE, OrderStatus, SettleOutcome, StockStatus
from storage.models import Customer, Order, OrderLine, PaymentEvent, Product, StockUnit
from storage.orders import pick_available, sold_codes, unreserve
from storage.outbox import OutboxDraft, enqueue_in
from storage.types import to_money, utcnow

T = TypeVar("T")

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
    outbox_ids: list[int] = field(default_factory=list)

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


async def _record_event(s: AsyncSession, payment: SettlePayment, order_id: int | None) -> None:
    await s.execute(
        _RECORD_EVENT[dialect_of(s)],
        {
            "p_invoice_id": payment.invoice_id,
            "p_event_order_id": order_id,
            "p_source": payment.source,
            "p_body": payment.raw_body,
            "p_received_at": utcnow(),
        },
    )


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


def _transition_stmt(target: sa.ColumnElement[bool]) -> Any:
    """pending/… → `p_status` with the payment's fields, for the order `target` selects
    while it is in `p_from` and carries no other invoice, returning the updated row."""
    c = _orders.c

    def param(name: str) -> Any:
        return sa.bindparam(f"p_{name}", type_=c[name].type)

    return (
        sa.update(_orders)
        .where(
            target,
            c.status.in_(sa.bindparam("p_from", expanding=True)),
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
        .returning(*c)
    )


_TRANSITION = {name: _transition_stmt(target) for name, target in _TARGETS.items()}


async def _lock_order(s: AsyncSession, payment: SettlePayment) -> Order | None:
    """The order row, locked (PG) and current, with the payment event recorded; None when
    no order of ours matches the invoice and payload (the event is recorded orderless)."""
    order = await s.scalar(
        locked(s, sa.select(Order).where(_TARGETS[_for_invoice(payment)])),
        {"p_invoice_id": payment.invoice_id, "p_order_id": payment.order_id},
    )
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
    res = await s.execute(
        _TRANSITION[target],
        {
            "p_order_id": payment.order_id if order_id is None else order_id,
            "p_invoice_id": payment.invoice_id,
            "p_from": list(from_states),
            "p_status": status,
            "p_paid_asset": payment.paid_asset,
            "p_paid_amount": to_money(payment.paid_amount),
            "p_fee_asset": payment.fee_asset,
            "p_fee_amount": None if payment.fee_amount is None else to_money(payment.fee_amount),
            "p_paid_at": payment.paid_at,
            "p_attention_reason": reason,
            "p_updated_at": utcnow(),
        },
    )
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
_CONTEXT_TABLES = {"l": _lines, "p": _products, "c": _customers}
# Lines, their products and the buyer, in one Core query (columns labelled per table); the
# rows become read-only snapshots, cheaper than loading three entities through the ORM.
_CONTEXT = (
    sa.select(
        *(c.label(f"{tag}_{c.name}") for tag, table in _CONTEXT_TABLES.items() for c in table.c)
    )
    .select_from(_lines)
    .join(_products, _products.c.id == _lines.c.product_id)
    .join(_orders, _orders.c.id == _lines.c.order_id)
    .join(_customers, _customers.c.id == _orders.c.customer_id)
    .where(_lines.c.order_id == sa.bindparam("p_order_id"))
    .order_by(_lines.c.id)
)


def _part(model: type[T], tag: str, values: sa.RowMapping) -> T:
    """The `tag`-labelled columns of a _CONTEXT row as a read-only `model` snapshot."""
    names = (c.name for c in _CONTEXT_TABLES[tag].c)
    return snapshot(model, {name: values[f"{tag}_{name}"] for name in names})


async def _context(
    s: AsyncSession, order_id: int
) -> tuple[list[OrderLine], dict[int, Product], Customer]:
    """Lines, their products and the buyer, in one query."""
    rows = (await s.execute(_CONTEXT, {"p_order_id": order_id})).all()
    if not rows:
        raise RuntimeError(f"order {order_id} has no lines")
    lines = [_part(OrderLine, "l", row._mapping) for row in rows]
    products = {row.p_id: _part(Product, "p", row._mapping) for row in rows}
    return lines, products, _part(Customer, "c", rows[0]._mapping)


_SELL_RESERVED = (
    sa.update(_units)
    .where(
        _units.c.order_id == sa.bindparam("p_order_id"),
        _units.c.status == StockStatus.RESERVED,
    )
    .values(
        status=StockStatus.SOLD,
        reserved_until=None,
        sold_at=sa.bindparam("p_sold_at", type_=_units.c.sold_at.type),
    )
    .returning(_units.c.id, _units.c.product_id, _units.c.code)
)


class _Reroute(Exception):
    """Internal: the fast path found something unusual; redo it the careful way."""


async def _settle_pending(
    s: AsyncSession, payment: SettlePayment, render: Render, verify: Verify | None
) -> SettleResult | None:
    """The common case in few statements: a pending order whose reservations are intact.
    None when no pending order matches (the caller takes the general path)."""
    updated = await _transition(
        s, _for_invoice(payment), payment, OrderStatus.PAID, None, (OrderStatus.PENDING,)
    )
    if updated is None:
        return None
    order_id = updated.id
    assert order_id is not None
    await _record_event(s, payment, order_id)
    reason = verify(updated) if verify is not None else None
    if reason is not None:
        # Still ours: the row is locked (PG) / the write lock held (SQLite) since the update.
        return await _review(s, updated, payment, reason, render, (OrderStatus.PAID,))
    lines, products, customer = await _context(s, order_id)
    rows = await s.execute(_SELL_RESERVED, {"p_order_id": order_id, "p_sold_at": utcnow()})
    codes: dict[int, list[str]] = {}
    for _uid, pid, code in sorted(rows.all()):
        codes.setdefault(pid, []).append(code)
    for line in lines:
        if not products[line.product_id].unlimited:
            if len(codes.get(line.product_id, ())) != line.quantity:
                raise _Reroute
    ctx = SettleContext(
        updated,
        lines,
        products,
        codes,
        SettleOutcome.SETTLED,
        customer.telegram_id,
        customer.language,
    )
    outbox_ids = await enqueue_in(s, list(render(ctx)))
    return SettleResult(SettleOutcome.SETTLED, updated, codes, outbox_ids)


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
    written.
    """
    try:
        async with db.transaction() as s:
            fast = await _settle_pending(s, payment, render, verify)
            if fast is not None:
                return fast
            return await _settle_general(s, payment, render, verify)
    except _Reroute:
        async with db.transaction() as s:
            return await _settle_general(s, payment, render, verify)


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
    outbox_ids = await enqueue_in(s, list(render(ctx)))
    return SettleResult(outcome, updated, codes, outbox_ids)


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
    outbox_ids: list[int] = []
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
        outbox_ids = await enqueue_in(s, list(render(ctx)))
    return SettleResult(SettleOutcome.NEEDS_REVIEW, updated, {}, outbox_ids)


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
