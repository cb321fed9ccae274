"""The order state table (storage/order_states.py), on a real SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import product
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

import storage
from storage import OrderStatus as S
from storage.models import Order
from storage.order_states import (
    ATTENTION_STATES,
    OPEN,
    PAID_STATES,
    REFUNDABLE,
    RELEASED,
    SALE_STATES,
    SETTLEABLE,
    STATES,
    TRANSITIONS,
    WITH_GOODS,
    IllegalTransition,
    can,
    sources,
    transition,
    transition_stmt,
)
from tests.storage.conftest import order_for, seed

ALLOWED = sorted((src, to) for to, froms in TRANSITIONS.items() for src in froms)
FORBIDDEN = sorted((src, to) for src, to in product(S, S) if src not in TRANSITIONS.get(to, ()))


async def _orders_in(db: storage.Database, *states: S) -> list[int]:
    """One fresh order per state, put there directly (test setup, not a transition)."""
    prod = await seed(db, codes=len(states))
    ids = []
    for i, state in enumerate(states):
        order = await order_for(db, prod, telegram_id=5000 + i)
        assert order.id is not None
        async with db.transaction() as s:
            await s.execute(sa.update(Order).where(col(Order.id) == order.id).values(status=state))
        ids.append(order.id)
    return ids


async def _status(db: storage.Database, order_id: int) -> S:
    async with db.session() as s:
        status = await s.scalar(sa.select(col(Order.status)).where(col(Order.id) == order_id))
    assert status is not None
    return S(status)


# --- the table itself (no database) -----------------------------------------------------------


def test_the_decided_edges() -> None:
    # A refund may end an order a human must look at (everything paid back at once) ...
    assert can(S.NEEDS_REVIEW, S.REFUNDED) and can(S.NEEDS_REFUND, S.REFUNDED)
    # ... but a partial one leaves it there: it was never a sale.
    assert not can(S.NEEDS_REVIEW, S.PARTIALLY_REFUNDED)
    assert not can(S.NEEDS_REFUND, S.PARTIALLY_REFUNDED)
    assert can(S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED)
    assert can(S.PARTIALLY_REFUNDED, S.REFUNDED)
    # Money received: never cancelled nor expired.
    for paid, to in product(PAID_STATES, RELEASED):
        assert not can(paid, to), (paid, to)
    # Refunded is final.
    assert [to for to in S if can(S.REFUNDED, to)] == []
    # Nothing goes back to pending; attention states never become paid by themselves.
    assert [src for src in S if can(src, S.PENDING)] == []
    for src in ATTENTION_STATES:
        assert not can(src, S.PAID) and not can(src, S.DELIVERED)


def test_groups_are_the_decided_states() -> None:
    """Written out, not derived: a change to a group or to the table must be deliberate."""
    assert set(OPEN) == {S.PENDING}
    assert set(SETTLEABLE) == {S.PENDING, S.EXPIRED, S.CANCELLED}
    assert set(REFUNDABLE) == {
        S.PAID,
        S.DELIVERED,
        S.PARTIALLY_REFUNDED,
        S.NEEDS_REVIEW,
        S.NEEDS_REFUND,
    }
    assert set(SALE_STATES) == {S.PAID, S.DELIVERED, S.PARTIALLY_REFUNDED}
    assert set(ATTENTION_STATES) == {S.NEEDS_REVIEW, S.NEEDS_REFUND}
    assert set(WITH_GOODS) == {S.PAID, S.DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED}


def test_groups_agree_with_the_table() -> None:
    assert set(STATES) == set(S) and len(STATES) == len(S)
    assert set(SETTLEABLE) == set(OPEN) | set(RELEASED)
    assert set(SETTLEABLE).isdisjoint(PAID_STATES)
    assert set(SETTLEABLE) | set(PAID_STATES) == set(S)
    assert set(SETTLEABLE) == set(TRANSITIONS[S.PAID])  # a payment settles exactly these
    assert set(REFUNDABLE) == set(TRANSITIONS[S.REFUNDED]) and set(REFUNDABLE) <= set(PAID_STATES)
    assert set(SALE_STATES) <= set(WITH_GOODS) <= set(PAID_STATES)
    assert set(ATTENTION_STATES).isdisjoint(SALE_STATES)
    assert set(RELEASED) == set(TRANSITIONS[S.NEEDS_REFUND])


def test_every_state_is_reachable_from_pending() -> None:
    seen, todo = {S.PENDING}, [S.PENDING]
    while todo:
        src = todo.pop()
        for to in S:
            if can(src, to) and to not in seen:
                seen.add(to)
                todo.append(to)
    assert seen == set(S)


@pytest.mark.parametrize(("src", "to"), FORBIDDEN)
async def test_a_transition_outside_the_table_raises_before_any_sql(src: S, to: S) -> None:
    class NoSql:
        async def execute(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("SQL was sent")

    assert not can(src, to)
    with pytest.raises(IllegalTransition):
        sources(to, [src])
    with pytest.raises(IllegalTransition):
        transition_stmt(to, from_=[src])
    with pytest.raises(IllegalTransition):
        await transition(NoSql(), 1, to, from_=[src])  # type: ignore[arg-type]


async def test_a_state_nothing_leads_to_raises_without_a_source_given() -> None:
    with pytest.raises(IllegalTransition, match="pending"):
        sources(S.PENDING)
    with pytest.raises(IllegalTransition):
        sources(S.PAID, [])  # "from nowhere" is a caller's bug, not an empty update


# --- on the database ------------------------------------------------------------------------


async def test_every_allowed_transition_succeeds_from_each_source(db: storage.Database) -> None:
    ids = await _orders_in(db, *(src for src, _ in ALLOWED))
    for order_id, (src, to) in zip(ids, ALLOWED, strict=True):
        async with db.transaction() as s:
            moved = await transition(s, order_id, to)
        assert moved is not None, (src, to)
        assert moved.id == order_id and moved.status is to
        assert await _status(db, order_id) is to


async def test_the_update_itself_refuses_what_the_table_does_not_allow(
    db: storage.Database,
) -> None:
    # No `from_` given: only the WHERE clause stands between the caller and a wrong move.
    reachable = [(src, to) for src, to in FORBIDDEN if TRANSITIONS.get(to)]
    ids = await _orders_in(db, *(src for src, _ in reachable))
    for order_id, (src, to) in zip(ids, reachable, strict=True):
        async with db.transaction() as s:
            assert await transition(s, order_id, to) is None, (src, to)
        assert await _status(db, order_id) is src


async def test_other_columns_and_updated_at_are_written(db: storage.Database) -> None:
    (order_id,) = await _orders_in(db, S.PAID)
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    async with db.transaction() as s:
        stmt = sa.update(Order).where(col(Order.id) == order_id).values(updated_at=long_ago)
        await s.execute(stmt)
    now = storage.utcnow()
    async with db.transaction() as s:
        moved = await transition(s, order_id, S.DELIVERED, delivered_at=now)
    assert moved is not None and moved.delivered_at == now and moved.updated_at >= now
    details = await storage.get_order(db, order_id)
    assert details is not None and details.order.delivered_at == now
    with pytest.raises(TypeError):
        async with db.transaction() as s:
            await transition(s, order_id, S.REFUNDED, status=S.PENDING)


async def test_an_order_that_moved_on_is_not_moved_again(db: storage.Database) -> None:
    (order_id,) = await _orders_in(db, S.PENDING)
    async with db.transaction() as s:
        assert await transition(s, order_id, S.CANCELLED) is not None
    async with db.transaction() as s:
        assert await transition(s, order_id, S.EXPIRED) is None
        assert await transition(s, order_id, S.PAID, from_=OPEN) is None
        assert await transition(s, 987_654, S.CANCELLED) is None  # no such order
    assert await _status(db, order_id) is S.CANCELLED


async def test_one_statement_serves_many_orders(db: storage.Database) -> None:
    ids = await _orders_in(db, S.PENDING, S.DELIVERED, S.PENDING)
    stmt = transition_stmt(S.EXPIRED).values(updated_at=storage.utcnow())
    async with db.transaction() as s:
        moved = [(await s.execute(stmt, {"p_order_id": i})).first() is not None for i in ids]
    assert moved == [True, False, True]
    assert [await _status(db, i) for i in ids] == [S.EXPIRED, S.DELIVERED, S.EXPIRED]


async def test_racing_callers_one_winner(db: storage.Database) -> None:
    (order_id,) = await _orders_in(db, S.PENDING)
    targets = [S.PAID, S.CANCELLED, S.EXPIRED, S.NEEDS_REVIEW] * 3

    async def move(to: S) -> S | None:
        async with db.transaction() as s:
            moved = await transition(s, order_id, to)
        return None if moved is None else moved.status

    results = await asyncio.gather(*(move(to) for to in targets))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await _status(db, order_id) is winners[0]


async def test_a_paid_order_is_never_cancelled_or_expired(db: storage.Database) -> None:
    ids = await _orders_in(db, *PAID_STATES)
    with pytest.raises(IllegalTransition):
        await storage.release_order(db, ids[0], S.PAID)
    for order_id, to in product(ids, RELEASED):
        assert not await storage.release_order(db, order_id, to)
    assert [await _status(db, i) for i in ids] == list(PAID_STATES)


async def test_nothing_leaves_refunded(db: storage.Database) -> None:
    targets = [to for to in S if TRANSITIONS.get(to)]
    ids = await _orders_in(db, *([S.REFUNDED] * len(targets)))
    for order_id, to in zip(ids, targets, strict=True):
        async with db.transaction() as s:
            assert await transition(s, order_id, to) is None, to
        assert await _status(db, order_id) is S.REFUNDED
