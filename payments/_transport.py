"""Turning an HTTP exchange into a Crypto Pay result or a :class:`CryptoPayError`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx

from .errors import (
    CryptoPayError,
    CryptoPayTimeoutError,
    CryptoPayTransportError,
    ServerError,
    error_from_response,
)
from .retry import parse_retry_after

# Raised by aiohttp before a single byte of the request was written. httpx-aiohttp maps every
# aiohttp.ClientConnectionError (also "server disconnected" after sending, and read timeouts)
# to httpx.ConnectTimeout/ConnectError, so its httpx class alone cannot be trusted.
_AIOHTTP_UNSENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def _never_sent(exc: BaseException) -> bool:
    if isinstance(exc, httpx.PoolTimeout):
        return True
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientError):
            return isinstance(cause, _AIOHTTP_UNSENT)
        return True
    return False


def transport_error(exc: BaseException, method: str) -> CryptoPayError:
    """Map an httpx/asyncio exception; the message never includes headers (the token)."""
    invalid = isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL))
    ambiguous = not invalid and not _never_sent(exc)
    if isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError)):
        err: CryptoPayError = CryptoPayTimeoutError(
            None, "TIMEOUT", {"exception": type(exc).__name__}, method, ambiguous=ambiguous
        )
    else:
        err = CryptoPayTransportError(
            None, "TRANSPORT_ERROR", {"exception": type(exc).__name__}, method, ambiguous=ambiguous
        )
    if invalid:
        err.retryable = False
    return err


def decode(method: str, status: int, headers: httpx.Headers, content: bytes) -> Any:
    """Return ``result`` of an ``ok`` envelope or raise the matching error."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        ok = data.get("ok")
        if ok is True and "result" in data and status < 400:
            return data["result"]
        if ok is False:
            retry_after = None
            if status in (429, 503):
                retry_after = parse_retry_after(headers.get("retry-after"))
            raise error_from_response(status, data.get("error"), method, retry_after=retry_after)
    # Not a Crypto Pay envelope: a proxy page, an empty body, a truncated answer.
    if 400 <= status < 500:
        retry_after = parse_retry_after(headers.get("retry-after")) if status == 429 else None
        raise error_from_response(status, None, method, retry_after=retry_after)
    name = f"HTTP_{status}" if status >= 500 else "INVALID_RESPONSE"
    retry_after = parse_retry_after(headers.get("retry-after")) if status == 503 else None
    raise ServerError(status, name, {}, method, retry_after=retry_after)
