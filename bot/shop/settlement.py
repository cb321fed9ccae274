"""settle_invoices: the only way an order becomes paid (webhook, reconciliation, expiry, Check
payment and /recheck all call it). It maps Crypto Pay's invoices to storage's payments, with
the check of each payment against its order, and hands them to storage.settle_many."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from bot.context import ShopContext
from bot.shop.review_reasons import AMOUNT, ASSET, CURRENCY, NOTHING_PAID, review_reason
from bot.shop.stock_alerts import alert_low_stock_quietly
from payments import Invoice
from storage import Order, SettleOutcome, SettlePayment, SettleResult, settle_many

log = logging.getLogger("bot.settlement")


@dataclass(frozen=True)
class SettleReport:
    outcome: str  # a SettleOutcome value, or the invoice status when it is not paid
    order_id: int | None = None
    changed: bool = False  # an order changed (settled, late, to refund or to review)


MONEY_QUANTUM = Decimal("0.00000001")  # the scale our money columns keep


def to_stored(amount: Decimal | None) -> Decimal | None:
    """Crypto amounts may carry up to 18 decimals; we keep 8, rounding down — a refund of the
    stored amount can then never exceed what was actually paid."""
    return None if amount is None else amount.quantize(MONEY_QUANTUM, rounding=ROUND_DOWN)


def order_id_from_payload(payload: str | None) -> int | None:
    if payload is None:
        return None
    payload = payload.strip()
    return int(payload) if payload.isdigit() and len(payload) < 19 else None


def mismatch(invoice: Invoice, order: Order, accepted: tuple[str, ...]) -> str | None:
    """Why this payment does not match the order we invoiced, or None when it does: a
    stored reason (bot/screens/review_reasons.py) that each admin reads in their language."""
    if invoice.currency_type != "fiat" or (invoice.fiat or "").upper() != order.currency.upper():
        shown = invoice.fiat if invoice.currency_type == "fiat" else invoice.asset
        return review_reason(CURRENCY, invoice=shown or "", order=order.currency)
    if invoice.amount != order.total:
        return review_reason(AMOUNT, invoice=str(invoice.amount), order=str(order.total))
    asset = invoice.paid_asset
    allowed = set(invoice.accepted_assets or accepted)
    if not asset or invoice.paid_amount is None or invoice.paid_amount <= 0:
        return review_reason(NOTHING_PAID)
    if asset not in allowed:
        return review_reason(ASSET, asset=asset)
    return None


def payment_of(invoice: Invoice, *, source: str, raw_body: str = "") -> SettlePayment:
    """The storage's view of a paid invoice."""
    paid = invoice.paid_amount if invoice.paid_amount is not None else invoice.amount
    return SettlePayment(
        order_id=order_id_from_payload(invoice.payload),
        invoice_id=invoice.invoice_id,
        paid_asset=invoice.paid_asset or invoice.asset or "",
        paid_amount=to_stored(paid) or Decimal(0),
        fee_asset=invoice.fee_asset,
        fee_amount=to_stored(invoice.fee_amount),
        paid_at=invoice.paid_at or datetime.now(UTC),
        source=source,
        raw_body=raw_body,
    )


async def settle_invoices(
    ctx: ShopContext,
    invoices: Sequence[Invoice],
    *,
    source: str,
    raw_bodies: Sequence[str] | None = None,
) -> list[SettleReport | Exception]:
    """Record and apply Crypto Pay invoices we were told about (duplicates are no-ops); one
    report per invoice, or the exception its settlement failed with.

    The paid ones are settled together (storage.settle_many: one transaction per batch),
    each checked against its order (`mismatch`) inside it: settled, or marked for review
    there and then. An invoice that is not paid is reported by its status."""
    bodies = raw_bodies if raw_bodies is not None else [""] * len(invoices)
    paid = [(i, inv) for i, inv in enumerate(invoices) if inv.status == "paid"]
    payments = [payment_of(inv, source=source, raw_body=bodies[i]) for i, inv in paid]
    invoice_of = {id(p): inv for p, (_, inv) in zip(payments, paid, strict=True)}
    accepted = ctx.settings.accepted_assets

    def verify(payment: SettlePayment, order: Order) -> str | None:
        return mismatch(invoice_of[id(payment)], order, accepted)

    outcomes = await settle_many(
        ctx.db,
        payments,
        verify,
        admins=ctx.settings.admin_ids,
        referral_percent=ctx.settings.referral_reward_percent,
    )
    reports: list[SettleReport | Exception] = [SettleReport(inv.status) for inv in invoices]
    for (index, invoice), outcome in zip(paid, outcomes, strict=True):
        reports[index] = (
            outcome if isinstance(outcome, Exception) else _report(ctx, invoice, source, outcome)
        )
    if any(isinstance(r, SettleReport) and r.changed for r in reports):
        ctx.outbox_wakeup.set()
    sold: dict[int, int] = {}
    for o in outcomes:
        if isinstance(o, SettleResult) and o.changed:
            for pid, codes in o.codes.items():
                sold[pid] = sold.get(pid, 0) + len(codes)
    if sold:
        await alert_low_stock_quietly(ctx, sold)
    return reports


async def settle_invoice(
    ctx: ShopContext, invoice: Invoice, *, source: str, raw_body: str = ""
) -> SettleReport:
    """`settle_invoices` of one invoice; raises what its settlement failed with."""
    (report,) = await settle_invoices(ctx, [invoice], source=source, raw_bodies=[raw_body])
    if isinstance(report, Exception):
        raise report
    return report


def _report(ctx: ShopContext, invoice: Invoice, source: str, result: SettleResult) -> SettleReport:
    """Count and log one settlement."""
    outcome = result.outcome
    order_id = result.order.id if result.order else None
    extra = {"invoice_id": invoice.invoice_id, "source": source, "order_id": order_id}
    ctx.metrics.settlements.labels(source=source, outcome=outcome.value).inc()
    if outcome == SettleOutcome.UNKNOWN_ORDER:
        log.warning("paid invoice for no order of ours; recorded", extra=extra)
    elif outcome == SettleOutcome.NEEDS_REVIEW:
        reason = result.order.attention_reason if result.order else None
        log.warning("payment does not match its order: %s", reason, extra=extra)
    elif result.changed:
        log.info("order settled: %s", outcome.value, extra=extra)
    return SettleReport(outcome.value, order_id, result.changed)


async def recheck_order(ctx: ShopContext, order: Order, *, source: str) -> str:
    """Look the order's invoice up now and settle it if paid; returns the invoice status."""
    if order.invoice_id is None:
        return "none"
    invoices = await ctx.cryptopay.get_invoices(invoice_ids=[order.invoice_id])
    if not invoices:
        return "none"
    invoice = invoices[0]
    if invoice.status == "paid":
        await settle_invoice(ctx, invoice, source=source)
    return invoice.status
