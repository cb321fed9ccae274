"""Placing an order: the checkout's one write transaction before the invoice — the buyer's
row, the per-customer caps, the promo code's use, the order and its lines, every line's
units reserved (all or nothing). Refusals raise and write nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa

from storage._sql import snapshot, table_of
from storage.cart import CartLine, cart_lines_on
from storage.customers import Buyer, upsert_customer_on, upsert_customer_promo_on
from storage.database import Database
from storage.enums import OrderStatus, StockStatus
from storage.models import Customer, Order, OrderLine, Product, StockUnit
from storage.promos import PromoRefused, TakenPromo, record_use_on, take_promo_on
from storage.types import to_money, utcnow


class LineSpec(NamedTuple):
    product_id: int
    quantity: int
    unit_price: Decimal


class StockShort(Exception):
    """place_order(report_short=True): one line could not be reserved in full, so nothing
    was written. `available`: the units that line could have had (0 when `gone`: the product
    is missing or no longer on sale)."""

    def __init__(self, product_id: int, available: int, gone: bool = False) -> None:
        super().__init__(f"product {product_id}: {available} available")
        self.product_id, self.available, self.gone = product_id, available, gone


class TooManyOpenOrders(Exception):
    """create_order(max_open=n): the customer already has n pending orders; nothing was
    written."""

    def __init__(self, open_orders: int) -> None:
        super().__init__(f"{open_orders} pending orders")
        self.open_orders = open_orders


class TooManyUnits(Exception):
    """create_order(max_units=n): the customer's pending orders would hold more than n units
    with this one (`held` of them already); nothing was written."""

    def __init__(self, held: int, limit: int) -> None:
        super().__init__(f"{held} units held in pending orders (at most {limit})")
        self.held = held
        self.limit = limit


class TooManyAbandoned(Exception):
    """create_order(max_abandoned=n): the customer abandoned n orders in the last hour;
    nothing was written. `until` is when the oldest of those leaves the hour."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"too many abandoned orders until {until.isoformat()}")
        self.until = until


class _Caps(NamedTuple):
    max_open: int | None = None
    max_units: int | None = None
    max_abandoned: int | None = None  # per ABANDON_WINDOW

    def __bool__(self) -> bool:
        return any(cap is not None for cap in self)


ABANDON_WINDOW = timedelta(hours=1)


async def create_order(
    db: Database,
    customer_id: int,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    *,
    max_open: int | None = None,
    max_units: int | None = None,
    max_abandoned: int | None = None,
    promo: str | None = None,
) -> Order | None:
    """Write a pending order and reserve `quantity` available units per line until
    `expires_at` — every line fully or nothing at all.

    Returns None, having written nothing, when a line cannot be reserved in full (not enough
    stock) or names a product that is missing or no longer on sale. Unlimited products need
    no units. With `max_open`, raises TooManyOpenOrders (nothing written) when the customer
    already has that many pending orders — counted inside this transaction, after taking
    the customer's row lock on PostgreSQL, so two taps at once cannot both pass the cap.
    Likewise `max_units` (TooManyUnits: the units of the customer's pending orders, this
    one's lines included, would exceed it) and `max_abandoned` (TooManyAbandoned: that many
    orders cancelled by the customer or expired unpaid within the last hour).
    """
    caps = _Caps(max_open, max_units, max_abandoned)
    return await _order_transaction(db, customer_id, lines, currency, expires_at, caps, promo=promo)


async def place_order(
    db: Database,
    buyer: Buyer,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    *,
    max_open: int | None = None,
    max_units: int | None = None,
    max_abandoned: int | None = None,
    report_short: bool = False,
    promo: str | None = None,
    saved_promo: bool = False,
) -> Order | None:
    """`create_order` for a Telegram user, whose customer row is created or refreshed in
    the same transaction (the checkout's one write before the invoice). The upsert takes
    the row lock on PostgreSQL that the caps' counts need. Nothing is written when the
    order is refused — the buyer's row included. With `report_short`, a line that cannot be
    reserved raises StockShort (naming it) instead of returning None.

    With `promo`, the code's use is taken in the same transaction (storage/promos.py): the
    order's total is the discounted one, and PromoRefused (nothing written) says why a code
    does not apply. With `saved_promo` instead, the code is the one the buyer saved (read
    by the customer upsert, so the checkout spends no read transaction on it: a tap's five
    transactions became four), and PromoRefused names it in `code`."""
    if saved_promo and promo is not None:
        raise ValueError("pass promo or saved_promo, not both")
    caps = _Caps(max_open, max_units, max_abandoned)
    return await _order_transaction(
        db, buyer, lines, currency, expires_at, caps, report_short, promo, saved_promo
    )


