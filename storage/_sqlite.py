"""aiosqlite with one trip to the connection's thread per statement.

aiosqlite runs every call on the connection's own thread. SQLAlchemy's adapter makes four
such calls per statement (open a cursor, execute, fetch the rows, close the cursor), and
each is a round trip: a queue, a thread wake-up, then a callback that waits its turn on the
event loop. Under load those round trips, not SQLite, are what a write transaction spends
its time on — while it holds SQLite's single write lock. Measured on the webhook path: 24
round trips for 6 statements.

`OneTripConnection.cursor()` returns a cursor that does the four steps in one call on the
worker thread: the statement runs, all its rows are fetched and the sqlite3 cursor is
closed there; SQLAlchemy then reads the buffered rows, description, rowcount and lastrowid.
SQLAlchemy buffers every row of a non-server-side cursor anyway, so nothing is read
earlier or in a different order than before. Everything else (connect, commit, rollback,
close, the thread itself) is aiosqlite's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

_Result = tuple[Any, list[Any], int, int | None, bool]


def _run(
    conn: sqlite3.Connection, begin: str | None, sql: str, parameters: Any, many: bool
) -> _Result:
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None and not many else []
        return description, rows, cursor.rowcount, cursor.lastrowid, conn.in_transaction
    finally:
        cursor.close()


class OneTripCursor:
    """The part of aiosqlite's Cursor that SQLAlchemy uses, one thread trip per execute."""

    __slots__ = ("_conn", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, conn: OneTripConnection) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, sql: str, parameters: Any, many: bool) -> None:
        conn = self._conn
        begin, conn._begin = conn._begin, None
        conn._in_transaction = True  # unknown until the worker says
        result: _Result = await conn._execute(_run, conn._conn, begin, sql, parameters, many)
        self.description, self._rows, self.rowcount, self.lastrowid = result[:4]
        conn._in_transaction = result[4]

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        await self._call(sql, parameters, many=False)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> OneTripCursor:
        await self._call(sql, seq_of_parameters, many=True)
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        n = self.arraysize if size is None else size
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def fetchall(self) -> Sequence[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection with two more trips saved per transaction:

    - ``defer_begin(sql)``: the transaction's BEGIN travels with its first statement
      (storage.database's "begin" hook calls it; a transaction that runs no statement sends
      no BEGIN, and its commit or rollback has nothing to do);
    - ``rollback()`` when SQLite is not in a transaction (it reports that after every trip)
      makes no trip — the pool's reset-on-return after a commit was one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begin: str | None = None
        self._in_transaction = True  # not known yet: assume a trip is needed

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    def defer_begin(self, sql: str) -> None:
        self._begin = sql

    async def commit(self) -> None:
        if self._begin is not None:  # BEGIN never sent: no transaction to commit
            self._begin = None
            return
        await super().commit()
        self._in_transaction = False

    async def rollback(self) -> None:
        if self._begin is not None:
            self._begin = None
            return
        if not self._in_transaction:
            return
        await super().rollback()
        self._in_transaction = False


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """Like `aiosqlite.connect` (awaitable; the thread starts on await), with the cursor
    above. `kwargs` go to `sqlite3.connect`."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **kwargs)

    connection = OneTripConnection(connector, 64)
    connection._thread.daemon = True  # as SQLAlchemy's aiosqlite dialect does
    return connection
