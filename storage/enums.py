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
    NEEDS_REVIEW = "needs_review"  # mark_needs_review: amount/asset mismatch recorded
