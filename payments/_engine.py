"""The request engine under :class:`payments.CryptoPayClient`: one HTTP attempt, the retry
loop, the idempotency recovery of money-moving calls, the shared back-off after a 429, the
optional rate cap and the per-call log line.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._parsing import Parser
from ._transport import Sender, decode
from .errors import CryptoPayError, CryptoPayTimeoutError, RateLimitedError
from .ratelimit import TokenBucket
from .retry import RetryPolicy

log = logging.getLogger("payments.cryptopay")

T = TypeVar("T")
Recover = Callable[[float], Awaitable[Any]]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Kind(enum.Enum):
    """How a method may be repeated."""

    READ = "read"  # get*: repeat on 429, 5xx and transport errors
    IDEMPOTENT = "idempotent"  # delete*: same as reads
    WRITE = "write"  # create*/transfer: repeat only when the request provably did not count


# (method, seconds, error name or None) after every HTTP attempt: metrics hook for the app.
CallObserver = Callable[[str, float, "str | None"], None]


class Engine:
    """Sends ``POST <base_url>/<method>`` with a JSON body and returns the ``result``."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        policy: RetryPolicy,
        timeout: float,
        limiter: TokenBucket | None,
        get_sender: Callable[[], Sender],
        sleep: Callable[[float], Awaitable[object]],
        clock: Callable[[], float],
        observer: CallObserver | None = None,
    ) -> None:
        self._observer = observer
        self._base = base_url + "/"
        self._headers = {"Crypto-Pay-API-Token": token, "Content-Type": "application/json"}
        self.policy = policy
        self._timeout = timeout
        self._limiter = limiter
        self._get_sender = get_sender
        self._sleep = sleep
        self.clock = clock
        # Clock time before which no call of this client is sent (see _hold_off).
        self._not_before = clock()

    def __repr__(self) -> str:
        return f"Engine(base_url={self._base!r})"

    def deadline(self) -> float:
        return self.clock() + self.policy.total_deadline

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        parser: Parser[T],
        *,
        kind: Kind,
        deadline: float | None = None,
        recover: Recover | None = None,
    ) -> T:
        """Call ``method`` with retries.

        ``recover(deadline)`` is for writes that can be looked up (transfer by spend_id,
        invoice by payload): after an ambiguous failure it is awaited first and its non-None
        result is returned instead of sending again.
        """
        if deadline is None:
            deadline = self.clock() + self.policy.total_deadline
        body = _dumps(params).encode()
        attempt = 0
        after_ambiguous = False
        while True:
            attempt += 1
            try:
                return await self._attempt(method, body, parser, attempt, deadline)
            except CryptoPayError as exc:
                err = exc
            if recover is not None:
                if err.ambiguous:
                    found = await self._recover(recover, err, deadline)
                    if found is not None:
                        return parser.from_result(found, method)
                    after_ambiguous = True
                elif after_ambiguous and not err.retryable:
                    # A rejection after an ambiguous attempt (e.g. a reused spend_id) may mean
                    # that attempt did go through: look once more before giving up.
                    found = await self._recover(recover, err, deadline)
                    if found is not None:
                        return parser.from_result(found, method)
                    raise err
            elif err.ambiguous and kind is Kind.WRITE:
                raise err
            if not err.retryable or attempt >= self.policy.max_attempts:
                raise err
            pause = self.policy.delay(attempt, err.retry_after)
            if self.clock() + pause >= deadline:
                raise err
            await self._sleep(pause)

    async def _recover(self, recover: Recover, err: CryptoPayError, deadline: float) -> Any:
        try:
            return await recover(deadline)
        except CryptoPayError as lookup_err:
            # We cannot tell whether the write happened: report the original ambiguity.
            err.ambiguous = True
            raise err from lookup_err

    def _hold_off(self, err: CryptoPayError) -> None:
        """A 429 (or a 503 with Retry-After) slows the whole client down, not just the call
        that got it: the others would only earn more 429s meanwhile."""
        if err.retry_after is not None:
            seconds = err.retry_after
        elif isinstance(err, RateLimitedError):
            seconds = self.policy.delay(1)
        else:
            return
        self._not_before = max(self._not_before, self.clock() + seconds)

    async def _wait_turn(self, method: str, deadline: float) -> None:
        # A loop: another 429 may push the time back while we sleep.
        while (wait := self._not_before - self.clock()) > 0:
            if self.clock() + wait >= deadline:
                # Not sent, so not ambiguous; retryable, so a caller knows to come back later.
                raise RateLimitedError(
                    429,
                    "TOO_MANY_REQUESTS",
                    {"held_back": True},
                    method,
                    ambiguous=False,
                    retry_after=wait,
                )
            await self._sleep(wait)

    async def _attempt(
        self, method: str, body: bytes, parser: Parser[T], attempt: int, deadline: float
    ) -> T:
        await self._wait_turn(method, deadline)
        if self._limiter is not None:
            await self._limiter.acquire()
        remaining = deadline - self.clock()
        started = time.perf_counter()
        status: int | None = None
        try:
            if remaining <= 0:
                raise CryptoPayTimeoutError(
                    None, "TIMEOUT", {"deadline": True}, method, ambiguous=False
                )
            status, retry_after, content = await self._get_sender().send(
                method,
                self._base + method,
                body,
                self._headers,
                remaining if remaining < self._timeout else None,
            )
            result = parser.from_json(content) if status == 200 else None
            if result is None:
                result = parser.from_result(decode(method, status, retry_after, content), method)
        except CryptoPayError as exc:
            if status is not None:  # the server's answer, not a transport failure
                self._hold_off(exc)
            self._finished(method, attempt, started, status, exc)
            raise
        self._finished(method, attempt, started, status, None)
        return result

    def _finished(
        self,
        method: str,
        attempt: int,
        started: float,
        status: int | None,
        err: CryptoPayError | None,
    ) -> None:
        """The attempt's log line and the observer's call, with one measured duration."""
        seconds = time.perf_counter() - started
        _log_call(method, attempt, seconds, status, err)
        if self._observer is not None:
            try:
                self._observer(method, seconds, None if err is None else err.name)
            except Exception:  # a metrics bug must never fail a payment call
                log.exception("Crypto Pay call observer failed")


def _log_call(
    method: str, attempt: int, seconds: float, status: int | None, err: CryptoPayError | None
) -> None:
    level = logging.INFO if err is None else logging.WARNING
    if not log.isEnabledFor(level):
        return
    duration_ms = round(seconds * 1000, 1)
    if err is None:
        outcome, error_name = "ok", None
    elif err.code is None:
        outcome, error_name = ("timeout" if err.name == "TIMEOUT" else "transport_error"), err.name
    else:
        outcome, error_name = "error", err.name
    log.log(
        level,
        "cryptopay %s",
        method,
        extra={
            "method": method,
            "attempt": attempt,
            "outcome": outcome,
            "error_name": error_name,
            "http_status": status,
            "duration_ms": duration_ms,
            "ambiguous": None if err is None else err.ambiguous,
        },
    )
