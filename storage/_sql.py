"""Small dialect helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

T = TypeVar("T")
S = TypeVar("S", bound=Select)

# Stays well under SQLite's and asyncpg's bound-parameter limits.
CHUNK = 1000


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """`INSERT` with `.on_conflict_do_nothing/update` for the session's dialect."""
    if dialect_of(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def locked(session: AsyncSession, stmt: S, *, skip_locked: bool = False) -> S:
    """`FOR UPDATE [SKIP LOCKED]` on PostgreSQL; on SQLite the IMMEDIATE transaction
    already serialises writers, so the statement is returned unchanged."""
    if dialect_of(session) == "postgresql":
        return stmt.with_for_update(skip_locked=skip_locked)
    return stmt


def table_of(model: type[Any]) -> sa.Table:
    """The Core table of a SQLModel table class (for Core DML: no ORM bookkeeping)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
