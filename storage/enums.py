"""State names, stored in the database as their lower-case values. (Which order state may
follow which, and the groups of them: storage/order_states.py.)"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"  # paid, but amount/asset did not match the order
    NEEDS_REFUND = "needs_refund"  # paid after expiry and no stock left
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class StockStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    SOLD = "sold"


class RefundStatus(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class SettleOutcome(StrEnum):
    SETTLED = "settled"  # pending -> paid, reserved units sold
    LATE_SETTLED = "late_settled"  # expired/cancelled -> paid, fresh units sold
    NEEDS_REFUND = "needs_refund"  # paid late and not enough stock
    DUPLICATE = "duplicate"  # this invoice was already settled: nothing changed
    UNKNOWN_ORDER = "unknown_order"  # no such order, or it belongs to another invoice
    NEEDS_REVIEW = "needs_review"  # the payment does not match its order: recorded for a human


class OutboxKind(StrEnum):
    """What an outbox row announces. A settlement commits only these facts (kind, order,
    recipient); the text is composed when the message is sent (bot/screens/outgoing.py)."""

    GOODS = "goods"  # the buyer's goods: the order is paid
    LATE_NEEDS_REFUND = "late_needs_refund"  # the buyer: paid late, sold out, refund coming
    UNDER_REVIEW = "under_review"  # the buyer: the payment did not match the order
    ORDER_MESSAGE = "order_message"  # edit the order message to the order's state now
    ADMIN_PAID = "admin_paid"
    ADMIN_LATE_PAID = "admin_late_paid"  # paid after expiry/cancel, fulfilled from stock
    ADMIN_NEEDS_REFUND = "admin_needs_refund"
    ADMIN_NEEDS_REVIEW = "admin_needs_review"
    # The referrer: their friend's first order (order_id) is paid; their reward code.
    REFERRAL_REWARD = "referral_reward"
    # Rows that carry their own text (refund notices, expiry notices, …).
    NOTICE = "notice"
    ADMIN = "admin"
    BROADCAST = "broadcast"  # a broadcast's message (its text is the broadcast's)


# The kinds addressed to admins: sent after the buyers' messages, and joined into one
# message per admin when several are waiting.
ADMIN_KINDS = frozenset(
    {
        OutboxKind.ADMIN_PAID,
        OutboxKind.ADMIN_LATE_PAID,
        OutboxKind.ADMIN_NEEDS_REFUND,
        OutboxKind.ADMIN_NEEDS_REVIEW,
        OutboxKind.ADMIN,
    }
)


class BroadcastStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # an admin's Stop: nothing more is sent
    DONE = "done"
