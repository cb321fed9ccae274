"""`python -m bot orders export FILE [--from D] [--to D]` (PRODUCT.md §4.2), run as a real
process: the same CSV as /export, to a file or to standard output; bad dates are one sentence."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

import storage
from bot.shop.export import HEADER
from storage import CatalogData, CategoryData, Database, ProductData
from tests.bulk_orders import bulk_orders, expected
from tests.e2e.conftest import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def orders_in(shop: Shop, n: int) -> dict[int, int]:
    db = Database(f"sqlite+aiosqlite:///{shop.db_path}")
    try:
        await storage.upgrade(db)
        product = ProductData(
            sku="key", category="games", title="Key", description="", price=Decimal("1.00")
        )
        await storage.upsert_catalog(
            db, CatalogData("USD", [CategoryData("games", "Games")], [product])
        )
        found = await storage.get_product(db, "key")
        assert found is not None and found.id is not None
        return await bulk_orders(db, n, found.id, NOW, days=40)
    finally:
        await db.dispose()


def order_ids(text: str) -> list[int]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == HEADER
    return [int(row["order_id"]) for row in reader]


async def test_orders_export_writes_the_range_to_a_file_and_to_stdout(shop: Shop) -> None:
    numbers = await orders_in(shop, 300)
    first, last = date(2026, 11, 1), date(2026, 11, 15)
    wanted = sorted(
        order_id
        for order_id, number in numbers.items()
        if first <= expected(number, NOW, 40).created_at.date() <= last
    )
    assert 0 < len(wanted) < len(numbers)

    out = shop.tmp_path / "orders.csv"
    exporter = shop.command(
        "orders", "export", str(out), "--from", "2026-11-01", "--to", "2026-11-15"
    )
    assert await exporter.run_to_end() == 0, exporter.stderr
    assert order_ids(out.read_text(encoding="utf-8")) == wanted
    assert f"{len(wanted)} orders from 2026-11-01 to 2026-11-15 (UTC) written to {out}." in (
        exporter.stderr
    )

    to_stdout = shop.command("orders", "export", "-", "--from", "2026-11-01", "--to", "2026-11-15")
    assert await to_stdout.run_to_end() == 0, to_stdout.stderr
    assert to_stdout.stdout == out.read_text(encoding="utf-8")  # the same bytes either way


async def test_orders_export_refuses_a_bad_date_in_one_sentence(shop: Shop) -> None:
    exporter = shop.command("orders", "export", "-", "--from", "30.11.2026")
    assert await exporter.run_to_end() == 1
    assert exporter.stderr.strip() == (
        "Orders not exported: '30.11.2026' is not a date; write it as YYYY-MM-DD."
    )
    assert exporter.stdout == ""
    reversed_range = shop.command(
        "orders", "export", "-", "--from", "2026-11-02", "--to", "2026-11-01"
    )
    assert await reversed_range.run_to_end() == 1
    assert reversed_range.stderr.strip() == "Orders not exported: --from is after --to."


async def test_orders_export_to_a_path_it_cannot_write_is_one_sentence(shop: Shop) -> None:
    missing = shop.tmp_path / "no-such-dir" / "orders.csv"
    exporter = shop.command("orders", "export", str(missing))
    assert await exporter.run_to_end() == 1
    assert exporter.stderr.strip() == (
        f"Orders not exported: cannot write {missing}: No such file or directory."
    )
    assert "Traceback" not in exporter.stderr


@pytest.mark.parametrize("where", ["missing", "directory"])
async def test_catalog_export_to_a_path_it_cannot_write_is_one_sentence(
    shop: Shop, where: str
) -> None:
    target = shop.tmp_path / "no-such-dir" / "catalog.toml"
    reason = "No such file or directory"
    if where == "directory":
        target = shop.tmp_path / "a-folder"
        target.mkdir()
        reason = "Is a directory"
    exporter = shop.command("catalog", "export", str(target))
    assert await exporter.run_to_end() == 1
    assert exporter.stderr.strip() == f"Catalog not exported: cannot write {target}: {reason}."
    assert exporter.stdout == ""
