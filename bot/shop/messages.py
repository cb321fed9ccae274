"""The outbox drafts a settlement writes: the buyer's goods and the admins' notices."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from html import escape

from bot.texts import texts as t
from storage.enums import SettleOutcome
from storage.models import OrderLine, Product
from storage.outbox import OutboxDraft
from storage.settlement import SettleContext

# Telegram's limit is 4096 characters; beyond this many codes go as a .txt document.
MAX_INLINE_TEXT = 3500

GOODS = "goods"
NOTICE = "notice"
ADMIN = "admin"


def goods(
    lines: Iterable[OrderLine], products: Mapping[int, Product], codes: Mapping[int, list[str]]
) -> list[str]:
    """What the buyer receives: each line's sold codes, or the content of unlimited products."""
    result: list[str] = []
    for line in lines:
        product = products.get(line.product_id)
        if product is not None and product.unlimited:
            result.append(product.content or "")
        else:
            result.extend(codes.get(line.product_id, []))
    return result


def _summary(ctx: SettleContext) -> str:
    return ", ".join(
        f"{escape(ctx.products[line.product_id].title)} × {line.quantity}" for line in ctx.lines
    )


def buyer_goods(ctx: SettleContext) -> OutboxDraft:
    order_id = ctx.order.id
    assert order_id is not None
    delivered = goods(ctx.lines, ctx.products, ctx.codes)
    text = t.goods_message(order_id, delivered)
    if len(text) <= MAX_INLINE_TEXT:
        return OutboxDraft(
            ctx.buyer_telegram_id,
            text,
            kind=GOODS,
            order_id=order_id,
            dedupe_key=f"goods:{order_id}",
        )
    return OutboxDraft(
        ctx.buyer_telegram_id,
        t.goods_document_caption(order_id, len(delivered)),
        kind=GOODS,
        order_id=order_id,
        document_name=f"order-{order_id}.txt",
        document_data=("\n".join(delivered) + "\n").encode(),
        dedupe_key=f"goods:{order_id}",
    )


def admin_notices(
    text: str, admin_ids: Iterable[int], order_id: int, tag: str
) -> list[OutboxDraft]:
    return [
        OutboxDraft(
            admin, text, kind=ADMIN, order_id=order_id, dedupe_key=f"{tag}:{order_id}:{admin}"
        )
        for admin in sorted(admin_ids)
    ]


def render_settlement(admin_ids: frozenset[int]) -> Callable[[SettleContext], list[OutboxDraft]]:
    """The `render` callback of storage.settle: runs inside the settle transaction."""

    def render(ctx: SettleContext) -> list[OutboxDraft]:
        order = ctx.order
        assert order.id is not None
        paid = (
            f"{t.plain(order.paid_amount)} {escape(order.paid_asset or '')}"
            if order.paid_amount is not None
            else "?"
        )
        total = t.money(order.total, order.currency)
        if ctx.outcome == SettleOutcome.NEEDS_REFUND:
            buyer_text = t.late_payment_needs_refund(order.id)
            alert = t.admin_needs_refund(order.id, paid, _summary(ctx))
        elif ctx.outcome == SettleOutcome.NEEDS_REVIEW:
            buyer_text = t.payment_under_review(order.id)
            alert = t.admin_needs_review(order.id, order.attention_reason or "", paid, total)
        else:
            late = ctx.outcome == SettleOutcome.LATE_SETTLED
            notice = t.admin_paid(order.id, _summary(ctx), total, paid, late=late)
            return [buyer_goods(ctx), *admin_notices(notice, admin_ids, order.id, "paid")]
        buyer = OutboxDraft(
            ctx.buyer_telegram_id,
            buyer_text,
            kind=NOTICE,
            order_id=order.id,
            dedupe_key=f"{ctx.outcome.value}:{order.id}",
        )
        return [buyer, *admin_notices(alert, admin_ids, order.id, "attention")]

    return render
