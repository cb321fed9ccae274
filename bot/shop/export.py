"""Orders as CSV (/export and `python -m bot orders export`): the same rows from both, read a
page at a time and written as they come, so memory does not grow with the range."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TextIO

from storage import EXPORT_PAGE, Database, ExportedOrder, export_orders

DEFAULT_DAYS = 30
HEADER = (
    "order_id",
    "created_at",
    "paid_at",
    "status",
    "buyer_id",
    "buyer_username",
    "lines",
    "subtotal",
    "discount",
    "promo_code",
    "total",
    "currency",
    "paid_asset",
    "paid_amount",
    "refunded_amount",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such a text cell is written with a leading apostrophe, which the spreadsheet hides.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadRange(ValueError):
    """The dates asked for are not a range; `reason` names what is wrong."""

    def __init__(self, reason: str, value: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # "format" | "order"
        self.value = value


@dataclass(frozen=True, slots=True)
class DateRange:
    first: date  # inclusive, UTC
    last: date  # inclusive, UTC

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=UTC)

    @property
    def file_name(self) -> str:
        return f"orders-{self.first.isoformat()}-{self.last.isoformat()}.csv"


def parse_day(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise BadRange("format", text)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRange("format", text) from None


def date_range(first: str | None, last: str | None, today: date) -> DateRange:
    """[first, last] from YYYY-MM-DD texts; by default the last DEFAULT_DAYS days up to
    today, and with only `first`, from it up to today. BadRange when it is none."""
    end = parse_day(last) if last else today
    start = parse_day(first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRange("order", f"{start.isoformat()} {end.isoformat()}")
    return DateRange(start, end)


def split_range_args(args: str, today: date) -> DateRange:
    """/export's arguments: `[from] [to]`."""
    words = args.split()
    if len(words) > 2:
        raise BadRange("format", args)
    first, last = [*words, None, None][:2]
    return date_range(first, last, today)


def safe_cell(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def decimal_text(value: Decimal | None) -> str:
    """The exact amount in plain digits (never an exponent, never a float)."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def time_text(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def row_of(order: ExportedOrder) -> list[str]:
    return [
        str(order.order_id),
        time_text(order.created_at),
        time_text(order.paid_at),
        order.status,
        str(order.buyer_id),
        safe_cell(order.buyer_username),
        safe_cell("; ".join(f"{sku}×{qty}" for sku, qty in order.lines)),
        decimal_text(order.subtotal),
        decimal_text(order.discount),
        safe_cell(order.promo_code.upper() if order.promo_code else None),
        decimal_text(order.total),
        order.currency,
        safe_cell(order.paid_asset),
        decimal_text(order.paid_amount),
        decimal_text(order.refunded),
    ]


async def write_orders_csv(
    db: Database, out: TextIO, span: DateRange, *, page_size: int = EXPORT_PAGE
) -> int:
    """The orders created in `span` as CSV into `out` (opened with newline=""); how many."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    count = 0
    async for page in export_orders(db, span.since, span.until, page=page_size):
        writer.writerows(row_of(order) for order in page)
        count += len(page)
    return count
