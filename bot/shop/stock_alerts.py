"""The low-stock alert: admins hear once when a sale leaves a product's unsold codes
(available + reserved) at or below LOW_STOCK_THRESHOLD.

No table remembers the alert: the first such sale queues it, later sales do not (the same
dedupe key), and an upload of codes arms it again. The key names the product and how many
codes it has ever had (unsold + sold), so two replicas settling the last sales at once
still send it once. Checked after the
settlement commits, outside its transaction: a failed check is logged, not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.context import ShopContext
from bot.i18n import use_language
from bot.screens.texts import en_admin as ta
from bot.shop.customers import languages_of
from storage import (
    OutboxDraft,
    OutboxKind,
    enqueue,
    products_by_id,
    queued_keys,
    stock_counts_many,
)

log = logging.getLogger("bot.stock")


async def alert_low_stock(ctx: ShopContext, sold: Mapping[int, int]) -> int:
    """Queue the alert for each product whose sale just now (`sold`: product id → units
    sold by the settlement that committed) crossed the threshold; returns how many."""
    admins = sorted(ctx.settings.admin_ids)
    if not admins or not sold:
        return 0
    threshold = ctx.settings.low_stock_threshold
    counts = await stock_counts_many(ctx.db, sorted(sold))
    # At or below the threshold after this sale. The first sale there queues the alert;
    # later ones, and a settlement racing this one that read the same counts, hit its
    # dedupe key (it changes only when codes are added), so it goes out once.
    low = {pid: c for pid, c in counts.items() if c.available + c.reserved <= threshold}
    if not low:
        return 0
    products = await products_by_id(ctx.db, list(low))
    languages = await languages_of(ctx, admins)
    drafts = []
    for pid, c in low.items():
        product = products.get(pid)
        if product is None or product.unlimited:
            continue
        left, ever = c.available + c.reserved, c.available + c.reserved + c.sold
        for admin in admins:
            with use_language(languages[admin]):
                text = ta.low_stock(product.title, product.sku, left)
            key = f"low:{pid}:{ever}:{admin}"
            drafts.append(OutboxDraft(admin, text, kind=OutboxKind.ADMIN, dedupe_key=key))
    # Every sale while the stock stays low gets here: read first, write only a new alert.
    known = await queued_keys(ctx.db, [d.dedupe_key for d in drafts if d.dedupe_key])
    drafts = [d for d in drafts if d.dedupe_key not in known]
    if not drafts:
        return 0
    queued = await enqueue(ctx.db, drafts)
    if queued:
        ctx.outbox_wakeup.set()
    return len(queued) // len(admins)


async def alert_low_stock_quietly(ctx: ShopContext, sold: Mapping[int, int]) -> None:
    """`alert_low_stock` for a settlement that has committed: its failure is logged, never
    the settlement's."""
    try:
        await alert_low_stock(ctx, sold)
    except Exception:
        log.exception("could not check the stock for the low-stock alert")
