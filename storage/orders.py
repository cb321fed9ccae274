"""Orders: checkout reservation, invoice attachment, listings and release."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import locked, snapshot, table_of
from storage.customers import Buyer, upsert_customer_on, upsert_customer_promo_on
from storage.database import Database
from storage.enums import OrderStatus, StockStatus
from storage.models import CartItem, Customer, Order, OrderLine, Product, StockUnit
from storage.order_states import OPEN, RELEASED, IllegalTransition, transition
from storage.outbox import add_in, order_message_edit
from storage.promos import PromoRefused, TakenPromo, give_back_in, record_use_on, take_promo_on
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
    specs = [LineSpec(pid, int(qty), to_money(price)) for pid, qty, price in lines]
    if not specs:
        raise ValueError("an order needs at least one line")
    if any(spec.quantity <= 0 for spec in specs):
        raise ValueError("line quantities must be positive")
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
) -> Order:
    """The order's transaction (a body of Database.run_transaction): Core statements built
    once, on one connection. Every refusal raises, so the transaction writes nothing."""
    if isinstance(who, Buyer) and saved_promo:
        customer_id, promo = upsert_customer_promo_on(conn, who)  # PG: row locked
    elif isinstance(who, Buyer):
        customer_id = upsert_customer_on(conn, who)  # PG: row locked from here
    else:
        customer_id = who
        if (caps or promo is not None) and conn.dialect.name == "postgresql":
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


# Checked after the batch's updates: an order is attached when, inside that transaction, it
# is pending and carries the invoice (attached now, or before with this same invoice).
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
)
_RECORD_MESSAGE = (
    sa.update(_orders)
    .where(_orders.c.id == sa.bindparam("p_order_id"))
    .values(
        message_chat_id=sa.bindparam("p_chat_id", type_=_orders.c.message_chat_id.type),
        message_id=sa.bindparam("p_message_id", type_=_orders.c.message_id.type),
    )
)
# The attached order's products leave its buyer's cart (attach_invoice(clear_cart=True)).
_cart = table_of(CartItem)
_CLEAR_CART = sa.delete(_cart).where(
    _cart.c.customer_id
    == sa.select(_orders.c.customer_id)
    .where(_orders.c.id == sa.bindparam("p_order_id"))
    .scalar_subquery(),
    _cart.c.product_id.in_(
        sa.select(_lines.c.product_id).where(_lines.c.order_id == sa.bindparam("p_order_id"))
    ),
)
# One call alone: the statement answers itself (no read-back).
_ATTACH_ONE = _ATTACH_INVOICE.returning(_orders.c.id)
_RECORD_ONE = _RECORD_MESSAGE.returning(_orders.c.status)
_STATES = sa.select(_orders.c.id, _orders.c.status, _orders.c.invoice_id).where(
    _orders.c.id.in_(sa.bindparam("p_order_ids", expanding=True))
)


class _Attach(NamedTuple):
    order_id: int
    invoice_id: int
    invoice_hash: str
    bot_invoice_url: str
    mini_app_url: str | None
    web_app_url: str | None
    clear_cart: bool = False


class _OrderMessage(NamedTuple):
    order_id: int
    chat_id: int
    message_id: int


async def attach_invoice(
    db: Database,
    order_id: int,
    invoice_id: int,
    invoice_hash: str,
    bot_invoice_url: str,
    mini_app_url: str | None = None,
    web_app_url: str | None = None,
    *,
    clear_cart: bool = False,
) -> bool:
    """Record the Crypto Pay invoice of a pending order. False when the order is no longer
    pending or already has another invoice (the caller should then delete the invoice).
    With `clear_cart`, the order's products leave the buyer's cart once it is attached, in
    the same transaction (a cart's Checkout: its own write transaction after the order was
    a turn of SQLite's one writer per tap, outside any batch).

    Group-committed (Database.coalesced): invoices recorded at the same time share one
    transaction."""
    item = _Attach(
        order_id,
        invoice_id,
        invoice_hash,
        bot_invoice_url,
        mini_app_url,
        web_app_url,
        clear_cart,
    )
    attached: bool = await db.coalesced("attach_invoice", _attach_many, item)
    return attached


async def _attach_many(db: Database, items: list[_Attach]) -> list[bool | Exception]:
    now = utcnow()
    params = [
        {f"p_{name}": value for name, value in item._asdict().items() if name != "clear_cart"}
        | {"p_updated_at": now}
        for item in items
    ]
    clearing = {item.order_id for item in items if item.clear_cart}

    def run(conn: sa.Connection, batch: list[dict[str, Any]]) -> list[bool | Exception]:
        if len(batch) == 1:
            attached = [conn.execute(_ATTACH_ONE, batch[0]).first() is not None]
        else:
            conn.execute(_ATTACH_INVOICE, batch)  # executemany, in the items' order
            states = _states(conn, [p["p_order_id"] for p in batch])
            attached = [
                (state := states.get(p["p_order_id"])) is not None
                and state[0] == OrderStatus.PENDING
                and state[1] == p["p_invoice_id"]
                for p in batch
            ]
        cleared = [
            {"p_order_id": p["p_order_id"]}
            for p, ok in zip(batch, attached, strict=True)
            if ok and p["p_order_id"] in clearing
        ]
        if cleared:
            conn.execute(_CLEAR_CART, cleared)
        return list(attached)

    return await _group_commit(db, params, run)


def _states(conn: sa.Connection, order_ids: list[int]) -> dict[int, tuple[OrderStatus, Any]]:
    rows = conn.execute(_STATES, {"p_order_ids": sorted(set(order_ids))})
    return {row.id: (OrderStatus(row.status), row.invoice_id) for row in rows}


R = TypeVar("R")


async def _group_commit(
    db: Database,
    params: list[dict[str, Any]],
    run: Callable[[sa.Connection, list[dict[str, Any]]], list[R | Exception]],
) -> list[R | Exception]:
    """`run` over every item's parameters in one transaction (Database.run_transaction), in
    order of order id (so two batches lock rows in the same order on PostgreSQL). When the
    statement fails as a whole (a constraint one item breaks, or PostgreSQL aborting it as
    a deadlock victim), each item gets a transaction of its own, so that only the failing
    item fails."""
    order = sorted(range(len(params)), key=lambda i: params[i]["p_order_id"])
    try:
        ranked = await db.run_transaction(run, [params[i] for i in order])
        outcomes: list[R | Exception] = [ranked[0]] * len(params)
        for rank, i in enumerate(order):
            outcomes[i] = ranked[rank]
        return outcomes
    except sa.exc.DBAPIError as error:
        if len(params) == 1 or error.connection_invalidated:
            raise
    outcomes = []
    for one in params:
        try:
            outcomes += await db.run_transaction(run, [one])
        except sa.exc.DBAPIError as error:
            outcomes.append(error)
    return outcomes


async def release_order(
    db: Database, order_id: int, to_status: OrderStatus, *, abandoned: bool = False
) -> bool:
    """pending → expired | cancelled, returning the order's still-reserved units to stock.
    False (and nothing changed) when the order was no longer pending. `abandoned`: the
    buyer gave it up (cancelled it, or let it expire unpaid) — counted by `max_abandoned`;
    not for orders the shop releases itself (Crypto Pay down, invoice not recorded)."""
    if to_status not in RELEASED:
        raise IllegalTransition(f"release_order: {to_status} is not expired or cancelled")
    marks = {"abandoned_at": utcnow()} if abandoned else {}
    async with db.transaction() as s:
        released = await transition(s, order_id, to_status, from_=OPEN, **marks)
        if released is None:
            return False
        await unreserve(s, order_id)
        if released.promo_code is not None:  # (set with the use, in one transaction)
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
    message, so the caller shows the order's state itself. Group-committed, as
    attach_invoice."""
    status: OrderStatus | None = await db.coalesced(
        "record_order_message", _record_many, _OrderMessage(order_id, chat_id, message_id)
    )
    return status


async def _record_many(
    db: Database, items: list[_OrderMessage]
) -> list[OrderStatus | Exception | None]:
    params = [{f"p_{name}": value for name, value in item._asdict().items()} for item in items]

    def run(
        conn: sa.Connection, batch: list[dict[str, Any]]
    ) -> list[OrderStatus | Exception | None]:
        if len(batch) == 1:
            status = conn.scalar(_RECORD_ONE, batch[0])
            return [None if status is None else OrderStatus(status)]
        conn.execute(_RECORD_MESSAGE, batch)
        states = _states(conn, [p["p_order_id"] for p in batch])
        return [None if (state := states.get(p["p_order_id"])) is None else state[0] for p in batch]

    return await _group_commit(db, params, run)


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
