"""Customers: one row per Telegram user who talked to the shop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage._sql import dialect_of, table_of
from storage.database import Database
from storage.models import Customer
from storage.types import utcnow

_BY_TELEGRAM_ID = sa.select(Customer).where(
    col(Customer.telegram_id) == sa.bindparam("p_telegram_id")
)


_customers = table_of(Customer)


class Buyer(NamedTuple):
    """A Telegram user as a shop action sees them: who, and what Telegram says of them."""

    telegram_id: int
    username: str | None
    language: str | None


def _upsert_stmt(insert: Any) -> Any:
    now = sa.bindparam("p_now", type_=_customers.c.updated_at.type)
    stmt = insert(_customers).values(
        telegram_id=sa.bindparam("p_telegram_id"),
        username=sa.bindparam("p_username", type_=_customers.c.username.type),
        language=sa.bindparam("p_language", type_=_customers.c.language.type),
        blocked_bot=False,
        created_at=now,
        updated_at=now,
    )
    return stmt.on_conflict_do_update(
        index_elements=["telegram_id"],
        set_={
            "username": stmt.excluded.username,
            "language": stmt.excluded.language,
            "blocked_bot": False,
            "updated_at": stmt.excluded.updated_at,
        },
    )


_UPSERT_ID = {
    name: _upsert_stmt(insert).returning(_customers.c.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
# The same, also returning the buyer's saved promo code (place_order(saved_promo=True)).
_UPSERT_ID_PROMO = {
    name: _upsert_stmt(insert).returning(_customers.c.id, _customers.c.promo_code)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
# The same, also returning the buyer's own referral code (storage/referrals.py).
_UPSERT_ID_REFERRAL = {
    name: _upsert_stmt(insert).returning(_customers.c.id, _customers.c.referral_code)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_UPSERT = {
    name: sa.select(Customer).from_statement(_upsert_stmt(insert).returning(*_customers.c))
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


def _upsert_params(buyer: Buyer) -> dict[str, Any]:
    return {
        "p_telegram_id": buyer.telegram_id,
        "p_username": buyer.username,
        "p_language": buyer.language,
        "p_now": utcnow(),
    }


async def upsert_customer_in(s: AsyncSession, buyer: Buyer) -> int:
    """Create or refresh the buyer's row inside the caller's transaction; returns its id.
    On PostgreSQL the row stays locked until that transaction ends."""
    customer_id = await s.scalar(_UPSERT_ID[dialect_of(s)], _upsert_params(buyer))
    assert customer_id is not None
    return int(customer_id)


async def upsert_customer_referral_in(s: AsyncSession, buyer: Buyer) -> tuple[int, str | None]:
    """upsert_customer_in, also giving the buyer's own referral code (None: none yet), read
    by the upsert itself."""
    row = (await s.execute(_UPSERT_ID_REFERRAL[dialect_of(s)], _upsert_params(buyer))).one()
    return int(row[0]), None if row[1] is None else str(row[1])


def upsert_customer_on(conn: sa.Connection, buyer: Buyer) -> int:
    """upsert_customer_in for a transaction body on a Connection (Database.run_transaction)."""
    customer_id = conn.scalar(_UPSERT_ID[conn.dialect.name], _upsert_params(buyer))
    assert customer_id is not None
    return int(customer_id)


def upsert_customer_promo_on(conn: sa.Connection, buyer: Buyer) -> tuple[int, str | None]:
    """upsert_customer_on, also giving the buyer's saved promo code (None: none saved), read
    by the upsert itself: the checkout needs no read of its own for it."""
    row = conn.execute(_UPSERT_ID_PROMO[conn.dialect.name], _upsert_params(buyer)).one()
    return int(row[0]), None if row[1] is None else str(row[1])


async def upsert_customer(
    db: Database, telegram_id: int, username: str | None, language: str | None
) -> Customer:
    """Create or refresh the customer. A user who writes to the bot has evidently not
    blocked it, so `blocked_bot` is cleared.

    A read comes first: when the row already says all this (the common case — every tap
    calls this), nothing is written, so no write transaction (on SQLite: no turn of the
    single writer) is spent on it."""
    async with db.session() as s:
        known = await s.scalar(_BY_TELEGRAM_ID, {"p_telegram_id": telegram_id})
    if (
        known is not None
        and known.username == username
        and known.language == language
        and not known.blocked_bot
    ):
        return known
    async with db.transaction() as s:
        customer = await s.scalar(
            _UPSERT[dialect_of(s)],
            _upsert_params(Buyer(telegram_id, username, language)),
            execution_options={"populate_existing": True},
        )
        assert customer is not None
        return customer


async def get_customer(db: Database, telegram_id: int) -> Customer | None:
    async with db.session() as s:
        return await s.scalar(sa.select(Customer).where(col(Customer.telegram_id) == telegram_id))


async def get_customer_by_id(db: Database, customer_id: int) -> Customer | None:
    async with db.session() as s:
        return await s.get(Customer, customer_id)


async def set_blocked(db: Database, telegram_id: int, blocked: bool) -> bool:
    """Record whether the user blocked the bot; False when the user is unknown."""
    async with db.transaction() as s:
        res = await s.execute(
            sa.update(Customer)
            .where(col(Customer.telegram_id) == telegram_id)
            .values(blocked_bot=blocked, updated_at=utcnow())
            .returning(col(Customer.id))
        )
        return res.first() is not None


async def choose_language(
    db: Database, telegram_id: int, username: str | None, telegram_code: str | None, choice: str
) -> Customer:
    """Store the customer's /language choice (creating the customer if need be)."""
    await upsert_customer(db, telegram_id, username, telegram_code)
    async with db.transaction() as s:
        customer = await s.scalar(
            sa.update(Customer)
            .where(col(Customer.telegram_id) == telegram_id)
            .values(chosen_language=choice, updated_at=utcnow())
            .returning(Customer),
            execution_options={"populate_existing": True},
        )
        assert customer is not None
        return customer


async def chosen_language(db: Database, telegram_id: int) -> str | None:
    """The customer's /language choice: None when unknown, "" when they never chose."""
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(col(Customer.chosen_language)).where(
                    col(Customer.telegram_id) == telegram_id
                )
            )
        ).first()
    if row is None:
        return None
    return row[0] or ""


async def customers_by_telegram_id(
    db: Database, telegram_ids: Iterable[int]
) -> dict[int, Customer]:
    """The customers among these Telegram users (one query), by Telegram id."""
    ids = sorted(set(telegram_ids))
    if not ids:
        return {}
    async with db.session() as s:
        rows = await s.scalars(sa.select(Customer).where(col(Customer.telegram_id).in_(ids)))
        return {c.telegram_id: c for c in rows}


async def language_choices(db: Database) -> dict[int, str]:
    """Every /language choice made, by Telegram id (those who chose: a small table)."""
    async with db.session() as s:
        rows = await s.execute(
            sa.select(col(Customer.telegram_id), col(Customer.chosen_language)).where(
                col(Customer.chosen_language).is_not(None)
            )
        )
        return {int(telegram_id): str(choice) for telegram_id, choice in rows.all()}


async def count_customers_besides(db: Database, telegram_ids: Iterable[int]) -> int:
    """How many customers are none of these Telegram users (the demo's check that the
    database it is given holds no shop's real customers)."""
    ids = sorted(set(telegram_ids))
    query = sa.select(sa.func.count()).select_from(Customer)
    if ids:
        query = query.where(col(Customer.telegram_id).not_in(ids))
    async with db.session() as s:
        return int(await s.scalar(query) or 0)
