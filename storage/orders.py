"""Orders: checkout reservation, invoice attachment, listings and release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, locked, snapshot, table_of
from storage.customers import Buyer, upsert_customer_in
from storage.database import Database
from storage.enums import OrderStatus, StockStatus
from storage.models import Customer, Order, OrderLine, Product, StockUnit
from storage.order_states import OPEN, RELEASED, IllegalTransition, transition
from storage.outbox import add_in, order_message_edit
from storage.promos import apply_promo_in, give_back_in, take_promo_in
from storage.types import to_money, utcnow


class LineSpec(NamedTuple):
    product_id: int
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class OrderDetails:
    order: Order
    lines: list[OrderLine]
    products: dict[int, Product]
    customer: Customer
    codes: dict[int, list[str]] = field(default_factory=dict)  # sold codes per product id


class _NotReservable(Exception):
    """Internal: roll the checkout transaction back."""


class TooManyOpenOrders(Exception):
    """create_order(max_open=n): the customer already has n pending orders; nothing was
    written."""

    def __init__(self, open_orders: int) -> None:
        super().__init__(f"{open_orders} pending orders")
        self.open_orders = open_orders


async def create_order(
    db: Database,
    customer_id: int,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    *,
    max_open: int | None = None,
    promo: str | None = None,
) -> Order | None:
    """Write a pending order and reserve `quantity` available units per line until
    `expires_at` — every line fully or nothing at all.

    Returns None, having written nothing, when a line cannot be reserved in full (not enough
    stock) or names a product that is missing or no longer on sale. Unlimited products need
    no units. With `max_open`, raises TooManyOpenOrders (nothing written) when the customer
    already has that many pending orders — counted inside this transaction, after taking
    the customer's row lock on PostgreSQL, so two taps at once cannot both pass the cap.
    """
    return await _order_transaction(db, customer_id, lines, currency, expires_at, max_open, promo)


async def place_order(
    db: Database,
    buyer: Buyer,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    *,
    max_open: int | None = None,
    promo: str | None = None,
) -> Order | None:
    """`create_order` for a Telegram user, whose customer row is created or refreshed in
    the same transaction (the checkout's one write before the invoice). The upsert takes
    the row lock on PostgreSQL that the `max_open` count needs. Nothing is written when the
    order is refused — the buyer's row included.

    With `promo`, the code's use is taken in the same transaction (storage/promos.py): the
    order's total is the discounted one, and PromoRefused (nothing written) says why a code
    does not apply."""
    return await _order_transaction(db, buyer, lines, currency, expires_at, max_open, promo)


async def _order_transaction(
    db: Database,
    who: int | Buyer,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    max_open: int | None,
    promo: str | None = None,
) -> Order | None:
    specs = [LineSpec(pid, int(qty), to_money(price)) for pid, qty, price in lines]
    if not specs:
        raise ValueError("an order needs at least one line")
    if any(spec.quantity <= 0 for spec in specs):
        raise ValueError("line quantities must be positive")
    try:
        async with db.transaction() as s:
            if isinstance(who, Buyer):
                customer_id = await upsert_customer_in(s, who)  # PG: row locked from here
            else:
                customer_id = who
                if max_open is not None or promo is not None:
                    await _lock_customer(s, customer_id)
            if max_open is not None:
                await _check_open_orders(s, customer_id, max_open)
            taken = None
            if promo is not None:
                taken = await take_promo_in(s, promo, customer_id, specs, currency)
            order = await _create(s, customer_id, specs, currency, expires_at)
            if taken is not None:
                assert order.id is not None
                order = await apply_promo_in(s, taken, customer_id, order.id)
            return order
    except _NotReservable:
        return None


_orders = table_of(Order)
_lines = table_of(OrderLine)
_units = table_of(StockUnit)
_products = table_of(Product)
_customers = table_of(Customer)

_LOCK_CUSTOMER = (
    sa.select(_customers.c.id).where(_customers.c.id == sa.bindparam("p_customer_id"))
).with_for_update()
_COUNT_OPEN = sa.select(sa.func.count()).where(
    _orders.c.customer_id == sa.bindparam("p_customer_id"),
    _orders.c.status == OrderStatus.PENDING,
)
_PRODUCTS = sa.select(_products.c.id, _products.c.active, _products.c.unlimited).where(
    _products.c.id.in_(sa.bindparam("p_product_ids", expanding=True))
)
_INSERT_ORDER = (
    sa.insert(_orders)
    .values(
        {
            c: sa.bindparam(f"p_{c}", type_=_orders.c[c].type)
            for c in ("customer_id", "total", "currency", "status", "expires_at")
        }
        | {
            "created_at": sa.bindparam("p_now", type_=_orders.c.created_at.type),
            "updated_at": sa.bindparam("p_now", type_=_orders.c.updated_at.type),
        }
    )
    .returning(*_orders.c)
)
_INSERT_LINE = sa.insert(_lines)


def _reserve_stmt(dialect: str) -> Any:
    """Reserve up to `p_n` available units of `p_product_id` for `p_order_id` in one
    statement, returning their ids. PostgreSQL picks them in a CTE with FOR UPDATE SKIP
    LOCKED (evaluated once: concurrent buyers take different units and never more than
    `p_n`); SQLite's IMMEDIATE transaction already serialises writers, so `id IN (… LIMIT
    n)` is exact there."""
    picked = (
        sa.select(_units.c.id)
        .where(
            _units.c.product_id == sa.bindparam("p_product_id"),
            _units.c.status == StockStatus.AVAILABLE,
        )
        .order_by(_units.c.id)
        .limit(sa.bindparam("p_n"))
    )
    values = {
        "status": StockStatus.RESERVED,
        "order_id": sa.bindparam("p_order_id"),
        "reserved_until": sa.bindparam("p_until", type_=_units.c.reserved_until.type),
    }
    if dialect == "postgresql":
        cte = picked.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        return (
            sa.update(_units)
            .where(_units.c.id == cte.c.id, _units.c.status == StockStatus.AVAILABLE)
            .values(values)
            .returning(_units.c.id)
        )
    return (
        sa.update(_units)
        .where(_units.c.id.in_(picked.scalar_subquery()))
        .values(values)
        .returning(_units.c.id)
    )


_RESERVE = {name: _reserve_stmt(name) for name in ("postgresql", "sqlite")}


async def _lock_customer(s: AsyncSession, customer_id: int) -> None:
    """One checkout per customer at a time (PG; SQLite's writers are serialised anyway)."""
    if dialect_of(s) == "postgresql":
        await s.execute(_LOCK_CUSTOMER, {"p_customer_id": customer_id})


async def _check_open_orders(s: AsyncSession, customer_id: int, max_open: int) -> None:
    open_orders = int(await s.scalar(_COUNT_OPEN, {"p_customer_id": customer_id}) or 0)
    if open_orders >= max_open:
        raise TooManyOpenOrders(open_orders)


async def _create(
    s: AsyncSession,
    customer_id: int,
    specs: list[LineSpec],
    currency: str,
    expires_at: datetime,
) -> Order:
    products = {
        row.id: row
        for row in await s.execute(
            _PRODUCTS, {"p_product_ids": [spec.product_id for spec in specs]}
        )
    }
    if any(
        spec.product_id not in products or not products[spec.product_id].active for spec in specs
    ):
        raise _NotReservable
    row = (
        await s.execute(
            _INSERT_ORDER,
            {
                "p_customer_id": customer_id,
                "p_total": sum((spec.unit_price * spec.quantity for spec in specs), Decimal(0)),
                "p_currency": currency,
                "p_status": OrderStatus.PENDING,
                "p_expires_at": expires_at,
                "p_now": utcnow(),
            },
        )
    ).one()
    order = snapshot(Order, row._mapping)
    assert order.id is not None
    await s.execute(_INSERT_LINE, [{"order_id": order.id, **spec._asdict()} for spec in specs])
    reserve = _RESERVE[dialect_of(s)]
    for spec in specs:
        if products[spec.product_id].unlimited:
            continue
        res = await s.execute(
            reserve,
            {
                "p_product_id": spec.product_id,
                "p_n": spec.quantity,
                "p_order_id": order.id,
                "p_until": expires_at,
            },
        )
        if len(res.all()) != spec.quantity:  # never fewer than asked (nor more)
            raise _NotReservable
    return order


async def pick_available(s: AsyncSession, product_id: int, n: int) -> list[int]:
    """Ids of up to `n` available units, locked for this transaction (PG: SKIP LOCKED, so
    concurrent buyers take different units instead of queueing on the same ones)."""
    stmt = (
        sa.select(col(StockUnit.id))
        .where(
            col(StockUnit.product_id) == product_id, col(StockUnit.status) == StockStatus.AVAILABLE
        )
        .order_by(col(StockUnit.id))
        .limit(n)
    )
    ids = (await s.scalars(locked(s, stmt, skip_locked=True))).all()
    return [int(i) for i in ids if i is not None]


_ATTACH_INVOICE = (
    sa.update(_orders)
    .where(
        _orders.c.id == sa.bindparam("p_order_id"),
        _orders.c.status == OrderStatus.PENDING,
        sa.or_(
            _orders.c.invoice_id.is_(None), _orders.c.invoice_id == sa.bindparam("p_invoice_id")
        ),
    )
    .values(
        {
            c: sa.bindparam(f"p_{c}", type_=_orders.c[c].type)
            for c in (
                "invoice_id",
                "invoice_hash",
                "bot_invoice_url",
                "mini_app_url",
                "web_app_url",
                "updated_at",
            )
        }
    )
    .returning(_orders.c.id)
)


async def attach_invoice(
    db: Database,
    order_id: int,
    invoice_id: int,
    invoice_hash: str,
    bot_invoice_url: str,
    mini_app_url: str | None = None,
    web_app_url: str | None = None,
) -> bool:
    """Record the Crypto Pay invoice of a pending order. False when the order is no longer
    pending or already has another invoice (the caller should then delete the invoice)."""
    async with db.transaction() as s:
        res = await s.execute(
            _ATTACH_INVOICE,
            {
                "p_order_id": order_id,
                "p_invoice_id": invoice_id,
                "p_invoice_hash": invoice_hash,
                "p_bot_invoice_url": bot_invoice_url,
                "p_mini_app_url": mini_app_url,
                "p_web_app_url": web_app_url,
                "p_updated_at": utcnow(),
            },
        )
        return res.first() is not None


async def release_order(db: Database, order_id: int, to_status: OrderStatus) -> bool:
    """pending → expired | cancelled, returning the order's still-reserved units to stock.
    False (and nothing changed) when the order was no longer pending."""
    if to_status not in RELEASED:
        raise IllegalTransition(f"release_order: {to_status} is not expired or cancelled")
    async with db.transaction() as s:
        released = await transition(s, order_id, to_status, from_=OPEN)
        if released is None:
            return False
        await unreserve(s, order_id)
        await give_back_in(s, order_id)
        await add_in(
            s,
            order_message_edit(
                order_id, released.message_chat_id, released.message_id, str(to_status)
            ),
        )
        return True


async def record_order_message(
    db: Database, order_id: int, chat_id: int, message_id: int
) -> OrderStatus | None:
    """Remember the order message (Buy's answer) so that settling or releasing the order
    edits it; returns the order's status as this was recorded. A status no longer open
    means the order was settled or released before: nothing was queued to edit the
    message, so the caller shows the order's state itself."""
    async with db.transaction() as s:
        status = await s.scalar(
            sa.update(Order)
            .where(col(Order.id) == order_id)
            .values(message_chat_id=chat_id, message_id=message_id)
            .returning(col(Order.status))
        )
    return None if status is None else OrderStatus(status)


async def unreserve(s: AsyncSession, order_id: int) -> int:
    """Units still reserved by this order go back to available; returns how many."""
    res = await s.execute(
        sa.update(StockUnit)
        .where(col(StockUnit.order_id) == order_id, col(StockUnit.status) == StockStatus.RESERVED)
        .values(status=StockStatus.AVAILABLE, order_id=None, reserved_until=None)
        .returning(col(StockUnit.id))
    )
    return len(res.all())


async def sold_codes(s: AsyncSession, order_id: int) -> dict[int, list[str]]:
    rows = await s.execute(
        sa.select(col(StockUnit.product_id), col(StockUnit.code))
        .where(col(StockUnit.order_id) == order_id, col(StockUnit.status) == StockStatus.SOLD)
        .order_by(col(StockUnit.id))
    )
    codes: dict[int, list[str]] = {}
    for pid, code in rows.all():
        codes.setdefault(pid, []).append(code)
    return codes


async def load_details(s: AsyncSession, order: Order) -> OrderDetails:
    lines = list(
        (
            await s.scalars(
                sa.select(OrderLine)
                .where(col(OrderLine.order_id) == order.id)
                .order_by(col(OrderLine.id))
            )
        ).all()
    )
    products = {
        p.id: p
        for p in (
            await s.scalars(
                sa.select(Product).where(col(Product.id).in_([ln.product_id for ln in lines]))
            )
        ).all()
        if p.id is not None
    }
    customer = await s.get(Customer, order.customer_id)
    assert customer is not None and order.id is not None
    return OrderDetails(order, lines, products, customer, await sold_codes(s, order.id))


async def get_order(db: Database, order_id: int) -> OrderDetails | None:
    """The order with its lines, products, buyer and delivered codes."""
    async with db.session() as s:
        order = await s.get(Order, order_id)
        return None if order is None else await load_details(s, order)
