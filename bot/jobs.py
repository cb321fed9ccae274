"""Scheduled jobs (APScheduler 3.11): rates, reconciliation, expiry; plus the outbox worker.

Each job coalesces, never overlaps itself, survives exceptions (logged, retried next round) and,
on PostgreSQL, runs under an advisory lock so that one replica at a time does the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.context import ShopContext
from bot.photos.fetch import PhotoCopier, PhotoFetcher
from bot.runtime.broadcasts import BroadcastRunner
from bot.runtime.delivery import OutboxWorker
from bot.runtime.shared_rates import RatesRefresher
from bot.screens import keyboards
from bot.screens.messages import NOTICE
from bot.screens.orders import first_sku
from bot.screens.texts import texts as t
from bot.shop.notices import in_language_of
from bot.shop.refunds import retry_sending_refunds
from bot.shop.settlement import SettleReport, settle_invoices
from payments import CryptoPayError, Invoice
from storage import (
    SETTLE_BATCH,
    Order,
    OrderStatus,
    OutboxDraft,
    enqueue,
    get_customer_by_id,
    get_order,
    job_lock,
    orders_expired_since,
    overdue_pending_orders,
    pending_orders_with_invoice,
    release_order,
)

log = logging.getLogger("bot.jobs")

BATCH = 1000  # getInvoices takes at most 1,000 ids
REFUND_RETRY_SECONDS = 60
EXPIRY_GRACE_SECONDS = 600
PHOTO_COPY_SECONDS = 300  # products whose photo we hold no copy of yet (URL, file_id)
LOCK_KEYS = {
    "reconcile": 0x5707A01,
    "expire": 0x5707A02,
    "refunds": 0x5707A03,
    "photos": 0x5707A04,
}


async def fetch_invoices(ctx: ShopContext, orders: list[Order]) -> dict[int, Invoice]:
    ids = [o.invoice_id for o in orders if o.invoice_id is not None]
    found: dict[int, Invoice] = {}
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        for invoice in await ctx.cryptopay.get_invoices(invoice_ids=batch, count=len(batch)):
            found[invoice.invoice_id] = invoice
    return found


async def reconcile(ctx: ShopContext) -> int:
    """Settle what Crypto Pay says is paid: pending orders, and those expired within the
    invoice lifetime (a late payment). A missed webhook costs at most one interval."""
    settled = 0
    failure: Exception | None = None  # the first; raised once every page has been tried
    async for orders in _to_reconcile(ctx):
        invoices = await fetch_invoices(ctx, orders)
        paid = [invoice for invoice in invoices.values() if invoice.status == "paid"]
        changed, error = await settle_together(ctx, paid, "reconcile")
        settled, failure = settled + changed, failure or error
    if failure is not None:
        raise failure
    return settled


async def _to_reconcile(ctx: ShopContext) -> AsyncIterator[list[Order]]:
    """Pending orders with an invoice, a page at a time; then those expired within the
    invoice lifetime."""
    after: int | None = None
    while True:
        orders = await pending_orders_with_invoice(ctx.db, limit=BATCH, after_id=after)
        if orders:
            yield orders
        if len(orders) < BATCH:
            break
        after = orders[-1].id
    # Never shorter than the expiry grace, as long again and two rounds: an order expired
    # without Crypto Pay's word (an outage) or living less than a round is still looked at.
    s = ctx.settings
    floor = 2 * EXPIRY_GRACE_SECONDS + 2 * s.reconcile_interval_seconds
    window = max(2 * s.invoice_ttl_seconds, floor)
    since = ctx.clock() - timedelta(seconds=window)
    recent = await orders_expired_since(ctx.db, since, limit=BATCH)
    if recent:
        yield recent


async def settle_together(
    ctx: ShopContext, invoices: list[Invoice], source: str
) -> tuple[int, Exception | None]:
    """Settle these paid invoices a batch at a time: each batch shares one transaction
    (storage.settle_many), so after a webhook outage a backlog of payments costs a commit
    per SETTLE_BATCH, not one each; webhooks arriving meanwhile get their turn between
    batches. Each is settled whatever happens to the others. Returns how many changed an
    order and the first error, for the caller to raise when its round is done (the job
    logs it); any other error is logged here."""
    changed = 0
    errors: list[Exception] = []
    for start in range(0, len(invoices), SETTLE_BATCH):
        batch = invoices[start : start + SETTLE_BATCH]
        for outcome in await settle_invoices(ctx, batch, source=source):
            if isinstance(outcome, SettleReport):
                changed += outcome.changed
            else:
                errors.append(outcome)
    first = errors[0] if errors else None
    # A database failure hands every payment of a batch the same exception: log it once.
    for error in {id(e): e for e in errors if e is not first}.values():
        log.error("settling a paid invoice failed (%s)", source, exc_info=error)
    return changed, first


async def expire(ctx: ShopContext) -> int:
    """Overdue pending orders: checked once more (paid → settle), else expired and released."""
    orders = await overdue_pending_orders(ctx.db, ctx.clock(), limit=BATCH)
    if not orders:
        return 0
    try:
        invoices = await fetch_invoices(ctx, orders)
    except CryptoPayError as error:
        # Without Crypto Pay's word we wait a little: a payment may be landing right now. Past
        # the grace period the stock goes back on sale anyway; a payment that still arrives is
        # a late payment, which settle handles (fulfilled if stock allows, else refunded).
        cutoff = ctx.clock() - timedelta(seconds=EXPIRY_GRACE_SECONDS)
        orders = [o for o in orders if o.expires_at <= cutoff]
        log.warning(
            "getInvoices failed (%s): expiring only the %d order(s) overdue by more than %ds",
            error.name,
            len(orders),
            EXPIRY_GRACE_SECONDS,
        )
        invoices = {}
    found = [invoices.get(order.invoice_id or -1) for order in orders]
    paid = [i for i in found if i is not None and i.status == "paid"]
    _, failure = await settle_together(ctx, paid, "expiry")
    expired = 0
    for order, invoice in zip(orders, found, strict=True):
        assert order.id is not None
        if invoice is not None and invoice.status == "paid":
            continue  # settled above
        if invoice is not None and invoice.status == "active":
            try:
                await ctx.cryptopay.delete_invoice(invoice.invoice_id)
            except CryptoPayError as error:
                log.info("deleteInvoice failed (%s); it expires by itself", error.name)
        if await release_order(ctx.db, order.id, OrderStatus.EXPIRED, abandoned=True):
            expired += 1
            customer_chat = await _buyer_chat(ctx, order)
            if customer_chat is not None:
                text = await in_language_of(ctx, customer_chat, partial(t.order_expired, order.id))
                await enqueue(
                    ctx.db,
                    [
                        OutboxDraft(
                            customer_chat,
                            text,
                            kind=NOTICE,
                            order_id=order.id,
                            dedupe_key=f"expired:{order.id}",
                            reply_markup=await _buy_again(ctx, order.id),
                        )
                    ],
                )
                ctx.outbox_wakeup.set()
            log.info("order expired", extra={"order_id": order.id})
    if failure is not None:
        raise failure
    return expired


async def _buy_again(ctx: ShopContext, order_id: int) -> str | None:
    """The expiry notice's Buy again button (JSON), to the order's first product's card."""
    details = await get_order(ctx.db, order_id)
    sku = None if details is None else first_sku(details)
    if sku is None:
        return None
    return keyboards.buy_again(sku).model_dump_json(exclude_none=True)