ProductCheck = Callable[[Product | None], None]


async def place_product_order(
    db: Database,
    buyer: Buyer,
    sku: str,
    quantity: int,
    expires_at: datetime,
    check: ProductCheck,
    *,
    max_open: int | None = None,
    max_units: int | None = None,
    max_abandoned: int | None = None,
    saved_promo: bool = False,
) -> tuple[Product, Order]:
    """Buy: `place_order` (with report_short) for `quantity` units of the product `sku` at
    its price, the product read in the order's own transaction (a tap spent a read
    transaction of its own on it: a fifth of the checkout's CPU once the order's
    transaction ran in one hop). `check(product)` — None when there is no such product —
    runs on the row as read, before anything is written: what it raises refuses the order
    and reaches the caller. It must not do I/O. Returns the product as read and the order."""
    caps = _Caps(max_open, max_units, max_abandoned)
    return await db.run_transaction(
        _place_product, buyer, sku, quantity, expires_at, check, caps, saved_promo
    )


def _place_product(
    conn: sa.Connection,
    buyer: Buyer,
    sku: str,
    quantity: int,
    expires_at: datetime,
    check: ProductCheck,
    caps: _Caps,
    saved_promo: bool,
) -> tuple[Product, Order]:
    row = conn.execute(_PRODUCT_BY_SKU, {"p_sku": sku}).first()
    product = None if row is None else snapshot(Product, row._mapping)
    check(product)
    if product is None or product.id is None:
        raise StockShort(0, 0, gone=True)
    if quantity <= 0:
        raise ValueError("line quantities must be positive")
    spec = LineSpec(product.id, quantity, to_money(product.price))
    known = {product.id: product}
    order = _place(
        conn, buyer, [spec], product.currency, expires_at, caps, None, saved_promo, known
    )
    return product, order


CartCheck = Callable[[list[CartLine], str | None], Sequence[tuple[int, int, Decimal]]]


async def place_cart_order(
    db: Database,
    buyer: Buyer,
    currency: Callable[[list[CartLine]], str],
    expires_at: datetime,
    check: CartCheck,
    *,
    max_open: int | None = None,
    max_units: int | None = None,
    max_abandoned: int | None = None,
) -> tuple[list[CartLine], Order]:
    """The cart's Checkout: `place_order` (with report_short) for the buyer's cart, its lines
    read in the order's own transaction (a checkout spent three read transactions on the
    customer, the lines and the saved code). `check(lines, saved_code)` runs on the cart as
    read (and the buyer's saved promo code, None when none), before anything is written:
    it returns the order's lines (product id, quantity, unit price) or raises, which
    refuses the order and reaches the caller. It must not do I/O. The order is placed
    without a promo code: a caller that wants the saved one applied refuses here and
    places it with place_order(saved_promo=True). Returns the lines as read and the
    order."""
    caps = _Caps(max_open, max_units, max_abandoned)
    return await db.run_transaction(_place_cart, buyer, currency, expires_at, check, caps)


def _place_cart(
    conn: sa.Connection,
    buyer: Buyer,
    currency: Callable[[list[CartLine]], str],
    expires_at: datetime,
    check: CartCheck,
    caps: _Caps,
) -> tuple[list[CartLine], Order]:
    customer_id, code = upsert_customer_promo_on(conn, buyer)  # PG: row locked
    lines = cart_lines_on(conn, customer_id)
    specs = _specs(check(lines, code))
    order = _place(
        conn, customer_id, specs, currency(lines), expires_at, caps, None, False, upserted=True
    )
    return lines, order


