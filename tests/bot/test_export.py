"""The orders' export (PRODUCT.md §4.2): the CSV read back with Python's csv equals the
orders; 100,000 orders stream through in constant memory; /export through the Dispatcher."""

from __future__ import annotations

import csv
import io
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.shop.export import HEADER, BadRange, DateRange, date_range, safe_cell, write_orders_csv
from storage import AuditEntry, get_product
from tests.bot.conftest import ADMIN_ID, ALICE, Shop
from tests.bulk_orders import Expected, bulk_orders, expected

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def check_row(row: dict[str, str], e: Expected, order_id: int, sku: str) -> None:
    """One CSV row against the order it must be (values parsed back, compared exactly)."""
    assert int(row["order_id"]) == order_id
    assert datetime.fromisoformat(row["created_at"]) == e.created_at
    assert row["created_at"].endswith("+00:00")
    assert (datetime.fromisoformat(row["paid_at"]) if row["paid_at"] else None) == e.paid_at
    assert row["status"] == e.status.value
    assert int(row["buyer_id"]) == e.telegram_id
    name = e.username or ""
    assert row["buyer_username"] == ("'" + name if name.startswith(("=", "+", "-", "@")) else name)
    assert row["lines"] == f"{sku}×{e.quantity}"
    for column, value in (
        ("subtotal", e.subtotal),
        ("discount", e.discount),
        ("total", e.total),
        ("refunded_amount", e.refunded),
    ):
        assert "e" not in row[column].lower()  # plain digits, never an exponent
        assert Decimal(row[column]) == value, column
    assert row["promo_code"] == ("'-SPRING" if e.promo_code else "")
    assert row["currency"] == "USD"
    assert row["paid_asset"] == ("USDT" if e.paid_at else "")
    paid = Decimal(row["paid_amount"]) if row["paid_amount"] else None
    assert paid == e.paid_amount


async def test_the_csv_read_back_equals_the_orders_in_the_range(shop: Shop) -> None:
    product = await get_product(shop.ctx.db, "multi")
    assert product is not None and product.id is not None
    # 60 days of orders; the range asks for 10 of them, read in pages of 7 (keyset).
    numbers = await bulk_orders(shop.ctx.db, 420, product.id, NOW, days=60)
    span = DateRange(date(2026, 11, 10), date(2026, 11, 19))
    out = io.StringIO(newline="")
    count = await write_orders_csv(shop.ctx.db, out, span, page_size=7)
    out.seek(0)
    reader = csv.DictReader(out)
    assert tuple(reader.fieldnames or ()) == HEADER
    rows = list(reader)
    inside = {
        order_id: number
        for order_id, number in numbers.items()
        if span.since <= expected(number, NOW, 60).created_at < span.until
    }
    assert 50 < len(inside) < 100  # the range cuts the orders: the test sees the filter
    assert count == len(rows) == len(inside)
    assert [int(r["order_id"]) for r in rows] == sorted(inside)  # oldest first, none twice
    for row in rows:
        order_id = int(row["order_id"])
        check_row(row, expected(inside[order_id], NOW, 60), order_id, "multi")
    formula = [r for r in rows if r["buyer_username"].startswith(("=", "+", "-", "@"))]
    assert not formula  # every formula start is guarded
    assert {r["buyer_username"][:2] for r in rows} >= {"'=", "'+", "'-", "'@"}


async def test_100000_orders_are_exported_in_constant_memory(shop: Shop, tmp_path: Path) -> None:
    product = await get_product(shop.ctx.db, "multi")
    assert product is not None and product.id is not None
    n = 100_000
    started = time.perf_counter()
    numbers = await bulk_orders(shop.ctx.db, n, product.id, NOW)
    inserted = time.perf_counter() - started
    span = DateRange(date(2026, 10, 1), date(2026, 11, 30))
    path = tmp_path / "orders.csv"
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with path.open("w", encoding="utf-8", newline="") as out:
            count = await write_orders_csv(shop.ctx.db, out, span)
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"\nRESULT export orders={count} peak_mib={peak / 2**20:.1f} "
        f"seconds={took:.1f} (under tracemalloc) insert_seconds={inserted:.1f}"
    )
    assert count == n
    # The 100,000 rows as objects would take hundreds of MiB; pages of 1,000 take a few.
    assert peak < 24 * 2**20, peak
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        seen = 0
        for seen, row in enumerate(reader, start=1):  # noqa: B007 - counted after the loop
            order_id = int(row["order_id"])
            check_row(row, expected(numbers[order_id], NOW), order_id, "multi")
    assert seen == n


def test_ranges_and_formula_cells() -> None:
    today = date(2026, 12, 2)
    assert date_range(None, None, today) == DateRange(date(2026, 11, 3), today)  # 30 days
    assert date_range("2026-11-01", None, today) == DateRange(date(2026, 11, 1), today)
    assert date_range("2026-11-01", "2026-11-01", today).until == datetime(2026, 11, 2, tzinfo=UTC)
    for bad in ("2026-13-01", "01.11.2026", "20261101", "yesterday"):
        with pytest.raises(BadRange) as caught:
            date_range(bad, None, today)
        assert (caught.value.reason, caught.value.value) == ("format", bad)
    with pytest.raises(BadRange) as caught:
        date_range("2026-11-02", "2026-11-01", today)
    assert caught.value.reason == "order"
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@a", "\tx", "a=b", "", None)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "a=b",
        "",
        "",
    ]


async def test_export_command_sends_the_csv_document(shop: Shop) -> None:
    product = await get_product(shop.ctx.db, "solo")
    assert product is not None and product.id is not None
    now = shop.ctx.clock()
    numbers = await bulk_orders(shop.ctx.db, 90, product.id, now, days=45)
    await shop.send("/export", ADMIN_ID)
    (upload,) = shop.session.uploads
    method, name, data = upload
    first = (now - timedelta(days=29)).date()
    assert (method, name) == ("sendDocument", f"orders-{first}-{now.date()}.csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    in_range = sorted(
        order_id
        for order_id, number in numbers.items()
        if expected(number, now, 45).created_at.date() >= first
    )
    assert [int(r["order_id"]) for r in rows] == in_range
    for row in rows:
        order_id = int(row["order_id"])
        check_row(row, expected(numbers[order_id], now, 45), order_id, "solo")
    (sent,) = shop.session.calls("sendDocument")
    assert sent.caption == f"{len(rows)} orders created from {first} to {now.date()} (UTC)."
    audit = [(a.action, a.result) for a in await shop.rows(AuditEntry)]
    assert ("export", f"{len(rows)} orders") in audit
    assert list(shop.tmp_path.glob("orders-*.csv")) == []  # the temporary file is gone


async def test_export_refuses_bad_dates_with_one_sentence(shop: Shop) -> None:
    await shop.send("/export 2026-02-30", ADMIN_ID)
    assert "“2026-02-30” is not a date" in shop.last_text().text
    await shop.send("/export 2026-11-30 2026-11-01", ADMIN_ID)
    assert (
        shop.last_text().text
        == "The first date is after the second one. Put the earlier date first."
    )
    await shop.send("/export 2026-11-01 2026-11-02 2026-11-03", ADMIN_ID)
    assert shop.last_text().text.startswith("Usage: <code>/export [from] [to]</code>")
    assert shop.session.uploads == []


async def test_export_is_no_command_for_shoppers(shop: Shop) -> None:
    await shop.send("/export", ALICE)
    assert shop.session.calls("sendDocument") == []
    await shop.send("/referrals", ALICE)
    assert "Top referrers" not in shop.last_text().text
