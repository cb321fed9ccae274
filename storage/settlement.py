"""Settlement: a confirmed payment becomes a paid order with its goods, in one transaction.

The rule, for one payment (`settle_in`): find the order the payment is for and lock it,
record the payment event, verify the payment against the order, transition the order,
sell its stock, enqueue the notifications (facts: kind, order, recipient — the text is
composed when the message is sent). The webhook, the jobs and /recheck all come here;
whichever comes first settles, the others get `duplicate` and change nothing.

`settle_many` is the group commit: many payments in one transaction, the common case
(pending orders paid as invoiced) set-based (storage.settle_batch), the rest by the rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage._sql import chunks, dialect_of, snapshot, table_of
from storage.database import DATABASE_ERRORS, Database
from storage.enums import OrderStatus, SettleOutcome
from storage.models import Customer, Order
from storage.order_states import SETTLEABLE, transition_stmt
from storage.orders import sold_codes, unreserve
from storage.outbox import add_in
from storage.referrals import reward_first_orders_in
from storage.settle_batch import settle_clean
from storage.settle_common import (
    LATE_NO_STOCK_REASON,
    PAID_VALUES,
    SettlePayment,
    SettleResult,
    Verify,
    notices,
    paid_params,
    record_event,
    sell,
    units_to_sell,
)

log = logging.getLogger(__name__)

# At most this many payments share a transaction: it holds SQLite's write lock (and these
# order rows on PostgreSQL) this many settlements long.
SETTLE_BATCH = 64
PING_TIMEOUT_S = 5.0

_orders = table_of(Order)
_other = _orders.alias("other_order")
_BY_INVOICE = _orders.c.invoice_id == sa.bindparam("p_invoice_id")
# The payload's order carrying this invoice, or carrying none while no other order does.
_BY_INVOICE_AND_PAYLOAD = sa.and_(
    _orders.c.id == sa.bindparam("p_order_id"),
    sa.or_(
        _BY_INVOICE,
        sa.and_(
            _orders.c.invoice_id.is_(None),
            ~sa.exists().where(_other.c.invoice_id == sa.bindparam("p_invoice_id")),
        ),
    ),
)
_customers = table_of(Customer)
_FIND = {
    payload_named: sa.select(*_orders.c, _customers.c.telegram_id.label("buyer_chat"))
    .join(_customers, _customers.c.id == _orders.c.customer_id)
    .where(_BY_INVOICE_AND_PAYLOAD if payload_named else _BY_INVOICE)
    for payload_named in (False, True)
}
# (dialect, payload names an order) -> the statement; SQLite's IMMEDIATE transaction
# already holds the write lock.
_FIND_AND_LOCK = {
    ("postgresql", named): stmt.with_for_update(of=_orders) for named, stmt in _FIND.items()
} | {("sqlite", named): stmt for named, stmt in _FIND.items()}
_NO_OTHER_INVOICE = sa.or_(
    _orders.c.invoice_id.is_(None), _orders.c.invoice_id == sa.bindparam("p_invoice_id")
)
# The settling transitions: order_states' conditional updates, writing the payment's fields.
_SETTLE_TO = {
    to: transition_stmt(to, where=_NO_OTHER_INVOICE).values(**PAID_VALUES)
    for to in (OrderStatus.PAID, OrderStatus.NEEDS_REFUND, OrderStatus.NEEDS_REVIEW)
}
SHORT_OF_STOCK_REASON = "paid, but its reserved units are gone and stock cannot replace them"


async def settle_many(
    db: Database,
    payments: Sequence[SettlePayment],
    verify: Verify | None = None,
    *,
    admins: Collection[int] = (),
    referral_percent: Decimal = Decimal(0),
) -> list[SettleResult | Exception]:
    """Settle these confirmed payments; one outcome per payment, in order: its result, or
    the exception it failed with (nothing written for it).

    Up to SETTLE_BATCH share one transaction. A payment that fails (verify raising, a
    naive time) makes its batch redo each payment alone, in its own transaction, so only
    it fails — unless the database itself failed, which every payment of the batch hears
    at once. `verify(payment, order)` says why a payment does not match its order; such
    a payment moves the order to needs_review instead. `admins` are the chats told of
    every paid order and every order that needs a human. A paid order that is a referred
    buyer's first is counted for their referrer, who gets a `referral_percent` code for it
    (storage.referrals; 0: counted only), in the same transaction.

    Outcomes: `settled` (pending → paid, reserved units sold), `late_settled` (expired or
    cancelled → paid, fresh units sold), `needs_refund` (late and sold out), `needs_review`
    (verify said no; reserved units returned), `duplicate` (this invoice settled already:
    nothing changes, verify is not asked), `unknown_order` (no order of ours; the event
    is still recorded).
    """
    outcomes: list[SettleResult | Exception] = []
    for batch in chunks(payments, SETTLE_BATCH):
        outcomes.extend(await _settle_batch(db, batch, verify, admins, referral_percent))
    return outcomes


async def settle(
    db: Database,
    payment: SettlePayment,
    verify: Verify | None = None,
    *,
    admins: Collection[int] = (),
    referral_percent: Decimal = Decimal(0),
) -> SettleResult:
    """`settle_many` of one payment; raises what it failed with."""
    (outcome,) = await settle_many(
        db, [payment], verify, admins=admins, referral_percent=referral_percent
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _settle_batch(
    db: Database,
    payments: Sequence[SettlePayment],
    verify: Verify | None,
    admins: Collection[int],
    percent: Decimal,
) -> list[SettleResult | Exception]:
    try:
        async with db.transaction() as s:
            return list(await _settle_together(s, payments, verify, admins, percent))
    except Exception as error:
        if await _database_failed(db, error):
            return [error] * len(payments)
        if len(payments) > 1:
            log.info(
                "settling %d payments together failed (%s); settling each alone",
                len(payments),
                type(error).__name__,
            )
    outcomes: list[SettleResult | Exception] = []
    for payment in payments:
        try:
            async with db.transaction() as s:
                outcomes.append(await settle_in(s, payment, verify, admins, percent))
        except Exception as error:
            outcomes.append(error)
    return outcomes


async def _settle_together(
    s: AsyncSession,
    payments: Sequence[SettlePayment],
    verify: Verify | None,
    admins: Collection[int],
    percent: Decimal,
) -> list[SettleResult]:
    """The clean payments set-based, their rejected ones to review, then every other one by
    the rule (which sees what the first steps wrote: a second payment of an invoice just
    settled is a duplicate)."""
    done = await settle_clean(s, payments, verify, admins, percent)
    for index, (order, buyer_chat, reason) in done.rejected.items():
        done.results[index] = await _review(s, order, buyer_chat, payments[index], reason, admins)
    return [
        done.results[index]
        if index in done.results
        else await settle_in(s, p, verify, admins, percent)
        for index, p in enumerate(payments)
    ]


async def settle_in(
    s: AsyncSession,
    payment: SettlePayment,
    verify: Verify | None,
    admins: Collection[int],
    referral_percent: Decimal = Decimal(0),
) -> SettleResult:
    """The settle rule, for one payment, in the caller's transaction."""
    found = await _find_and_lock(s, payment)
    await record_event(s, payment, found[0].id if found else None)
    if found is None:
        return SettleResult(SettleOutcome.UNKNOWN_ORDER, None)
    order, buyer_chat = found
    assert order.id is not None
    if order.status not in SETTLEABLE:
        return SettleResult(SettleOutcome.DUPLICATE, order, await sold_codes(s, order.id))
    reason = verify(payment, order) if verify is not None else None
    if reason is not None:
        return await _review(s, order, buyer_chat, payment, reason, admins)
    late = order.status != OrderStatus.PENDING
    units = await units_to_sell(s, order.id)
    if units is None and not late:  # its reservation vanished (a manual fix): a human decides
        return await _review(s, order, buyer_chat, payment, SHORT_OF_STOCK_REASON, admins)
    if units is not None:
        outcome = SettleOutcome.LATE_SETTLED if late else SettleOutcome.SETTLED
        updated = await _transition(s, order.id, payment, OrderStatus.PAID)
    else:  # paid late, and sold out meanwhile: an admin refunds it
        outcome = SettleOutcome.NEEDS_REFUND
        updated = await _transition(
            s, order.id, payment, OrderStatus.NEEDS_REFUND, LATE_NO_STOCK_REASON
        )
    if updated is None:
        raise RuntimeError(f"order {order.id} changed while locked")  # the lock rules it out
    await unreserve(s, order.id)
    if units:
        await sell(s, order.id, units)
    message = (order.message_chat_id, order.message_id)
    await add_in(s, notices(order.id, buyer_chat, outcome, admins, message))
    if units is not None:
        paid = [(order.id, order.customer_id, order.currency)]
        await reward_first_orders_in(s, paid, referral_percent)
    return SettleResult(outcome, updated, await sold_codes(s, order.id) if units else {})


