"""The order's life, written once: which status may follow which, and the groups of states.

Every status change of an order goes through `transition` (or a statement built by
`transition_stmt`): ``UPDATE orders SET status = :to … WHERE id = :id AND status IN (the
sources this table allows) RETURNING …``. A change the table does not list raises
`IllegalTransition` before any SQL is sent; a change whose order has meanwhile moved on
updates nothing and returns None, so of two racing callers exactly one wins.

    pending ─────── payment ───────▶ paid ─── goods sent ───▶ delivered
       │                              ▲
       │ deadline passes,             │ late payment, stock left
       │ or the buyer cancels         │
       ▼                              │
    expired / cancelled ──────────────┘
    expired / cancelled ────── late payment, no stock left ─────▶ needs_refund
    pending / expired / cancelled ── payment does not match ────▶ needs_review

    refunds, sent by an admin:
    paid / delivered / partially_refunded ───── a part ─────────▶ partially_refunded
    paid / delivered / partially_refunded /
    needs_review / needs_refund ─────────── all, or the rest ───▶ refunded (final)

Decided on purpose:
- A paid order is never cancelled or expired: money was received, only a refund ends it.
- `needs_review` (the payment did not match the order) and `needs_refund` (paid after
  expiry, no stock left) may be refunded: sending the money back is what the admin who
  looks at them is there to decide. Neither becomes `paid` by itself.
- A *partial* refund of those two leaves the order where it is: it was never a sale and
  no goods went out, so it must not become `partially_refunded` (counted as a sale, its
  goods shown to the buyer) nor drop off the admins' attention list. Refunding the rest
  makes it `refunded`.
- `partially_refunded` may be refunded again, partly or fully; `refunded` is final.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import snapshot, table_of
from storage.enums import OrderStatus
from storage.models import Order
from storage.types import utcnow

S = OrderStatus

# to -> the states it may be reached from.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PAID: frozenset({S.PENDING, S.EXPIRED, S.CANCELLED}),
    S.NEEDS_REVIEW: frozenset({S.PENDING, S.EXPIRED, S.CANCELLED}),
    S.NEEDS_REFUND: frozenset({S.EXPIRED, S.CANCELLED}),
    S.EXPIRED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.DELIVERED: frozenset({S.PAID}),
    S.PARTIALLY_REFUNDED: frozenset({S.PAID, S.DELIVERED, S.PARTIALLY_REFUNDED}),
    S.REFUNDED: frozenset(
        {S.PAID, S.DELIVERED, S.PARTIALLY_REFUNDED, S.NEEDS_REVIEW, S.NEEDS_REFUND}
    ),
}

# The groups, defined here and imported everywhere else.
STATES = tuple(S)  # every state, in the order admins see them listed
OPEN = (S.PENDING,)  # awaiting payment: its units are reserved
RELEASED = (S.EXPIRED, S.CANCELLED)  # closed unpaid: units back in stock
SETTLEABLE = OPEN + RELEASED  # a payment for it settles it (a late one too)
PAID_STATES = (  # money was received
    S.PAID,
    S.DELIVERED,
    S.NEEDS_REVIEW,
    S.NEEDS_REFUND,
    S.REFUNDED,
    S.PARTIALLY_REFUNDED,
)
REFUNDABLE = tuple(s for s in STATES if s in TRANSITIONS[S.REFUNDED])  # paid, not all back
SALE_STATES = (S.PAID, S.DELIVERED, S.PARTIALLY_REFUNDED)  # counted as sales
ATTENTION_STATES = (S.NEEDS_REVIEW, S.NEEDS_REFUND)  # a human must look
# Goods were sold to it (a refunded order keeps them, unless it was refunded from an
# attention state: see `Order.attention_reason`).
WITH_GOODS = (S.PAID, S.DELIVERED, S.PARTIALLY_REFUNDED, S.REFUNDED)


class IllegalTransition(ValueError):
    """A status change the table does not allow (a bug in the caller, not a race)."""


def sources(to: OrderStatus, from_: Iterable[OrderStatus] | None = None) -> tuple[S, ...]:
    """The states `to` may be reached from (narrowed to `from_`, each of which must be
    allowed), in a stable order for SQL."""
    allowed = TRANSITIONS.get(to, frozenset())
    if from_ is None:
        chosen = allowed
    else:
        chosen = frozenset(from_)
        if not chosen or not chosen <= allowed:
            bad = ", ".join(sorted(chosen - allowed)) or "nothing"
            raise IllegalTransition(f"an order may not go from {bad} to {to}")
    if not chosen:
        raise IllegalTransition(f"no order may go to {to}")
    return tuple(sorted(chosen))


def can(from_: OrderStatus, to: OrderStatus) -> bool:
    return from_ in TRANSITIONS.get(to, frozenset())


_orders = table_of(Order)


def transition_stmt(
    to: OrderStatus, *, from_: Iterable[OrderStatus] | None = None, where: Any = None
) -> Any:
    """``UPDATE orders SET status = to WHERE id = :p_order_id AND status IN (sources)``
    (and `where`, when given), returning the updated row; add `.values(...)` for the other
    columns. Built once per call site, it can be executed many times."""
    stmt = sa.update(_orders).where(
        _orders.c.id == sa.bindparam("p_order_id"),
        _orders.c.status.in_(sources(to, from_)),
    )
    if where is not None:
        stmt = stmt.where(where)
    return stmt.values(status=to).returning(*_orders.c)


async def transition(
    s: AsyncSession,
    order_id: int,
    to: OrderStatus,
    *,
    from_: Iterable[OrderStatus] | None = None,
    **values: Any,
) -> Order | None:
    """Move order `order_id` to `to` (with these other column `values`; `updated_at` is
    set) if it is in one of the allowed states; the updated order as a read-only snapshot,
    or None when it was not (another caller got there first, or there is no such order)."""
    if "status" in values:
        raise TypeError("transition: the status is `to`, not one of the other values")
    stmt = transition_stmt(to, from_=from_).values(updated_at=utcnow(), **values)
    row = (await s.execute(stmt, {"p_order_id": order_id})).first()
    return None if row is None else snapshot(Order, row._mapping)
