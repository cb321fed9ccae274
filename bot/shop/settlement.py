"""settle_invoice: the only way an order becomes paid (webhook, reconciliation, expiry, Check
payment and /recheck all call it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from bot.context import ShopContext
from bot.shop.messages import render_settlement
from payments import Invoice
from storage.enums import SettleOutcome
from storage.models import Order
from storage.settlement import SettlePayment, settle

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
    """Why this payment does not match the order we invoiced, or None when it does."""
    if invoice.currency_type != "fiat" or (invoice.fiat or "").upper() != order.currency.upper():
        shown = invoice.fiat if invoice.currency_type == "fiat" else invoice.asset
        return f"invoice is in {shown}, the order in {order.currency}"
    if invoice.amount != order.total:
        return f"invoice amount {invoice.amount} differs from the order total {order.total}"
    asset = invoice.paid_asset
    allowed = set(invoice.accepted_assets or accepted)
    if not asset or invoice.paid_amount is None or invoice.paid_amount <= 0:
        return "the invoice says paid but names no paid asset or amount"
    if asset not in allowed:
        return f"paid in {asset}, which the order did not accept"
    return None


async def settle_invoice(
    ctx: ShopContext, invoice: Invoice, *, source: str, raw_body: str = ""
) -> SettleReport:
    """Record and apply a Crypto Pay invoice we were told about; duplicates are no-ops.

    One storage transaction: the order is found by the invoice id (or, before its invoice is
    recorded, by our payload), the payment is checked against it (`mismatch`) and the order
    is either settled or marked for review there and then."""
    extra = {"invoice_id": invoice.invoice_id, "source": source}
    if invoice.status != "paid":
        return SettleReport(invoice.status)
    payment = SettlePayment(
        order_id=order_id_from_payload(invoice.payload),
        invoice_id=invoice.invoice_id,
        paid_asset=invoice.paid_asset or invoice.asset or "",
        paid_amount=to_stored(
            invoice.paid_amount if invoice.paid_amount is not None else invoice.amount
        )
        or Decimal(0),
        fee_asset=invoice.fee_asset,
        fee_amount=to_stored(invoice.fee_amount),
        paid_at=invoice.paid_at or datetime.now(UTC),
        source=source,
        raw_body=raw_body,
    )
    accepted = ctx.settings.accepted_assets

    def verify(order: Order) -> str | None:
        return mismatch(invoice, order, accepted)

    result = await settle(ctx.db, payment, render_settlement(ctx.settings.admin_ids), verify=verify)
    outcome = result.outcome
    order_id = result.order.id if result.order else None
    ctx.metrics.settlements.labels(source=source, outcome=outcome.value).inc()
    if outcome == SettleOutcome.UNKNOWN_ORDER:
        log.warning("paid invoice for no order of ours; recorded", extra=extra)
    elif outcome == SettleOutcome.NEEDS_REVIEW:
        reason = result.order.attention_reason if result.order else None
        log.warning(
            "payment does not match its order: %s", reason, extra={**extra, "order_id": order_id}
        )
        ctx.outbox_wakeup.set()
    elif result.changed:
        log.info("order settled: %s", outcome.value, extra={**extra, "order_id": order_id})
        ctx.outbox_wakeup.set()
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
