"""Why a payment needs review, stored on the order so that each admin reads it in their
own language.

`mismatch` (bot/shop/settlement.py) decides; the reason is stored as a small JSON object
(`{"reason": "amount", "invoice": "1.00", "order": "9.99"}`) in `orders.attention_reason`, and
`en_admin.review_reason_text` renders it through gettext when a notice or `/order` is shown.
A stored reason that is not one of these (older orders kept free English text) is shown as
it is.
"""

from __future__ import annotations

import json

CURRENCY = "currency"  # invoice: the invoice's fiat or asset, order: the order's currency
AMOUNT = "amount"  # invoice: the invoice's amount, order: the order's total
NOTHING_PAID = "nothing_paid"  # the invoice says paid but names no asset or amount
ASSET = "asset"  # asset: paid in an asset the order did not accept

REASONS = {
    CURRENCY: ("invoice", "order"),
    AMOUNT: ("invoice", "order"),
    NOTHING_PAID: (),
    ASSET: ("asset",),
}


def review_reason(reason: str, **values: str) -> str:
    """The stored form of `reason` with its values."""
    if reason not in REASONS or set(values) != set(REASONS[reason]):
        raise ValueError(f"unknown review reason {reason!r} or values {sorted(values)}")
    return json.dumps({"reason": reason, **values}, separators=(",", ":"), sort_keys=True)


def parse_review_reason(stored: str) -> tuple[str, dict[str, str]] | None:
    """(reason, values) of a stored reason; None for text that is not one (shown as is)."""
    try:
        data = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    reason = data.pop("reason", None)
    if reason not in REASONS or set(data) != set(REASONS[reason]):
        return None
    if not all(isinstance(value, str) for value in data.values()):
        return None
    return reason, data
