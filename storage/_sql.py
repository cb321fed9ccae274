"""Small dialect helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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


def snapshot(model: type[T], values: Mapping[Any, Any]) -> T:
    """A read-only copy of a table row (all its columns, by name) as `model` — for rows a
    Core statement returned, where loading them through the ORM would cost more than the
    statement. Its attributes read as usual; it is not tracked by any session and must not
    be added to one or modified (it has no ORM state)."""
    made: T = model.model_construct(**values)  # type: ignore[attr-defined]
    return made


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
