"""What both settle paths share (storage.settlement, storage.settle_batch): the payment and
the result, the payment event, the paid fields an order gets, the notices a settlement
enqueues, and the stock the one-order rule sells."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, table_of
from storage.enums import OrderStatus, OutboxKind, SettleOutcome, StockStatus
from storage.models import Order, OrderLine, PaymentEvent, Product, StockUnit
from storage.orders import pick_available
from storage.outbox import OutboxDraft, order_message_edit
from storage.types import aware_utc, to_money, utcnow


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
    source: str  # webhook | reconcile | expiry | check | recheck
    raw_body: str = ""


@dataclass(slots=True)
class SettleResult:
    outcome: SettleOutcome
    order: Order | None
    codes: dict[int, list[str]] = field(default_factory=dict)  # product id -> sold codes

    @property
    def changed(self) -> bool:
        return self.outcome not in (SettleOutcome.DUPLICATE, SettleOutcome.UNKNOWN_ORDER)


# verify(payment, order) -> why the payment does not match the order (amount, currency,
# asset), or None when it does. Called inside the settle transaction, the order locked.
Verify = Callable[[SettlePayment, Order], str | None]

LATE_NO_STOCK_REASON = "paid after the order expired and the stock is gone: refund"

_orders = table_of(Order)
_events = table_of(PaymentEvent)


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


# Statements are built once, with bind parameters: building one (and the ORM's bulk-DML
# bookkeeping) cost more CPU than running it.
RECORD_EVENT = {
    "postgresql": _record_event_stmt(postgresql.insert),
    "sqlite": _record_event_stmt(sqlite.insert),
}


def event_params(payment: SettlePayment, order_id: int | None) -> dict[str, Any]:
    """RECORD_EVENT's parameters: the payment's event, for `order_id` (None: no order)."""
    return {
        "p_invoice_id": payment.invoice_id,
        "p_event_order_id": order_id,
        "p_source": payment.source,
        "p_body": payment.raw_body,
        "p_received_at": utcnow(),
    }


async def record_event(s: AsyncSession, payment: SettlePayment, order_id: int | None) -> None:
    """The payment event, once per invoice (a repeat is ignored)."""
    await s.execute(RECORD_EVENT[dialect_of(s)], event_params(payment, order_id))


_PAID_COLUMNS = (
    "invoice_id",
    "paid_asset",
    "paid_amount",
    "fee_asset",
    "fee_amount",
    "paid_at",
    "attention_reason",
    "updated_at",
)
# The columns a settling transition writes besides the status, as bind parameters p_<name>.
PAID_VALUES = {
    name: sa.bindparam(f"p_{name}", type_=_orders.c[name].type) for name in _PAID_COLUMNS
}


def paid_fields(
    payment: SettlePayment, status: OrderStatus, reason: str | None = None
) -> dict[str, Any]:
    """The order's columns a settling transition writes, by name."""
    fee = payment.fee_amount
    values = (
        payment.invoice_id,
        payment.paid_asset,
        to_money(payment.paid_amount),
        payment.fee_asset,
        None if fee is None else to_money(fee),
        aware_utc(payment.paid_at),
        reason,
        utcnow(),
    )
    return {"status": status, **dict(zip(_PAID_COLUMNS, values, strict=True))}


def paid_params(
    payment: SettlePayment, status: OrderStatus, reason: str | None = None
) -> dict[str, Any]:
    """`paid_fields` as the p_<name> parameters of PAID_VALUES."""
    return {f"p_{name}": value for name, value in paid_fields(payment, status, reason).items()}


# outcome -> (the buyer's notice, its dedupe tag), (the admins' notice, its dedupe tag)
_NOTICES = {
    SettleOutcome.SETTLED: ((OutboxKind.GOODS, "goods"), (OutboxKind.ADMIN_PAID, "paid")),
    SettleOutcome.LATE_SETTLED: (
        (OutboxKind.GOODS, "goods"),
        (OutboxKind.ADMIN_LATE_PAID, "paid"),
    ),
    SettleOutcome.NEEDS_REFUND: (
        (OutboxKind.LATE_NEEDS_REFUND, "needs_refund"),
        (OutboxKind.ADMIN_NEEDS_REFUND, "attention"),
    ),
    SettleOutcome.NEEDS_REVIEW: (
        (OutboxKind.UNDER_REVIEW, "needs_review"),
        (OutboxKind.ADMIN_NEEDS_REVIEW, "attention"),
    ),
}


def notices(
    order_id: int,
    buyer_chat: int,
    outcome: SettleOutcome,
    admins: Collection[int],
    order_message: tuple[int | None, int | None] = (None, None),
) -> list[OutboxDraft]:
    """What a settlement with this outcome announces, as facts: the buyer's message first,
    then the edit of the order message (`order_message`: its chat and id, when recorded),
    then one per admin. The dedupe keys make a repeat of the same announcement a no-op."""
    (buyer_kind, buyer_tag), (admin_kind, admin_tag) = _NOTICES[outcome]
    buyer = OutboxDraft(
        buyer_chat, kind=buyer_kind, order_id=order_id, dedupe_key=f"{buyer_tag}:{order_id}"
    )
    edit = order_message_edit(order_id, *order_message, buyer_tag)
    return [buyer, *edit] + [
        OutboxDraft(
            admin, kind=admin_kind, order_id=order_id, dedupe_key=f"{admin_tag}:{order_id}:{admin}"
        )
        for admin in sorted(admins)
    ]


# Per product, the units the order's lines need from stock (unlimited products need none).
_NEEDS = (
    sa.select(col(OrderLine.product_id), sa.func.sum(col(OrderLine.quantity)))
    .join(Product, col(Product.id) == col(OrderLine.product_id))
    .where(col(OrderLine.order_id) == sa.bindparam("p_order_id"), ~col(Product.unlimited))
    .group_by(col(OrderLine.product_id))
    .order_by(col(OrderLine.product_id))
)


async def units_to_sell(s: AsyncSession, order_id: int) -> list[int] | None:
    """Unit ids to sell: the order's reservations, topped up from available stock when they
    are gone (a late payment). None when stock does not cover every line."""
    reserved: dict[int, list[int]] = {}
    rows = await s.execute(
        sa.select(col(StockUnit.product_id), col(StockUnit.id))
        .where(col(StockUnit.order_id) == order_id, col(StockUnit.status) == StockStatus.RESERVED)
        .order_by(col(StockUnit.id))
    )
    for product_id, unit_id in rows.all():
        if unit_id is not None:
            reserved.setdefault(product_id, []).append(unit_id)
    chosen: list[int] = []
    for product_id, quantity in (await s.execute(_NEEDS, {"p_order_id": order_id})).all():
        have = reserved.get(product_id, [])[:quantity]
        if len(have) < quantity:
            have += await pick_available(s, product_id, quantity - len(have))
            if len(have) < quantity:
                return None
        chosen.extend(have)
    return chosen


async def sell(s: AsyncSession, order_id: int, unit_ids: list[int]) -> None:
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