async def _find_and_lock(s: AsyncSession, payment: SettlePayment) -> tuple[Order, int] | None:
    """The order this payment is for, locked (PG) and current, and its buyer's chat: the
    order carrying the invoice (which must be the payload's, when it names one), or else
    the payload's order while no order carries the invoice."""
    stmt = _FIND_AND_LOCK[dialect_of(s), payment.order_id is not None]
    params = {"p_invoice_id": payment.invoice_id, "p_order_id": payment.order_id}
    row = (await s.execute(stmt, params)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    buyer_chat = values.pop("buyer_chat")
    return snapshot(Order, values), buyer_chat


async def _transition(
    s: AsyncSession,
    order_id: int,
    payment: SettlePayment,
    to: OrderStatus,
    reason: str | None = None,
) -> Order | None:
    """The order → `to` with the payment's fields, if the state table allows it from where
    the order is; the updated order, or None."""
    params = paid_params(payment, to, reason) | {"p_order_id": order_id}
    row = (await s.execute(_SETTLE_TO[to], params)).first()
    return None if row is None else snapshot(Order, row._mapping)


async def _review(
    s: AsyncSession,
    order: Order,
    buyer_chat: int,
    payment: SettlePayment,
    reason: str,
    admins: Collection[int],
) -> SettleResult:
    """The payment does not match `order` (locked, its event recorded): → needs_review with
    the paid fields, its reserved units back to stock, the buyer and the admins told."""
    assert order.id is not None
    updated = await _transition(s, order.id, payment, OrderStatus.NEEDS_REVIEW, reason)
    if updated is None:
        return SettleResult(SettleOutcome.DUPLICATE, order, await sold_codes(s, order.id))
    await unreserve(s, order.id)
    message = (order.message_chat_id, order.message_id)
    await add_in(s, notices(order.id, buyer_chat, SettleOutcome.NEEDS_REVIEW, admins, message))
    return SettleResult(SettleOutcome.NEEDS_REVIEW, updated, {})


async def _database_failed(db: Database, error: Exception) -> bool:
    """Whether a batch failed because of the database itself (gone, locked, timed out)
    rather than one of its payments — then it fails all its payments at once: redoing each
    alone would only wait for the database once per payment. SQLite's own errors (locked
    past the busy timeout, disk I/O) are such; a database or I/O error otherwise is when
    the database does not answer a ping (asyncpg reports a server going away as a plain
    DBAPIError, a refused connection as an OSError — as a missing template file would)."""
    if isinstance(error, sa.exc.OperationalError):
        return True
    if not isinstance(error, DATABASE_ERRORS):
        return False  # a payment's own error (verify raising, stock changed): no need to ask
    try:
        return not await asyncio.wait_for(db.ping(), PING_TIMEOUT_S)
    except TimeoutError:
        return True
