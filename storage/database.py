"""The engine, sessions and transactions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from storage._batch import Coalescer

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PG_POOL_SIZE connections are kept open; ten keep two cores busy, more only make the
# server switch between its processes. Overflow connections are closed again when returned
# (a task that needs a second connection, such as a job's lock transaction, gets one
# there). Sessions wait for a connection in the pool's own queue, at most its timeout (30 s).
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 5
# A pooled connection idle this long is pinged before use (a server restart or a killed
# backend is found there, and the pool replaces it). One in steady use is not: the ping
# (BEGIN; SELECT; ROLLBACK — three round trips) cost as much as a settle's statements, and
# a connection that dies in use raises a disconnect error, on which SQLAlchemy invalidates
# it and every pooled connection older than it.
PG_PING_AFTER_IDLE_S = 2.0

SQLITE_BEGIN_OPTION = "storage_sqlite_begin"

# What the database failing looks like to a caller: a driver error (SQLAlchemy wraps them
# all in DBAPIError; asyncpg reports a server gone away as one), a refused or reset
# connection (OSError), a timeout, or no pooled connection free in time.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.DBAPIError,
    OSError,
    TimeoutError,
    sa.exc.TimeoutError,
)
# How many calls one group-committed transaction takes at most (Database.coalesced).
COALESCE_MAX = 200
# How long a statistics refresh waits for a table lock (a manual VACUUM, an index build)
# before it gives up: it is only an optimisation.
ANALYZE_LOCK_TIMEOUT = "5s"


class Database:
    """One async engine plus session helpers. Constructing it does no I/O.

    ``session()`` opens a plain session (reads; on SQLite a deferred transaction).
    ``transaction()`` opens a session inside a transaction that commits on success and rolls
    back on error; on SQLite it starts with ``BEGIN IMMEDIATE`` so writers queue on the
    busy timeout instead of failing when a read lock cannot be upgraded.
    """

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs: Any) -> None:
        self.url = make_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database backend {backend!r} (sqlite or postgresql)")
        self.dialect: str = backend
        # hide_parameters: a failed statement's message (and so a logged traceback) would
        # otherwise carry its values — a webhook body, codes for sale.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if backend == "sqlite":
            # Plain aiosqlite through SQLAlchemy's own dialect (see _install_sqlite_hooks): a
            # driver saving trips to aiosqlite's thread was at most ~12 % faster on the
            # benches, not worth reaching into aiosqlite's private parts.
            kwargs["connect_args"] = {
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                **engine_kwargs.pop("connect_args", {}),
            }
            # The pool's own reset is replaced by _on_reset (see _install_sqlite_hooks).
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs.update(
                pool_size=PG_POOL_SIZE,
                max_overflow=PG_MAX_OVERFLOW,
                pool_pre_ping=False,  # see PG_PING_AFTER_IDLE_S
                pool_recycle=1800,
            )
        kwargs.update(engine_kwargs)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if backend == "sqlite":
            _install_sqlite_hooks(self.engine.sync_engine)
            writer = self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        else:
            _install_pg_hooks(self.engine)
            writer = self.engine
        self._writer_engine = writer
        # run_transaction's own connection to a SQLite file, used from one thread (no I/O
        # until the first transaction). None: PostgreSQL, or an in-memory SQLite database
        # (only the async engine's connection sees it).
        self._sqlite_sync: sa.Engine | None = None
        self._sqlite_thread: ThreadPoolExecutor | None = None
        if backend == "sqlite" and _is_file(self.url):
            self._sqlite_sync = sa.create_engine(
                self.url.set(drivername="sqlite"),
                echo=kwargs["echo"],
                hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                pool_reset_on_return=None,
                execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"},
            )
            _install_sqlite_hooks(self._sqlite_sync)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writer = async_sessionmaker(writer, expire_on_commit=False, autoflush=False)
        # SQLite has one writer at a time. Queueing this process's writers here wakes the
        # next one as soon as the lock is free, instead of leaving them in SQLite's busy
        # handler sleeping in growing steps (other processes still wait on busy_timeout).
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if backend == "sqlite" else None
        self._coalescers: dict[str, Coalescer[Any, Any]] = {}

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._writer() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._writer() as session, session.begin():
            yield session

    async def run_transaction(
        self,
        body: Callable[Concatenate[sa.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `body(conn, *args, **kwargs)`, a plain function of Core statements on a
        Connection, in one write transaction: committed when it returns, rolled back when it
        raises (its exception reaches the caller). For the checkout's order transaction.

        On a SQLite file the body runs in a thread of this Database's own, on a connection
        of the standard sqlite3 module (SQLAlchemy's own sync engine on the same file, with
        the same pragmas and BEGIN IMMEDIATE), queued with this process's other writers:
        the transaction is one hop to that thread instead of ~4 trips to aiosqlite's thread
        per statement. Measured sequentially on this machine (CPU per transaction): BEGIN
        IMMEDIATE + 1 statement + COMMIT 560 us through transaction() vs 121 us here; with 5
        statements 1,460 us vs 241 us. Everywhere else (PostgreSQL, in-memory SQLite) the
        body runs through the async engine's `AsyncConnection.run_sync`. Cancelling the
        caller does not stop a body already running in the thread (it commits or rolls
        back on its own; another writer meanwhile waits on SQLite's busy timeout)."""
        if self._sqlite_sync is None:
            async with self._maybe_write_lock(), self._writer_engine.begin() as conn:
                return await conn.run_sync(body, *args, **kwargs)
        sync_engine = self._sqlite_sync

        def in_thread() -> T:
            with sync_engine.begin() as conn:
                return body(conn, *args, **kwargs)

        if self._sqlite_thread is None:
            self._sqlite_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        async with self._maybe_write_lock():
            return await loop.run_in_executor(self._sqlite_thread, in_thread)

    def _maybe_write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    async def coalesced(
        self,
        name: str,
        run: Callable[[Database, list[Any]], Awaitable[Sequence[Any]]],
        item: Any,
    ) -> Any:
        """Group commit: `run(self, items)` handles every `item` passed under `name` while
        the previous batch ran (at most COALESCE_MAX) in one transaction of its own, and
        each caller gets its item's outcome (see storage._batch.Coalescer).

        For the checkout's small writes after the order (the invoice, the order message).
        Each was a transaction of its own: on SQLite a turn of the one writer, spent mostly
        on round trips to aiosqlite's thread (a transaction with one statement makes ~10),
        each a wake-up of that thread while the write lock is held. 500 concurrent Buy taps
        (bench/checkout.py) queued three such turns each; one batch of them costs the trips
        of one. Measured with bench/checkout.py --throughput, before and after, alternating,
        on a busy 2-core machine: SQLite ratio_to_floor 0.14 / 0.11 / 0.15 -> 0.20 / 0.17 /
        0.28; PostgreSQL (--postgres) 0.12 -> 0.24."""
        coalescer = self._coalescers.get(name)
        if coalescer is None:

            async def batch(items: list[Any]) -> Sequence[Any]:
                return await run(self, items)

            coalescer = self._coalescers[name] = Coalescer(batch, COALESCE_MAX)
        return await coalescer(item)

    async def ping(self) -> bool:
        """True when the database answers. A pooled connection the server dropped fails
        once (and is invalidated with every older one); the second try gets a fresh one."""
        for _attempt in range(2):
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            except sa.exc.DBAPIError as error:
                if error.connection_invalidated:
                    continue
                return False
            except Exception:
                return False
            return True
        return False

    async def analyze(self, *tables: str) -> None:
        """Refresh PostgreSQL's planner statistics for these tables now, as its manual
        advises after a bulk load, rather than when autovacuum next gets to them (a minute
        or more). Until then the planner takes a freshly imported 100,000-product catalog
        for a handful of rows: it sorted every product to show the first page (20 to
        40 ms instead of 2). SQLite: nothing to do."""
        if not tables:
            raise ValueError("name the tables to analyze")
        if self.is_postgres:
            quote = self.engine.dialect.identifier_preparer.quote
            async with self.transaction() as s:
                await s.execute(sa.text(f"SET LOCAL lock_timeout = '{ANALYZE_LOCK_TIMEOUT}'"))
                await s.execute(sa.text(f"ANALYZE {', '.join(map(quote, tables))}"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sqlite_thread is not None:
            thread, self._sqlite_thread = self._sqlite_thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._dispose_sync)
            thread.shutdown()

    def _dispose_sync(self) -> None:
        if self._sqlite_sync is not None:
            self._sqlite_sync.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def _is_file(url: sa.URL) -> bool:
    """A SQLite URL naming a file (not ":memory:", nor a shared in-memory URI)."""
    name = url.database or ""
    return name not in ("", ":memory:") and url.query.get("mode") != "memory"


def _install_sqlite_hooks(sync_engine: sa.Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    @event.listens_for(sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
        """Reset on return, only when there is something to reset: a connection comes back
        to the pool with a transaction open only if its user failed to end it (sqlite3
        knows: the connection's in_transaction). The pool's default reset rolls back every
        time — a trip to aiosqlite's thread after every committed write (inside the write
        lock) and a second rollback after every read. A checkout tap (bench/checkout.py)
        made 7 rollback trips, 2 of them needed: 68 trips to aiosqlite's thread became 63."""
        if state.terminate_only or not state.asyncio_safe:
            return  # the pool discards the connection anyway
        if state.transaction_was_reset or not record.driver_connection.in_transaction:
            return
        dbapi_connection.rollback()


def _install_pg_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # None: connected just now
        if idle_since is None or time.monotonic() - idle_since < PG_PING_AFTER_IDLE_S:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool discards this connection and checks out another (a new one).
            raise sa.exc.DisconnectionError(f"pooled connection is gone: {error}") from error


@asynccontextmanager
async def job_lock(db: Database, key: int) -> AsyncIterator[bool]:
    """Yield True when this process holds the job lock `key` for the block's duration.

    PostgreSQL: ``pg_try_advisory_xact_lock`` in a transaction kept open for the block, so
    one replica runs a job at a time. SQLite (a single process by construction): always True.
    """
    if not db.is_postgres:
        yield True
        return
    async with db.transaction() as session:
        yield await try_job_lock(session, key)


async def try_job_lock(session: AsyncSession, key: int) -> bool:
    """Take the transaction-scoped advisory lock `key` if free (PG); True on SQLite."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return True
    got = await session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
    return bool(got)
