"""One exception hierarchy for everything the Crypto Pay client can raise.

``CryptoPayError`` carries what a caller acts on: the API ``code`` (the HTTP status for API
errors, ``None`` for transport failures), the error ``name`` (an open set: unknown names never
crash), the ``extra`` keys of the error object and the API ``method``.

``ambiguous`` tells whether the request may have reached the server and been acted on (a read
timeout, a 5xx after the body left). A caller must not blindly repeat a money-moving request
after an ambiguous failure; the client itself only does so after looking the result up.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppSuspendedError",
    "CryptoPayAPIError",
    "CryptoPayError",
    "CryptoPayTimeoutError",
    "CryptoPayTransportError",
    "InvalidParamsError",
    "MethodDisabledError",
    "MethodNotFoundError",
    "RateLimitedError",
    "ServerError",
    "UnauthorizedError",
    "error_from_response",
]


class CryptoPayError(Exception):
    """Base class of every error raised by :mod:`payments`' client."""

    #: May the request have been processed by Crypto Pay?
    ambiguous: bool = False
    #: Is repeating the same request a sensible reaction (after a pause)?
    retryable: bool = False

    def __init__(
        self,
        code: int | None,
        name: str,
        extra: dict[str, Any] | None = None,
        method: str | None = None,
        *,
        ambiguous: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        #: The server's ``Retry-After`` hint in seconds, when it sent one.
        self.retry_after = retry_after
        self.name = name
        self.extra: dict[str, Any] = dict(extra or {})
        self.method = method
        if ambiguous is not None:
            self.ambiguous = ambiguous
        super().__init__(code, name, self.extra, method)

    @property
    def description(self) -> str | None:
        value = self.extra.get("description")
        return value if isinstance(value, str) else None

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        code = f"{self.code} " if self.code is not None else ""
        text = f"{where}{code}{self.name}"
        if self.description:
            text += f" ({self.description})"
        if self.ambiguous:
            text += " [outcome unknown: the request may have been processed]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, name={self.name!r}, "
            f"method={self.method!r}, ambiguous={self.ambiguous!r})"
        )


class CryptoPayAPIError(CryptoPayError):
    """Crypto Pay answered with an error (``ok: false``, or a non-JSON error page)."""


class UnauthorizedError(CryptoPayAPIError):
    """401: the token is wrong, revoked, or belongs to the other network (testnet/mainnet)."""


class MethodDisabledError(CryptoPayAPIError):
    """403 METHOD_DISABLED: enable transfers/checks in the app's Security settings."""


class InvalidParamsError(CryptoPayAPIError):
    """400: Crypto Pay rejected a parameter (see ``name`` and ``extra``)."""


class MethodNotFoundError(CryptoPayAPIError):
    """405 METHOD_NOT_FOUND: wrong base URL or method name."""


class AppSuspendedError(CryptoPayAPIError):
    """423: the app is suspended (the account must be verified)."""


class RateLimitedError(CryptoPayAPIError):
    """429: slow down; ``retry_after`` is the server's hint in seconds, when given."""

    retryable = True


class ServerError(CryptoPayAPIError):
    """5xx, or a body that is not a Crypto Pay envelope (e.g. a proxy's HTML 502 page)."""

    retryable = True
    ambiguous = True


class CryptoPayTransportError(CryptoPayError):
    """The HTTP exchange itself failed (connection refused/reset, TLS, protocol error).

    ``ambiguous`` is False only when the request provably never left (connection refused,
    DNS failure, no free connection in the pool).
    """

    retryable = True
    ambiguous = True


class CryptoPayTimeoutError(CryptoPayTransportError):
    """A timeout: connect/pool timeouts are not ambiguous, read timeouts are."""


_BY_CODE: dict[int, type[CryptoPayAPIError]] = {
    400: InvalidParamsError,
    401: UnauthorizedError,
    405: MethodNotFoundError,
    423: AppSuspendedError,
    429: RateLimitedError,
}


def error_from_response(
    status: int,
    error: object,
    method: str,
    *,
    retry_after: float | None = None,
) -> CryptoPayAPIError:
    """Build the error for an HTTP ``status`` and the envelope's ``error`` value (any shape)."""
    extra: dict[str, Any] = {}
    code: int = status
    name = f"HTTP_{status}"
    if isinstance(error, dict):
        raw_code = error.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        elif isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        raw_name = error.get("name")
        if isinstance(raw_name, str) and raw_name:
            name = raw_name
        extra = {k: v for k, v in error.items() if k not in ("code", "name")}
    elif isinstance(error, str) and error:
        name = error

    if code == 403 and name == "METHOD_DISABLED":
        cls: type[CryptoPayAPIError] = MethodDisabledError
    elif code >= 500 or (status >= 500 and code < 400):
        cls = ServerError
    else:
        cls = _BY_CODE.get(code) or _BY_CODE.get(status) or CryptoPayAPIError
    return cls(code, name, extra, method, retry_after=retry_after)
