"""Customers, stats, audit, job locks, the Database helpers and the column types."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

import storage
from storage import OrderStatus
from storage.models import Product
from tests.conftest import pg_admin
from tests.storage.conftest import order_for, payment, seed


async def test_count_customers_besides(db: storage.Database) -> None:
    assert await storage.count_customers_besides(db, [1, 2]) == 0
    for telegram_id in (1, 2, 10**12):
        await storage.upsert_customer(db, telegram_id, None, "en")
    assert await storage.count_customers_besides(db, [1, 2]) == 1
    assert await storage.count_customers_besides(db, [1]) == 2
    assert await storage.count_customers_besides(db, []) == 3
    assert await storage.count_customers_besides(db, [1, 2, 10**12]) == 0


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


async def test_sqlite_writers_begin_immediate_and_readers_deferred(db: storage.Database) -> None:
    """A write transaction holds SQLite's write lock from its first statement, even a read
    (BEGIN IMMEDIATE: it cannot fail later upgrading a read lock); a read session takes
    none. Seen from another connection that will not wait (timeout 0)."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite only")
    assert db.url.database is not None
    other = sqlite3.connect(db.url.database, timeout=0, isolation_level=None)
    other.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    try:
        async with db.transaction() as s:
            await s.execute(sa.text("SELECT count(*) FROM products"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
        async with db.session() as s:
            await s.execute(sa.text("SELECT count(*) FROM products"))
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        with pytest.raises(sa.exc.IntegrityError, match="UNIQUE"):  # rolls the writer back
            async with db.transaction() as s:
                await s.execute(sa.text("INSERT INTO t (id) VALUES (1)"))
                await s.execute(sa.text("INSERT INTO t (id) VALUES (1)"))
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        async with db.session() as s:
            assert (await s.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        other.close()


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


async def test_postgres_connection_holder_may_open_a_second_session(pg_url: str) -> None:
    """A task holding the pool's every connection (a job's lock transaction) that opens
    another session gets an overflow connection instead of waiting on itself."""
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
