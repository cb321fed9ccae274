"""Customers, stats, audit, job locks, the Database helpers and the column types."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus
from storage.models import Product
from tests.conftest import pg_admin
from tests.storage.conftest import order_for, payment, seed


async def test_upsert_customer_and_blocked_flag(db: storage.Database) -> None:
    c1 = await storage.upsert_customer(db, 10**12, "alice", "en")
    assert c1.id is not None and not c1.blocked_bot
    assert await storage.set_blocked(db, 10**12, True)
    assert not await storage.set_blocked(db, 1, True)
    blocked = await storage.get_customer(db, 10**12)
    assert blocked is not None and blocked.blocked_bot
    c2 = await storage.upsert_customer(db, 10**12, "alice2", "de")
    assert (c2.id, c2.username, c2.language, c2.blocked_bot) == (c1.id, "alice2", "de", False)
    assert await storage.get_customer_by_id(db, c1.id) == c2


async def test_sales_summary_and_orders_by_status(db: storage.Database) -> None:
    prod = await seed(db, codes=5)
    t0 = storage.utcnow()
    paid = [await order_for(db, prod, telegram_id=i) for i in range(3)]
    for o in paid:
        await storage.settle(db, payment(o, paid_at=t0))
    await storage.settle(db, payment(await order_for(db, prod), paid_at=t0 - timedelta(days=2)))
    await order_for(db, prod)  # pending: not a sale
    count, total = await storage.sales_summary(db, t0 - timedelta(days=1), t0 + timedelta(1), "USD")
    assert (count, total) == (3, Decimal("29.97"))
    assert await storage.sales_summary(db, t0 - timedelta(days=1), t0, "USD") == (0, Decimal(0))
    assert (await storage.sales_summary(db, t0, t0 + timedelta(1), "EUR"))[0] == 0
    by_status = await storage.orders_by_status(db)
    assert by_status["paid"] == 4 and by_status["pending"] == 1 and by_status["refunded"] == 0
    assert set(by_status) == {s.value for s in OrderStatus}


async def test_audit_log(db: storage.Database) -> None:
    e1 = await storage.write_audit(db, 42, "refund", "order 1 amount 5", "sent")
    e2 = await storage.write_audit(db, 43, "stock_upload", "sku=x", "added 3")
    assert e1.id is not None and e2.id is not None and e1.created_at.tzinfo is not None
    async with db.session() as s:
        rows = (await s.scalars(sa.select(storage.AuditEntry).order_by(sa.desc("id")))).all()
    assert [(e.admin_id, e.action, e.result) for e in rows] == [
        (43, "stock_upload", "added 3"),
        (42, "refund", "sent"),
    ]


async def test_job_lock_excludes_a_second_holder(db: storage.Database) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> bool:
        async with storage.job_lock(db, 7) as got:
            entered.set()
            await release.wait()
            return got

    task = asyncio.create_task(holder())
    await entered.wait()
    async with storage.job_lock(db, 7) as second:
        async with storage.job_lock(db, 8) as other_key:
            pass
    release.set()
    assert await task is True and other_key is True
    # PostgreSQL: one holder at a time. SQLite is single-process by construction.
    assert second is (db.dialect == "sqlite")
    async with storage.job_lock(db, 7) as again:
        assert again


async def test_ping_dialect_and_bad_url(db: storage.Database, engine_name: str) -> None:
    assert db.dialect == engine_name
    assert await db.ping()
    broken = storage.Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert not await broken.ping()
    await broken.dispose()
    with pytest.raises(ValueError):
        storage.Database("mysql+aiomysql://x/y")


async def test_sqlite_pragmas(db: storage.Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite only")
    async with db.session() as s:
        got = [
            (await s.execute(sa.text(f"PRAGMA {p}"))).scalar()
            for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    assert got == ["wal", 1, 1, 30000]


async def test_sqlite_one_thread_trip_per_statement(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """storage._sqlite: a statement is one call on aiosqlite's thread (execute, fetch and
    close together), and results, rowcounts and errors come back as with aiosqlite."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite only")
    import aiosqlite

    trips = 0
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kw: Any) -> Any:
        nonlocal trips
        trips += 1
        return await real(self, fn, *args, **kw)

    await seed(db, codes=3)
    async with db.session() as s:
        await s.execute(sa.text("SELECT 1"))  # a connection in the pool, pragmas done
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        rows = (await s.execute(sa.text("SELECT id FROM products UNION SELECT 7"))).all()
        assert trips == 1 and len(rows) == 2
        updated = await s.execute(sa.text("UPDATE stock_units SET reserved_until = NULL"))
        assert trips == 2 and updated.rowcount == 3  # type: ignore[attr-defined]
        returned = await s.execute(
            sa.text("UPDATE stock_units SET reserved_until = NULL RETURNING id")
        )
        assert trips == 3 and len(returned.all()) == 3
        await s.rollback()
    assert trips == 4
    # A write transaction: BEGIN IMMEDIATE rides with the first statement, then COMMIT;
    # the pool's reset-on-return finds no transaction open and makes no trip.
    async with db.transaction() as s:
        await s.execute(sa.text("UPDATE stock_units SET reserved_until = NULL"))
    assert trips == 6
    async with db.transaction() as s:  # no statement: no BEGIN, nothing to end
        pass
    assert trips == 6
    async with db.session() as s:
        assert (await s.execute(sa.text("SELECT count(*) FROM stock_units"))).scalar() == 3
    assert trips == 8  # the read, then the rollback ending its snapshot
    with pytest.raises(sa.exc.IntegrityError):
        async with db.transaction() as s:
            await s.execute(sa.text("INSERT INTO customers (id, telegram_id) VALUES (1, 1)"))
            await s.execute(sa.text("INSERT INTO customers (id, telegram_id) VALUES (1, 2)"))