def _specs(lines: Sequence[tuple[int, int, Decimal]]) -> list[LineSpec]:
    specs = [LineSpec(pid, int(qty), to_money(price)) for pid, qty, price in lines]
    if not specs:
        raise ValueError("an order needs at least one line")
    if any(spec.quantity <= 0 for spec in specs):
        raise ValueError("line quantities must be positive")
    return specs


async def _order_transaction(
    db: Database,
    who: int | Buyer,
    lines: Sequence[tuple[int, int, Decimal]],
    currency: str,
    expires_at: datetime,
    caps: _Caps,
    report_short: bool = False,
    promo: str | None = None,
    saved_promo: bool = False,
) -> Order | None:
    specs = _specs(lines)
    try:
        return await db.run_transaction(
            _place, who, specs, currency, expires_at, caps, promo, saved_promo
        )
    except StockShort:  # (raised inside the transaction: it rolled back)
        if report_short:
            raise
        return None


def _place(
    conn: sa.Connection,
    who: int | Buyer,
    specs: list[LineSpec],
    currency: str,
    expires_at: datetime,
    caps: _Caps,
    promo: str | None,
    saved_promo: bool,
    known: Mapping[int, Product] | None = None,
    upserted: bool = False,
) -> Order:
    """The order's transaction (a body of Database.run_transaction): Core statements built
    once, on one connection. Every refusal raises, so the transaction writes nothing.
    `upserted`: `who` is the id of the customer this transaction upserted (and so locked
    on PostgreSQL) already."""
    if isinstance(who, Buyer) and saved_promo:
        customer_id, promo = upsert_customer_promo_on(conn, who)  # PG: row locked
    elif isinstance(who, Buyer):
        customer_id = upsert_customer_on(conn, who)  # PG: row locked from here
    else:
        customer_id = who
        if (caps or promo is not None) and not upserted and conn.dialect.name == "postgresql":
            # One checkout per customer at a time (SQLite's writers are serialised anyway).
            conn.execute(_LOCK_CUSTOMER, {"p_customer_id": customer_id})
    if caps:
        _check_caps(conn, customer_id, specs, caps)
    taken = None
    if promo is not None:
        try:
            taken = take_promo_on(conn, promo, customer_id, specs, currency)
        except PromoRefused as refused:
            refused.code = promo
            raise
    order = _create(conn, customer_id, specs, currency, expires_at, taken, known)
    if taken is not None:
        assert order.id is not None
        record_use_on(conn, taken, customer_id, order.id)
    return order


_orders = table_of(Order)
_lines = table_of(OrderLine)
_units = table_of(StockUnit)
_products = table_of(Product)
_customers = table_of(Customer)

