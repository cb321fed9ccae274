"""Refunds through Crypto Pay `transfer`: plan, confirm, send, retry — paying at most once.

The refund row with its spend_id is committed before the transfer (storage.create_refund
checks, with the order locked, that refunds never exceed what was paid); every later attempt
for that row reuses its spend_id, which Crypto Pay accepts only once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import partial

from bot.context import ShopContext
from bot.screens.messages import NOTICE, buyer_text, items
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from bot.shop.notices import admin_notices_each, in_language_of
from bot.shop.settlement import order_id_from_payload
from payments import CryptoPayError, MethodDisabledError
from storage import (
    InexactMoney,
    OrderDetails,
    OrderNotRefundable,
    OrderStatus,
    OutboxDraft,
    Refund,
    RefundExceedsPaid,
    RefundStatus,
    SpendIdConflict,
    can,
    create_refund,
    enqueue,
    get_order,
    mark_refund_failed,
    mark_refund_sent,
    refunds_for_order,
    sending_refunds,
    to_money,
)

log = logging.getLogger("bot.refunds")

CONFIRM_TTL_SECONDS = 300
# A refund still "sending" this long after it was recorded is no longer in anyone's hands
# (the client gives up after its total deadline): the retry job takes it over.
STALE_SENDING = timedelta(seconds=120)
_NUMBERISH = re.compile(r"^[+-]?[0-9.,]+(e[+-]?[0-9]+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class RefundPlan:
    order_id: int
    buyer_id: int  # Telegram id: where the transfer goes
    asset: str
    amount: Decimal
    reason: str
    admin_id: int


class RefundState(StrEnum):
    SENT = "sent"
    PENDING = "pending"  # outcome unknown: stays "sending", the job retries it
    FAILED = "failed"
    REFUSED = "refused"  # nothing recorded, nothing sent


@dataclass(frozen=True)
class RefundOutcome:
    state: RefundState
    text: str
    transfer_id: int | None = None


# --- planning -------------------------------------------------------------------------------


def parse_amount(text: str) -> Decimal | None:
    try:
        amount = to_money(Decimal(text.replace(",", ".")))
    except (InvalidOperation, InexactMoney, ValueError):
        return None
    return amount if amount > 0 else None


def split_refund_args(args: str) -> tuple[int | None, str | None, str]:
    """`<order_id> [amount] [reason…]` → (order id, amount text or None, reason)."""
    parts = args.split(maxsplit=1)
    order_id = order_id_from_payload(parts[0].lstrip("#")) if parts else None
    if order_id is None:
        return None, None, ""
    rest = parts[1].strip() if len(parts) > 1 else ""
    head, _, tail = rest.partition(" ")
    if head and _NUMBERISH.match(head):
        return order_id, head, tail.strip()
    return order_id, None, rest


def already_refunding(refunds: list[Refund]) -> Decimal:
    return sum((r.amount for r in refunds if r.status != RefundStatus.FAILED), Decimal(0))


async def plan_refund(
    ctx: ShopContext,
    admin_id: int,
    order_id: int,
    amount_text: str | None,
    reason: str,
) -> tuple[RefundPlan | None, str]:
    """The refund /refund would send and the preview text, or None and why not."""
    details = await get_order(ctx.db, order_id)
    if details is None:
        return None, ta.order_not_found(order_id)
    order = details.order
    refundable = can(order.status, OrderStatus.REFUNDED)
    if not refundable or order.paid_amount is None or not order.paid_asset:
        return None, _not_refundable(order_id, order.status)
    refunds = await refunds_for_order(ctx.db, order_id)
    remaining = order.paid_amount - already_refunding(refunds)
    if remaining <= 0:
        return None, ta.fully_refunded(order_id)
    amount = remaining
    if amount_text is not None:
        parsed = parse_amount(amount_text)
        if parsed is None:
            return None, ta.bad_amount(amount_text, order.paid_asset)
        if parsed > remaining:
            return None, ta.exceeds(order_id, parsed, remaining, order.paid_asset)
        amount = parsed
    plan = RefundPlan(
        order_id=order_id,
        buyer_id=details.customer.telegram_id,
        asset=order.paid_asset,
        amount=amount,
        reason=reason[:500],
        admin_id=admin_id,
    )
    text = ta.refund_preview(
        order_id=order_id,
        buyer_text=buyer_text(details),
        items=item_titles(details),
        status=order.status,
        paid=f"{t.plain(order.paid_amount)} {order.paid_asset}",
        refunds=refund_lines(refunds),
        amount=amount,
        asset=order.paid_asset,
        reason=plan.reason,
        expires_in_minutes=max(1, CONFIRM_TTL_SECONDS // 60),
    )
    return plan, text


def _not_refundable(order_id: int, status: str) -> str:
    if status == OrderStatus.REFUNDED:
        return ta.fully_refunded(order_id)
    return ta.not_refundable(order_id, status)


def item_titles(details: OrderDetails) -> list[str]:
    return [f"{title} × {quantity}" for title, quantity in items(details)]


def refund_lines(refunds: list[Refund]) -> list[str]:
    return ta.refunds_lines((r.amount, r.asset, r.status.value, r.transfer_id) for r in refunds)


# --- sending ----------------------------------------------------------------------------------


async def execute_refund(ctx: ShopContext, plan: RefundPlan, token: str) -> RefundOutcome:
    """Record the refund (committed before any transfer), then send it."""
    sequence = len(await refunds_for_order(ctx.db, plan.order_id)) + 1
    spend_id = f"refund-{plan.order_id}-{sequence}-{token}"[:64]
    try:
        refund = await create_refund(
            ctx.db,
            plan.order_id,
            plan.asset,
            plan.amount,
            plan.reason,
            plan.admin_id,
            spend_id,
        )
    except RefundExceedsPaid as error:
        if error.remaining <= 0:
            return RefundOutcome(RefundState.REFUSED, ta.fully_refunded(plan.order_id))
        text = ta.exceeds(plan.order_id, plan.amount, error.remaining, plan.asset)
        return RefundOutcome(RefundState.REFUSED, text)
    except OrderNotRefundable:
        details = await get_order(ctx.db, plan.order_id)
        status = details.order.status if details else "unknown"
        return RefundOutcome(RefundState.REFUSED, _not_refundable(plan.order_id, status))
    except SpendIdConflict:
        return RefundOutcome(RefundState.REFUSED, ta.refund_conflict(plan.order_id))
    log.info(
        "refund recorded",
        extra={"order_id": plan.order_id, "refund_id": refund.id, "spend_id": spend_id},
    )
    return await send_refund(ctx, refund, plan.buyer_id)


async def send_refund(ctx: ShopContext, refund: Refund, buyer_id: int) -> RefundOutcome:
    """One transfer attempt for a recorded refund (the client retries with the same spend_id
    and looks the transfer up after an ambiguous failure)."""
    try:
        transfer = await ctx.cryptopay.transfer(
            buyer_id,
            refund.asset,
            refund.amount,
            refund.spend_id,
            comment=ta.transfer_comment(refund.order_id, refund.reason),
        )
    except CryptoPayError as error:
        return await _after_error(ctx, refund, error, buyer_id)
    return await _sent(ctx, refund, transfer.transfer_id, buyer_id)


async def _lookup(ctx: ShopContext, spend_id: str) -> int | None:
    """The id of the transfer made with this spend_id, if Crypto Pay has one."""
    for transfer in await ctx.cryptopay.get_transfers(spend_id=spend_id):
        if transfer.spend_id is not None and str(transfer.spend_id) == spend_id:
            return transfer.transfer_id
    return None


async def _after_error(
    ctx: ShopContext, refund: Refund, error: CryptoPayError, buyer_id: int
) -> RefundOutcome:
    assert refund.id is not None
    extra = {"order_id": refund.order_id, "refund_id": refund.id, "error": str(error)}
    pending = RefundOutcome(
        RefundState.PENDING, ta.refund_pending(refund.order_id, refund.amount, refund.asset)
    )
    if error.ambiguous or error.retryable:
        log.warning("refund outcome unknown; it stays sending and is retried", extra=extra)
        return pending
    # A definite refusal of this attempt; but an earlier attempt with the same spend_id (the
    # retry job's case) may have gone through: look before marking it failed.
    try:
        transfer_id = await _lookup(ctx, refund.spend_id)
    except CryptoPayError:
        log.warning("refund refused, lookup failed; it stays sending", extra=extra)
        return pending
    if transfer_id is not None:
        return await _sent(ctx, refund, transfer_id, buyer_id)
    await mark_refund_failed(ctx.db, refund.id, str(error)[:500])
    log.warning("refund failed", extra=extra)
    if isinstance(error, MethodDisabledError):
        text = ta.TRANSFERS_HOWTO
    elif any(word in error.name.upper() for word in ("NOT_ENOUGH", "INSUFFICIENT", "BALANCE")):
        text = ta.insufficient_balance(refund.amount, refund.asset)
    else:
        text = ta.refund_refused(error.name, error.description)
    return RefundOutcome(RefundState.FAILED, text)


async def _sent(ctx: ShopContext, refund: Refund, transfer_id: int, buyer_id: int) -> RefundOutcome:
    """The transfer went through: record it, and tell the buyer (`buyer_id`, whom it paid)
    and the admins."""
    assert refund.id is not None
    order_id = refund.order_id
    drafts = await admin_notices_each(
        ctx,
        lambda: ta.refund_sent_notice(
            order_id, refund.amount, refund.asset, transfer_id, refund.admin_id
        ),
        order_id,
        f"refund{refund.id}",
    )
    to_buyer = await in_language_of(
        ctx,
        buyer_id,
        lambda: t.refund_sent_to_buyer(
            order_id, refund.amount, refund.asset, ctx.settings.support_contact
        ),
    )
    drafts.insert(
        0,
        OutboxDraft(
            buyer_id,
            to_buyer,
            kind=NOTICE,
            order_id=order_id,
            dedupe_key=f"refund:{refund.id}",
        ),
    )
    if await mark_refund_sent(ctx.db, refund.id, transfer_id, drafts):
        ctx.outbox_wakeup.set()
        log.info(
            "refund sent",
            extra={"order_id": order_id, "refund_id": refund.id, "transfer_id": transfer_id},
        )
    text = ta.refund_sent(order_id, refund.amount, refund.asset, transfer_id)
    return RefundOutcome(RefundState.SENT, text, transfer_id)


# --- the retry job ----------------------------------------------------------------------------


async def retry_sending_refunds(ctx: ShopContext) -> int:
    """Refunds left "sending" (a timeout, a 5xx, a crash): ask getTransfers(spend_id) whether
    they went through, else send again with the same spend_id. Returns how many got sent."""
    cutoff = ctx.clock() - STALE_SENDING
    sent = 0
    for refund in await sending_refunds(ctx.db):
        if refund.updated_at > cutoff:
            continue  # its confirming admin's request may still be in flight
        assert refund.id is not None
        try:
            transfer_id = await _lookup(ctx, refund.spend_id)
        except CryptoPayError as error:
            log.warning("refund retry postponed: getTransfers failed (%s)", error.name)
            break
        details = await get_order(ctx.db, refund.order_id)
        if details is None:  # an order is never deleted; be safe anyway
            continue
        buyer_id = details.customer.telegram_id
        if transfer_id is not None:
            outcome = await _sent(ctx, refund, transfer_id, buyer_id)
        else:
            outcome = await send_refund(ctx, refund, buyer_id)
        if outcome.state == RefundState.SENT:
            sent += 1
        elif outcome.state == RefundState.FAILED:
            tag = f"refund-failed{refund.id}"
            render = partial(ta.refund_failed_notice, refund.order_id, outcome.text)
            notices = await admin_notices_each(ctx, render, refund.order_id, tag)
            await enqueue(ctx.db, notices)
            ctx.outbox_wakeup.set()
    return sent