async def test_money_is_exact_and_naive_datetimes_are_refused(db: storage.Database) -> None:
    prod = await seed(db, codes=1)
    big = Decimal("12345678901.12345678")  # 19 significant digits: a double would round
    async with db.transaction() as s:
        await s.execute(sa.update(Product).where(Product.id == prod.id).values(price=big))
    again = await storage.get_product(db, "key")
    assert again is not None and again.price == big
    with pytest.raises(storage.InexactMoney):
        storage.to_money(Decimal("0.000000001"))
    with pytest.raises(TypeError):
        storage.to_money(0.1)  # type: ignore[arg-type]
    with pytest.raises(sa.exc.StatementError):
        await storage.overdue_pending_orders(db, datetime(2000, 1, 1))
    order = await order_for(db, prod, ttl=900)
    plus3 = timezone(timedelta(hours=3))
    # Compared as instants, not wall times: +03:00 is 3 hours "later" on the clock face.
    before = (storage.utcnow() + timedelta(minutes=10)).astimezone(plus3)
    after = (storage.utcnow() + timedelta(minutes=20)).astimezone(plus3)
    assert [o.id for o in await storage.overdue_pending_orders(db, before)] == []
    assert [o.id for o in await storage.overdue_pending_orders(db, after)] == [order.id]
    far = datetime(2199, 1, 1, tzinfo=UTC)
    assert [o.id for o in await storage.overdue_pending_orders(db, far)] == [order.id]


async def test_postgres_idle_connection_is_pinged_and_replaced(
    db: storage.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection idle past PG_PING_AFTER_IDLE_S is pinged at checkout; one the
    server dropped is replaced there, so the caller never sees the disconnect."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    from storage import database

    prod = await seed(db, codes=1)
    assert prod.id is not None
    assert await storage.stock_counts(db, prod.id) == (1, 0, 0)  # a connection in the pool
    await pg_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{db.url.database}'"
    )
    monkeypatch.setattr(database, "PG_PING_AFTER_IDLE_S", 0.0)
    assert await storage.get_product(db, "key") is not None
    async with db.transaction() as s:
        await s.execute(sa.text("SELECT 1"))


async def test_postgres_sessions_take_turns_in_arrival_order(pg_url: str) -> None:
    """With every connection busy, a session that arrives just as a connection comes back
    queues behind the sessions already waiting. (The pool's own queue let it take that
    connection, and the waiter it had woken went to the back of the queue.)"""
    db = storage.Database(pg_url, pool_size=1, max_overflow=0)
    started: list[str] = []
    release = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def use(name: str, hold: asyncio.Event | None = None) -> None:
        async with db.session() as s:
            await s.execute(sa.text("SELECT 1"))
            started.append(name)
            if hold is not None:
                await hold.wait()

    def newcomer_arrives(*_: Any) -> None:
        # Runs as the busy connection is handed back: the newcomer is ready to run before
        # the waiter that the hand-back wakes.
        if release.is_set() and not tasks:
            tasks.append(asyncio.get_running_loop().create_task(use("newcomer")))

    sa.event.listen(db.engine.sync_engine.pool, "checkin", newcomer_arrives)
    try:
        first = asyncio.create_task(use("first", release))
        while started != ["first"]:
            await asyncio.sleep(0)
        waiters = [asyncio.create_task(use(f"waiter {i}")) for i in range(3)]
        for _ in range(20):  # let the waiters reach the queue
            await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiters), timeout=10)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        assert started == ["first", "waiter 0", "waiter 1", "waiter 2", "newcomer"]
    finally:
        await db.dispose()


async def test_postgres_turn_holder_may_open_a_second_session(pg_url: str) -> None:
    """A task inside its turn (a job's lock transaction) that opens another session does not
    wait for a turn again — with every turn taken that would be waiting on itself."""
    db = storage.Database(pg_url, pool_size=1, max_overflow=1)
    try:
        async with asyncio.timeout(10), db.transaction() as outer:
            await outer.execute(sa.text("SELECT 1"))
            assert await storage.get_customer(db, 1) is None
    finally:
        await db.dispose()


def test_snapshot_reads_like_the_row_and_is_not_tracked() -> None:
    from storage._sql import snapshot

    values = {c.name: None for c in Product.__table__.columns} | {  # type: ignore[attr-defined]
        "id": 3,
        "sku": "key",
        "title": "Key",
        "price": Decimal("4.99"),
        "unlimited": False,
    }
    product = snapshot(Product, values)
    assert (product.id, product.sku, product.title, product.price) == (
        3,
        "key",
        "Key",
        Decimal("4.99"),
    )
    assert product.unlimited is False and product.content is None
    with pytest.raises(sa.exc.NoInspectionAvailable):
        sa.inspect(product)  # no ORM state: no session will take it for a row of its own
