"""The low-stock alert: admins hear once when a product's unsold codes fall to
LOW_STOCK_THRESHOLD.

No table remembers the alert. Its outbox row's dedupe key names the product and how many
codes it has ever had (available + reserved + sold): sales only lower the unsold count, so
while no codes are added the key stays the same and the alert goes once; an upload changes
the key and arms the alert again. Checked after each settlement that sold codes, outside its
transaction; a check that fails is made again by the product's next sale.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.context import ShopContext
from bot.screens.texts import en_admin as ta
from storage import OutboxDraft, OutboxKind, enqueue, products_by_id, stock_counts_many

log = logging.getLogger("bot.stock")


async def alert_low_stock(ctx: ShopContext, product_ids: Iterable[int]) -> int:
    """Queue the alert for each of these products now at or below the threshold (once per
    fall); returns how many products were alerted about for the first time."""
    admins = sorted(ctx.settings.admin_ids)
    ids = sorted(set(product_ids))
    if not admins or not ids:
        return 0
    threshold = ctx.settings.low_stock_threshold
    counts = await stock_counts_many(ctx.db, ids)
    low = {pid: c for pid, c in counts.items() if c.available + c.reserved <= threshold}
    if not low:
        return 0
    products = await products_by_id(ctx.db, list(low))
    drafts = []
    for pid, c in low.items():
        product = products.get(pid)
        if product is None or product.unlimited:
            continue
        left, ever = c.available + c.reserved, c.available + c.reserved + c.sold
        text = ta.low_stock(product.title, product.sku, left)
        drafts += [
            OutboxDraft(admin, text, kind=OutboxKind.ADMIN, dedupe_key=f"low:{pid}:{ever}:{admin}")
            for admin in admins
        ]
    queued = await enqueue(ctx.db, drafts)
    if queued:
        ctx.outbox_wakeup.set()
    return len(queued) // len(admins)


async def alert_low_stock_quietly(ctx: ShopContext, product_ids: Iterable[int]) -> None:
    """`alert_low_stock` for a settlement that has committed: its failure is logged, never
    the settlement's."""
    try:
        await alert_low_stock(ctx, product_ids)
    except Exception:
        log.exception("could not check the stock for the low-stock alert")