async def _buyer_chat(ctx: ShopContext, order: Order) -> int | None:
    customer = await get_customer_by_id(ctx.db, order.customer_id)
    return None if customer is None else customer.telegram_id


class Jobs:
    def __init__(self, ctx: ShopContext) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.outbox = OutboxWorker(ctx)
        self.broadcasts = BroadcastRunner(ctx, self.outbox)
        self.rates = RatesRefresher(ctx.rates, ctx.settings.rates_refresh_seconds, ctx.redis)
        self.photos = PhotoCopier(ctx.db, PhotoFetcher(bot=ctx.bot))

    def _guarded(
        self, name: str, body: Callable[[ShopContext], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                key = LOCK_KEYS.get(name)
                if key is None:
                    await body(self.ctx)
                else:
                    async with job_lock(self.ctx.db, key) as mine:
                        if not mine:
                            self.ctx.metrics.job_runs.labels(job=name, result="skipped").inc()
                            return
                        await body(self.ctx)
                self.ctx.metrics.job_runs.labels(job=name, result="ok").inc()
            except asyncio.CancelledError:
                log.info("job %s interrupted by shutdown; it runs again after restart", name)
            except Exception:
                self.ctx.metrics.job_runs.labels(job=name, result="error").inc()
                log.exception("job %s failed; it runs again next round", name)

        return run

    def start(self) -> None:
        s = self.ctx.settings
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        now = self.ctx.clock()
        jobs: list[tuple[str, Callable[[ShopContext], Awaitable[object]], float]] = [
            ("rates", lambda ctx: self.rates.refresh(), s.rates_refresh_seconds),
            ("reconcile", reconcile, s.reconcile_interval_seconds),
            ("expire", expire, min(15, s.reconcile_interval_seconds)),
            ("refunds", retry_sending_refunds, REFUND_RETRY_SECONDS),
            ("photos", lambda ctx: self.photos.run(), PHOTO_COPY_SECONDS),
        ]
        for name, body, seconds in jobs:
            self.scheduler.add_job(
                self._guarded(name, body),
                "interval",
                seconds=seconds,
                next_run_time=now,
                id=name,
                name=name,
                **common,
            )
        self.scheduler.start()
        self.outbox.start()
        self.broadcasts.start()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.broadcasts.stop()
        await self.outbox.stop()