_LOCK_CUSTOMER = (
    sa.select(_customers.c.id).where(_customers.c.id == sa.bindparam("p_customer_id"))
).with_for_update()
# Every order has at least one line, so the join counts each pending order once.
_OPEN_AND_HELD = (
    sa.select(
        sa.func.count(sa.distinct(_orders.c.id)),
        sa.func.coalesce(sa.func.sum(_lines.c.quantity), 0),
    )
    .select_from(_orders.join(_lines, _lines.c.order_id == _orders.c.id))
    .where(
        _orders.c.customer_id == sa.bindparam("p_customer_id"),
        _orders.c.status == OrderStatus.PENDING,
    )
)
# The n-th most recent abandonment within the window (ix_orders_customer_abandoned): while
# there is one, the customer has abandoned n orders this hour.
_NTH_ABANDONED = (
    sa.select(_orders.c.abandoned_at)
    .where(
        _orders.c.customer_id == sa.bindparam("p_customer_id"),
        _orders.c.abandoned_at > sa.bindparam("p_since", type_=_orders.c.abandoned_at.type),
    )
    .order_by(_orders.c.abandoned_at.desc())
    .limit(1)
    .offset(sa.bindparam("p_skip"))
)
# The caps' three figures in one statement: pending orders, their units, the n-th abandonment.
_CAPS = _OPEN_AND_HELD.add_columns(_NTH_ABANDONED.scalar_subquery())
_PRODUCTS = sa.select(_products.c.id, _products.c.active, _products.c.unlimited).where(
    _products.c.id.in_(sa.bindparam("p_product_ids", expanding=True))
)
_PRODUCT_BY_SKU = sa.select(_products).where(_products.c.sku == sa.bindparam("p_sku"))
_INSERT_ORDER = (
    sa.insert(_orders)
    .values(
        {
            c: sa.bindparam(f"p_{c}", type_=_orders.c[c].type)
            for c in (
                "customer_id",
                "total",
                "discount",
                "promo_code",
                "currency",
                "status",
                "expires_at",
            )
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


def _check_caps(
    conn: sa.Connection, customer_id: int, specs: Sequence[LineSpec], caps: _Caps
) -> None:
    """The per-customer caps, counted in the order's transaction (under the customer's lock
    on PG). `specs` may be several lines: their units count together. One statement for
    all three."""
    now = utcnow()
    row = conn.execute(
        _CAPS,
        {
            "p_customer_id": customer_id,
            "p_since": now - ABANDON_WINDOW,
            "p_skip": max((caps.max_abandoned or 1) - 1, 0),
        },
    ).one()
    open_orders, held, nth = int(row[0]), int(row[1]), row[2]
    if caps.max_open is not None and open_orders >= caps.max_open:
        raise TooManyOpenOrders(open_orders)
    if caps.max_units is not None and held + sum(sp.quantity for sp in specs) > caps.max_units:
        raise TooManyUnits(held, caps.max_units)
    if caps.max_abandoned is not None and nth is not None:
        raise TooManyAbandoned(nth + ABANDON_WINDOW)


def _create(
    conn: sa.Connection,
    customer_id: int,
    specs: list[LineSpec],
    currency: str,
    expires_at: datetime,
    taken: TakenPromo | None,
    known: Mapping[int, Product] | None = None,
) -> Order:
    """The order and its lines, written with the code's quote when there is one (no
    insert-then-update), and every line's units reserved — all of them or StockShort.
    `known`: the lines' products as this transaction read them already."""
    products: Mapping[int, Any] = known or {
        row.id: row
        for row in conn.execute(_PRODUCTS, {"p_product_ids": [spec.product_id for spec in specs]})
    }
    for spec in specs:
        if spec.product_id not in products or not products[spec.product_id].active:
            raise StockShort(spec.product_id, 0, gone=True)
    if taken is None:
        total = sum((spec.unit_price * spec.quantity for spec in specs), Decimal(0))
        discount, code = Decimal(0), None
        line_discounts: Sequence[Decimal] = [Decimal(0)] * len(specs)
    else:
        quote = taken.quote
        total, discount, code = quote.total, quote.discount, taken.code
        line_discounts = quote.line_discounts
    row = conn.execute(
        _INSERT_ORDER,
        {
            "p_customer_id": customer_id,
            "p_total": total,
            "p_discount": discount,
            "p_promo_code": code,
            "p_currency": currency,
            "p_status": OrderStatus.PENDING,
            "p_expires_at": expires_at,
            "p_now": utcnow(),
        },
    ).one()
    order = snapshot(Order, row._mapping)
    assert order.id is not None
    conn.execute(
        _INSERT_LINE,
        [
            {"order_id": order.id, **spec._asdict(), "discount": line_discount}
            for spec, line_discount in zip(specs, line_discounts, strict=True)
        ],
    )
    reserve = _RESERVE[conn.dialect.name]
    for spec in specs:
        if products[spec.product_id].unlimited:
            continue
        reserved = len(
            conn.execute(
                reserve,
                {
                    "p_product_id": spec.product_id,
                    "p_n": spec.quantity,
                    "p_order_id": order.id,
                    "p_until": expires_at,
                },
            ).all()
        )
        if reserved != spec.quantity:  # never fewer than asked (nor more)
            raise StockShort(spec.product_id, reserved)
    return order
