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

from bot.callbacks import parse_id
from bot.context import ShopContext
from bot.screens.messages import NOTICE, buyer_text, items
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from bot.shop.notices import admin_notices_each, in_language_of
from bot.shop.settlement import to_stored
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


# The amount after the order id: a plain decimal (dot, no sign, no exponent, no grouping),
# optionally followed by a code, with or without a space: `5.50`, `5.50 USDT`, `5.50USDT`.
_AMOUNT = re.compile(r"(?P<number>[0-9]{1,15}(?:\.[0-9]{1,18})?)(?P<code>[A-Za-z]{2,10})?")
_CODE = re.compile(r"[A-Za-z]{2,10}")
_CODE_LIKE = re.compile(r"[A-Z]{3,5}")  # a word that reads as a currency code, e.g. TON
FULL = "all"  # `/refund 42 all reason…`: everything left, with a reason
# Words that would be read as money if they came first, so never taken as a reason: Crypto
# Pay's asset and fiat codes (../shared/cryptopay/API.md) and number words.
MONEY_WORDS = frozenset(
    "USDT TON BTC ETH LTC BNB TRX USDC SOL DOGE GRAM NOT MY DOGS HMSTR CATI MEMHASH SEND "
    "USD EUR RUB BYN UAH GBP CNY KZT UZS GEL TRY AMD THB INR BRL IDR AZN AED PLN ILS KGS TJS "
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE TWENTY THIRTY FORTY "
    "FIFTY HUNDRED THOUSAND HALF НОЛЬ ОДИН ОДНА ДВА ДВЕ ТРИ ЧЕТЫРЕ ПЯТЬ ДЕСЯТЬ СТО ТЫСЯЧА "
    "ПОЛОВИНА NAN INF INFINITY".split()
)
_WORD = re.compile(r"[^\W\d_]+")  # letters only (any script)


@dataclass(frozen=True)
class RefundArgs:
    """What the admin typed after the order id, read against the order's money."""

    amount: Decimal | None  # None: everything still refundable
    in_currency: bool  # the amount is in the order's currency: that share of its total
    reason: str


def split_refund_args(args: str) -> tuple[int | None, str]:
    """`<order id> [amount [code]] [reason…]` → (order id or None, the text after it)."""
    parts = args.split(maxsplit=1)
    order_id = parse_id(parts[0].lstrip("#")) if parts else None
    return order_id, (parts[1].strip() if order_id is not None and len(parts) > 1 else "")


def read_refund_args(text: str, asset: str, currency: str) -> RefundArgs | None:
    """The amount and reason in `text`, or None when its first word is not an amount we
    accept (`1,000`, `$10`, `ten`, `1e3`, `-1`, `0`, more than 8 decimals, or a code other
    than the paid asset's or the order currency's, glued on or as the next word when that
    word is 3-5 capitals or a known code in any case). Codes match in any case; the words
    after the amount (and its code) are the reason. Text whose first word is a plain word
    (not a number word or a currency code) is all reason, for a refund of everything left:
    `/refund 42 wrong key`."""
    head, rest = _first_word(text)
    if not head:
        return RefundArgs(None, False, "")
    if head.lower() == FULL:
        return RefundArgs(None, False, rest)
    match = _AMOUNT.fullmatch(head)
    if match is None:
        if _WORD.fullmatch(head) and head.upper() not in MONEY_WORDS:
            return RefundArgs(None, False, text.strip())  # `/refund 42 wrong key`: a reason
        return None
    code = match["code"]
    if code is None:
        word, after = _first_word(rest)
        if _CODE.fullmatch(word) and word.upper() in (asset.upper(), currency.upper()):
            code, rest = word, after
        elif _CODE_LIKE.fullmatch(word) or word.upper() in MONEY_WORDS - {"ONE", "ОДИН"}:
            return None  # `5 TON` (or `5 ton`) for an order paid in USDT: which money?
    try:
        amount = to_money(Decimal(match["number"]))
    except (InvalidOperation, InexactMoney):
        return None
    code = (code or asset).upper()
    if amount <= 0 or code not in (asset.upper(), currency.upper()):
        return None
    return RefundArgs(amount, code != asset.upper(), rest)


def _first_word(text: str) -> tuple[str, str]:
    words = text.split(maxsplit=1)
    return (words[0] if words else ""), (words[1].strip() if len(words) > 1 else "")


def asset_amount(args: RefundArgs, total: Decimal, paid: Decimal) -> Decimal | None:
    """The refund in the paid asset: an amount in the order's currency is that share of what
    was paid (the payment's own rate), rounded down to what our money columns keep."""
    if args.amount is None or not args.in_currency:
        return args.amount
    if total <= 0:
        return None
    return to_stored(paid * args.amount / total)


def already_refunding(refunds: list[Refund]) -> Decimal:
    return sum((r.amount for r in refunds if r.status != RefundStatus.FAILED), Decimal(0))


async def plan_refund(
    ctx: ShopContext,
    admin_id: int,
    order_id: int,
    args_text: str = "",
) -> tuple[RefundPlan | None, str]:
    """The refund /refund would send and the preview text, or None and why not.
    `args_text` is what followed the order id (see read_refund_args)."""
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
    args = read_refund_args(args_text, order.paid_asset, order.currency)
    parsed = None if args is None else asset_amount(args, order.total, order.paid_amount)
    if args is None or (args.amount is not None and not parsed):
        typed = " ".join(args_text.split()[:2])[:40]
        return None, ta.refund_amount_forms(typed, order_id, order.paid_asset, order.currency)
    amount = remaining if parsed is None else parsed
    if amount > remaining:
        return None, ta.exceeds(order_id, amount, remaining, order.paid_asset)
    reason = args.reason
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
