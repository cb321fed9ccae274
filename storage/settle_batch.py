"""The settle rule for the common case, set-based: many pending orders paid with a few
statements in all instead of a few each (storage.settlement.settle_many's fast path).

A payment is clean when the order it is for (found as `_target` says) is pending, carries
no other invoice, has no second payment in the batch, and `verify` accepts the payment:
then the order is paid, its reserved units sold and its notices enqueued, together with
the other clean ones. Those `verify` rejects are handed back for review; every other
payment (duplicates, late payments, unknown invoices) is left to the one-order rule.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import dialect_of, snapshot, table_of
from storage.enums import OrderStatus, SettleOutcome, StockStatus
from storage.models import Customer, Order, OrderLine, Product, StockUnit
from storage.outbox import OutboxDraft, add_in
from storage.referrals import reward_first_orders_in
from storage.settle_common import (
    PAID_VALUES,
    RECORD_EVENT,
    SettlePayment,
    SettleResult,
    Verify,
    event_params,
    notices,
    paid_fields,
)
from storage.types import utcnow

_orders = table_of(Order)
_lines = table_of(OrderLine)
_products = table_of(Product)
_customers = table_of(Customer)
_units = table_of(StockUnit)

# The orders a batch may be for — those carrying its invoices and those its payloads name —
# a row per line, with the buyer's chat and what each line needs from stock; the orders
# locked (PG). Lines are joined outer: an order without lines still carries its invoice.
_CANDIDATES = (
    sa.select(
        *_orders.c,
        _customers.c.telegram_id.label("buyer_chat"),
        _lines.c.product_id.label("line_product"),
        _lines.c.quantity.label("line_quantity"),
        _products.c.unlimited.label("line_unlimited"),
    )
    .select_from(_orders)
    .join(_customers, _customers.c.id == _orders.c.customer_id)
    .join(_lines, _lines.c.order_id == _orders.c.id, isouter=True)
    .join(_products, _products.c.id == _lines.c.product_id, isouter=True)
    .where(
        sa.or_(
            _orders.c.invoice_id.in_(sa.bindparam("p_invoice_ids", expanding=True)),
            _orders.c.id.in_(sa.bindparam("p_order_ids", expanding=True)),
        )
    )
    .order_by(_orders.c.id, _lines.c.id)
)
_LOCK_CANDIDATES = {
    "postgresql": _CANDIDATES.with_for_update(of=_orders),
    "sqlite": _CANDIDATES,  # the IMMEDIATE transaction holds the write lock already
}

# pending → paid for orders this transaction read as pending and holds since (PG: locked;
# SQLite: the write lock), so no status condition is needed: by primary key alone, one
# executemany for the batch. It stays outside order_states.transition_stmt on purpose: with
# a status condition, PostgreSQL's planner — before its statistics knew the table — took a
# status index and walked every pending order for each one it paid.
PAY_LOCKED = (
    sa.update(_orders)
    .where(_orders.c.id == sa.bindparam("p_order_id"))
    .values(status=OrderStatus.PAID, **PAID_VALUES)
)
# On PostgreSQL the payment event is recorded by the same statement (a CTE), one round
# trip for both; SQLite has no data-modifying CTEs and records it first.
PAY_AND_RECORD = PAY_LOCKED.add_cte(RECORD_EVENT["postgresql"].cte("recorded"))

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


class StockChanged(RuntimeError):
    """An order's reserved units are not what its lines need (a manual fix in the database):
    the batch is rolled back and each payment settled alone by the one-order rule."""


@dataclass(slots=True)
class _Candidate:
    row: dict[str, Any]  # the order's columns
    buyer_chat: int
    needs: dict[int, int] = field(default_factory=dict)  # product id -> units to sell


@dataclass(slots=True)
class Settled:
    """What the fast path did, by payment index: `results` for the orders it paid, and the
    orders `verify` rejected (locked, their events recorded) with the reason, for review."""

    results: dict[int, SettleResult] = field(default_factory=dict)
    rejected: dict[int, tuple[Order, int, str]] = field(default_factory=dict)


async def settle_clean(
    s: AsyncSession,
    payments: Sequence[SettlePayment],
    verify: Verify | None,
    admins: Collection[int],
    referral_percent: Decimal = Decimal(0),
) -> Settled:
    """Pay the clean payments among these, together (see the module's docstring)."""
    candidates = await _lock_candidates(s, payments)
    by_invoice = {c.row["invoice_id"]: c for c in candidates.values() if c.row["invoice_id"]}
    done = Settled()
    paid: dict[int, _Candidate] = {}
    taken_orders: set[int] = set()
    taken_invoices: set[int] = set()
    for index, payment in enumerate(payments):
        found = _target(payment, candidates, by_invoice)
        if (
            found is None
            or found.row["status"] != OrderStatus.PENDING
            or found.row["id"] in taken_orders
            or payment.invoice_id in taken_invoices
        ):
            continue  # the one-order rule sees what this batch wrote
        taken_orders.add(found.row["id"])
        taken_invoices.add(payment.invoice_id)
        if verify is None:
            paid[index] = found
            continue
        order = snapshot(Order, found.row)
        reason = verify(payment, order)
        if reason is None:
            paid[index] = found
        else:
            done.rejected[index] = (order, found.buyer_chat, reason)
    if paid:
        to_pay = {i: (payments[i], c) for i, c in paid.items()}
        done.results = await _pay(s, to_pay, admins, referral_percent)
    if done.rejected:
        await s.execute(
            RECORD_EVENT[dialect_of(s)],
            [event_params(payments[i], order.id) for i, (order, _, _) in done.rejected.items()],
        )
    return done


async def _lock_candidates(
    s: AsyncSession, payments: Sequence[SettlePayment]
) -> dict[int, _Candidate]:
    rows = await s.execute(
        _LOCK_CANDIDATES[dialect_of(s)],
        {
            "p_invoice_ids": [p.invoice_id for p in payments],
            "p_order_ids": [p.order_id for p in payments if p.order_id is not None],
        },
    )
    order_columns = [c.name for c in _orders.c]
    found: dict[int, _Candidate] = {}
    for row in rows.all():
        values = row._mapping
        candidate = found.get(values["id"])
        if candidate is None:
            row_values = {name: values[name] for name in order_columns}
            candidate = found[values["id"]] = _Candidate(row_values, values["buyer_chat"])
        product_id = values["line_product"]
        if product_id is not None and not values["line_unlimited"]:
            needs = candidate.needs
            needs[product_id] = needs.get(product_id, 0) + values["line_quantity"]
    return found


def _target(
    payment: SettlePayment,
    by_id: dict[int, _Candidate],
    by_invoice: dict[int, _Candidate],
) -> _Candidate | None:
    """The order this payment is for, by the one-order rule's: the order carrying the
    invoice, which must be the payload's (when it names one); or else the payload's order
    while it carries no invoice."""
    carrier = by_invoice.get(payment.invoice_id)
    if carrier is not None:
        return carrier if payment.order_id in (None, carrier.row["id"]) else None
    named = None if payment.order_id is None else by_id.get(payment.order_id)
    return named if named is not None and named.row["invoice_id"] is None else None


async def _pay(
    s: AsyncSession,
    paid: dict[int, tuple[SettlePayment, _Candidate]],
    admins: Collection[int],
    referral_percent: Decimal,
) -> dict[int, SettleResult]:
    """These locked pending orders become paid, their events recorded, their reserved
    units sold and their notices enqueued."""
    fields = {index: paid_fields(payment, OrderStatus.PAID) for index, (payment, _) in paid.items()}
    params = [
        {f"p_{name}": value for name, value in fields[index].items()}
        | {"p_order_id": c.row["id"]}
        | event_params(payment, c.row["id"])
        for index, (payment, c) in paid.items()
    ]
    if dialect_of(s) == "postgresql":
        await s.execute(PAY_AND_RECORD, params)
    else:
        await s.execute(RECORD_EVENT["sqlite"], params)
        await s.execute(PAY_LOCKED, params)
    order_ids = [c.row["id"] for _, c in paid.values()]
    sold = await s.execute(_SELL_RESERVED, {"p_order_ids": order_ids, "p_sold_at": utcnow()})
    codes: dict[int, dict[int, list[str]]] = {order_id: {} for order_id in order_ids}
    for order_id, _unit, product_id, code in sorted(sold.all()):  # as get_order lists them
        codes[order_id].setdefault(product_id, []).append(code)
    results: dict[int, SettleResult] = {}
    drafts: list[OutboxDraft] = []
    for index, (_, c) in paid.items():
        mine = codes[c.row["id"]]
        if {pid: len(sold) for pid, sold in mine.items()} != c.needs:
            raise StockChanged(f"order {c.row['id']}: reserved units do not match its lines")
        order = snapshot(Order, {**c.row, **fields[index]})
        results[index] = SettleResult(SettleOutcome.SETTLED, order, mine)
        message = (c.row["message_chat_id"], c.row["message_id"])
        drafts.extend(notices(c.row["id"], c.buyer_chat, SettleOutcome.SETTLED, admins, message))
    await add_in(s, drafts)
    firsts = [(c.row["id"], c.row["customer_id"], c.row["currency"]) for _, c in paid.values()]
    await reward_first_orders_in(s, firsts, referral_percent)
    return results
