"""The HTTP exchange: two senders with one contract, and the envelope decoding.

A sender posts ``body`` to ``url`` and returns ``(status, retry_after_header, content)`` or
raises a :class:`CryptoPayError` (never an httpx/aiohttp exception, never one that mentions
headers, so the token cannot leak through an error message).

* :class:`HttpxSender` speaks httpx: an injected ``httpx.AsyncClient`` (tests use
  ``httpx.MockTransport``; any httpx transport works, also one over aiohttp).
* :class:`AiohttpSender` is the default: a bare ``aiohttp.ClientSession`` with a keep-alive
  pool. The bot ships aiohttp already, and httpx's request/response objects cost more per call
  than the whole Crypto Pay round trip on loopback (see ``bench/cryptopay_client.py``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

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

Exchange = tuple[int, str | None, bytes]

# aiohttp raises these before a single byte of the request was written.
_AIOHTTP_UNSENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class Sender(Protocol):
    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float | None
    ) -> Exchange: ...

    async def aclose(self) -> None: ...


def _never_sent(exc: BaseException) -> bool:
    if isinstance(exc, _AIOHTTP_UNSENT) or isinstance(exc, httpx.PoolTimeout):
        return True
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        # An injected httpx transport over aiohttp (httpx-aiohttp, say) may map every
        # aiohttp.ClientConnectionError (also "server disconnected" after sending, and read
        # timeouts) to ConnectTimeout/ConnectError: look underneath.
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientError):
            return isinstance(cause, _AIOHTTP_UNSENT)
        return True
    return False


def transport_error(exc: BaseException, method: str) -> CryptoPayError:
    """Map an httpx/aiohttp/asyncio exception to our hierarchy."""
    invalid = isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL, aiohttp.InvalidURL))
    ambiguous = not invalid and not _never_sent(exc)
    extra = {"exception": type(exc).__name__}
    if isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError)):
        err: CryptoPayError = CryptoPayTimeoutError(
            None, "TIMEOUT", extra, method, ambiguous=ambiguous
        )
    else:
        err = CryptoPayTransportError(None, "TRANSPORT_ERROR", extra, method, ambiguous=ambiguous)
    if invalid:
        err.retryable = False
    return err


class HttpxSender:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float | None
    ) -> Exchange:
        try:
            if timeout is None:
                response = await self.http.post(url, content=body, headers=headers)
            else:
                async with asyncio.timeout(timeout):
                    response = await self.http.post(
                        url, content=body, headers=headers, timeout=timeout
                    )
        except (httpx.HTTPError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(exc, method) from exc
        return response.status_code, response.headers.get("retry-after"), response.content

    async def aclose(self) -> None:
        return None  # injected: its owner closes it


class AiohttpSender:
    """Owns a lazily created ``aiohttp.ClientSession`` (created on first use, in the loop)."""

    def __init__(self, *, max_connections: int, timeout: float, connect_timeout: float) -> None:
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        # One timer per request (``total``) costs less than a per-read one (``sock_read``).
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=30.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, trust_env=False, raise_for_status=False
        )
        return self._session

    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float | None
    ) -> Exchange:
        session = self._session or self._open()
        per_call = (
            self._timeout
            if timeout is None
            else aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        )
        try:
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False, timeout=per_call
            ) as response:
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(exc, method) from exc
        return response.status, response.headers.get("Retry-After"), content

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def decode(method: str, status: int, retry_after_header: str | None, content: bytes) -> Any:
    """Return ``result`` of an ``ok`` envelope or raise the matching error."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    retry_after = parse_retry_after(retry_after_header) if status in (429, 503) else None
    if isinstance(data, dict):
        ok = data.get("ok")
        if ok is True and "result" in data and status < 400:
            return data["result"]
        if ok is False:
            raise error_from_response(status, data.get("error"), method, retry_after=retry_after)
    # Not a Crypto Pay envelope: a proxy page, an empty body, a truncated answer.
    if 400 <= status < 500:
        raise error_from_response(status, None, method, retry_after=retry_after)
    name = f"HTTP_{status}" if status >= 500 else "INVALID_RESPONSE"
    raise ServerError(status, name, {}, method, retry_after=retry_after)
