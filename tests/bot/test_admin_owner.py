"""The owner's chat (issue #14): admin /help and commands, /orders rows and back path,
/stock without a sku, the low-stock alert, and admin alerts with what to do next."""

from __future__ import annotations

from storage import OutboxKind
from tests.bot.conftest import ADMIN_ID, Shop
from tests.bot.test_admin import send_document
from tests.bot.test_refunds import paid_order


async def low_stock_alerts(shop: Shop) -> list[str]:
    rows = await shop.outbox(kind=OutboxKind.ADMIN)
    return [r.text for r in rows if "Low stock" in r.text]


async def test_low_stock_alert_comes_once_per_fall_not_once_per_sale(shop: Shop) -> None:
    # "multi" has 5 codes; LOW_STOCK_THRESHOLD is 3 by default.
    await paid_order(shop, "multi", 1)
    assert await low_stock_alerts(shop) == []
    await paid_order(shop, "multi", 1)
    (alert,) = await low_stock_alerts(shop)
    assert "Multi Key" in alert and "3 codes left" in alert and "<code>multi</code>" in alert
    await paid_order(shop, "multi", 1)
    await paid_order(shop, "multi", 1)
    assert len(await low_stock_alerts(shop)) == 1

    # A restock arms it again: the next fall to the threshold alerts once more.
    await send_document(shop, "codes.txt", b"NEW-1\nNEW-2\nNEW-3\n", "multi")  # 1 + 3 = 4
    assert len(await low_stock_alerts(shop)) == 1
    await paid_order(shop, "multi", 1)
    await paid_order(shop, "multi", 1)
    alerts = await low_stock_alerts(shop)
    assert len(alerts) == 2 and "3 codes left" in alerts[1]
    assert all(r.chat_id == ADMIN_ID for r in await shop.outbox(kind=OutboxKind.ADMIN))


async def test_unlimited_and_plentiful_products_never_alert(shop: Shop) -> None:
    await paid_order(shop, "guide", 1)
    await paid_order(shop, "multi", 1)
    assert await low_stock_alerts(shop) == []
