"""Orders: invoice attachment and the order message (group-committed), release, details."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import locked, table_of
from storage.database import Database
from storage.enums import OrderStatus, StockStatus
from storage.models import CartItem, Customer, Order, OrderLine, Product, StockUnit
from storage.order_states import OPEN, RELEASED, IllegalTransition, transition
from storage.outbox import add_in, order_message_edit
from storage.promos import give_back_in
from storage.types import utcnow

_orders = table_of(Order)
_lines = table_of(OrderLine)


@dataclass(slots=True)
class OrderDetails:
    order: Order
    lines: list[OrderLine]
    products: dict[int, Product]
    customer: Customer
    codes: dict[int, list[str]] = field(default_factory=dict)  # sold codes per product id


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
