"""Backoff arithmetic for the client's retry loop (no tenacity: this is all we need)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by a total deadline.

    The n-th pause (n = 1, 2, ...) is drawn from ``[d/2, d]`` with
    ``d = min(max_delay, base_delay * 2 ** (n - 1))``; a server's ``Retry-After`` is a floor.
    """

    max_attempts: int = 4
    total_deadline: float = 30.0
    base_delay: float = 0.25
    max_delay: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.total_deadline <= 0:
            raise ValueError("total_deadline must be > 0")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        pause = cap / 2 + self.rng.uniform(0, cap / 2)
        if retry_after is not None:
            pause = max(pause, retry_after)
        return pause


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 3600.0))
