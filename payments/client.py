"""``CryptoPayClient``: our own async client of the Crypto Pay API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

from . import _params as p
from ._engine import CallObserver, Engine, Kind
from ._parsing import Parser
from ._transport import AiohttpSender, HttpxSender, Sender
from .models import App, AppStats, Balance, Check, Currency, ExchangeRate, Invoice, Transfer
from .ratelimit import TokenBucket
from .retry import RetryPolicy

__all__ = ["MAINNET_API_URL", "TESTNET_API_URL", "CryptoPayClient"]

MAINNET_API_URL = "https://pay.crypt.bot/api"
TESTNET_API_URL = "https://testnet-pay.crypt.bot/api"

_APP: Parser[App] = Parser(App)
_INVOICE: Parser[Invoice] = Parser(Invoice)
_CHECK: Parser[Check] = Parser(Check)
_TRANSFER: Parser[Transfer] = Parser(Transfer)
_STATS: Parser[AppStats] = Parser(AppStats)
_BOOL: Parser[bool] = Parser(bool)
_INVOICES: Parser[list[Invoice]] = Parser(list[Invoice], items=True)
_TRANSFERS: Parser[list[Transfer]] = Parser(list[Transfer], items=True)
_CHECKS: Parser[list[Check]] = Parser(list[Check], items=True)
_BALANCES: Parser[list[Balance]] = Parser(list[Balance])
_RATES: Parser[list[ExchangeRate]] = Parser(list[ExchangeRate])
_CURRENCIES: Parser[list[Currency]] = Parser(list[Currency])
_RAW: Parser[Any] = Parser(Any)


class _SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


def _items(result: Any) -> Any:
    return result.get("items", []) if isinstance(result, dict) else result


class CryptoPayClient:
    """Async client of the Crypto Pay API (https://help.send.tg/en/articles/10279948).

    Every method is ``POST <base_url>/<method>`` with a JSON body and the token in the
    ``Crypto-Pay-API-Token`` header. Pass ``http`` to use your own ``httpx.AsyncClient`` (tests
    inject one over ``httpx.MockTransport``); it is never closed by us. Otherwise the client
    opens its own over aiohttp on first use and closes it in :meth:`aclose`/``async with``.
    ``observer(method, seconds, error_name_or_None)`` is told about every HTTP attempt (metrics).

    No call waits for another by default. A 429 (or a 503 with ``Retry-After``) holds back
    every call of the client for the ``Retry-After`` it names; ``rate_limit_per_s`` (and
    ``rate_limit_burst``) add a token bucket for whoever wants a cap of their own.
    """

    def __init__(
        self,
        token: str | _SecretLike,
        base_url: str = MAINNET_API_URL,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 4,
        total_deadline: float = 30.0,
        backoff_base: float = 0.25,
        backoff_max: float = 8.0,
        rate_limit_per_s: float | None = None,
        rate_limit_burst: float | None = None,
        max_connections: int = 100,
        invoice_lookup_pages: int = 3,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        observer: CallObserver | None = None,
    ) -> None:
        secret = token.get_secret_value() if hasattr(token, "get_secret_value") else token
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError("the Crypto Pay token is empty")
        if any(c in secret for c in "\r\n\0"):
            raise ValueError("the Crypto Pay token contains a line break or NUL")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL such as https://pay.crypt.bot/api")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be > 0")
        self.base_url = base_url.rstrip("/")
        self._sender: Sender | None = HttpxSender(http) if http is not None else None
        self._closed = False
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._lookup_pages = max(1, invoice_lookup_pages)
        limiter = (
            TokenBucket(rate_limit_per_s, rate_limit_burst, clock=clock, sleep=sleep)
            if rate_limit_per_s is not None
            else None
        )
        policy = RetryPolicy(max_attempts, total_deadline, backoff_base, backoff_max)
        self._engine = Engine(
            base_url=self.base_url,
            token=secret,
            policy=policy,
            timeout=timeout,
            limiter=limiter,
            get_sender=self._get_sender,
            sleep=sleep,
            clock=clock,
            observer=observer,
        )

    def __repr__(self) -> str:
        return f"CryptoPayClient(base_url={self.base_url!r})"

    # -- lifetime ---------------------------------------------------------------------------

    def _get_sender(self) -> Sender:
        if self._sender is None:
            if self._closed:
                raise RuntimeError("this CryptoPayClient is closed")
            self._sender = AiohttpSender(
                max_connections=self._max_connections,
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
            )
        return self._sender

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("this CryptoPayClient is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool we opened; an injected client is left to its owner."""
        self._closed = True
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()

    # -- methods ----------------------------------------------------------------------------

    async def get_me(self) -> App:
        return await self._engine.call("getMe", {}, _APP, kind=Kind.READ)

    async def create_invoice(
        self,
        amount: p.Amount,
        *,
        asset: str | None = None,
        fiat: str | None = None,
        currency_type: str | None = None,
        accepted_assets: Iterable[str] | str | None = None,
        description: str | None = None,
        hidden_message: str | None = None,
        paid_btn_name: str | None = None,
        paid_btn_url: str | None = None,
        swap_to: str | None = None,
        payload: str | None = None,
        allow_comments: bool | None = None,
        allow_anonymous: bool | None = None,
        expires_in: int | None = None,
    ) -> Invoice:
        """Create an invoice. ``currency_type`` defaults to ``fiat`` when ``fiat`` is given.

        After an ambiguous failure the request is not sent again blindly: an invoice with the
        same ``payload`` among the newest invoices is returned instead; without a ``payload``
        the ambiguous error is raised. Give every invoice a unique ``payload``.
        """
        params = p.create_invoice(
            amount_=amount,
            asset=asset,
            fiat=fiat,
            currency_type=currency_type,
            accepted_assets=accepted_assets,
            description=description,
            hidden_message=hidden_message,
            paid_btn_name=paid_btn_name,
            paid_btn_url=paid_btn_url,
            swap_to=swap_to,
            payload=payload,
            allow_comments=allow_comments,
            allow_anonymous=allow_anonymous,
            expires_in=expires_in,
        )

        async def find_by_payload(deadline: float) -> Any:
            for page in range(self._lookup_pages):
                items = await self._engine.call(
                    "getInvoices",
                    {"offset": page * 100, "count": 100},
                    _RAW,
                    kind=Kind.READ,
                    deadline=deadline,
                )
                items = _items(items)
                for item in items:
                    if isinstance(item, dict) and item.get("payload") == payload:
                        return item
                if len(items) < 100:
                    break
            return None

        return await self._engine.call(
            "createInvoice",
            params,
            _INVOICE,
            kind=Kind.WRITE,
            recover=find_by_payload if payload is not None else None,
        )

    async def delete_invoice(self, invoice_id: int) -> bool:
        params = {"invoice_id": p.positive_int(invoice_id, "invoice_id")}
        return await self._engine.call("deleteInvoice", params, _BOOL, kind=Kind.IDEMPOTENT)

    async def create_check(
        self,
        asset: str,
        amount: p.Amount,
        *,
        pin_to_user_id: int | None = None,
        pin_to_username: str | None = None,
    ) -> Check:
        """Create a check. Not re-sent after an ambiguous failure (there is no lookup key)."""
        params = p.create_check(
            asset=asset,
            amount_=amount,
            pin_to_user_id=pin_to_user_id,
            pin_to_username=pin_to_username,
        )
        return await self._engine.call("createCheck", params, _CHECK, kind=Kind.WRITE)

    async def delete_check(self, check_id: int) -> bool:
        params = {"check_id": p.positive_int(check_id, "check_id")}
        return await self._engine.call("deleteCheck", params, _BOOL, kind=Kind.IDEMPOTENT)

    async def transfer(
        self,
        user_id: int,
        asset: str,
        amount: p.Amount,
        spend_id: str,
        *,
        comment: str | None = None,
        disable_send_notification: bool | None = None,
    ) -> Transfer:
        """Send coins to a user. Retried only with the same ``spend_id``; after an ambiguous
        failure the transfer is first looked up with ``getTransfers(spend_id=...)``."""
        params = p.transfer(
            user_id=user_id,
            asset=asset,
            amount_=amount,
            spend_id_=spend_id,
            comment=comment,
            disable_send_notification=disable_send_notification,
        )

        async def find_by_spend_id(deadline: float) -> Any:
            items = await self._engine.call(
                "getTransfers", {"spend_id": spend_id}, _RAW, kind=Kind.READ, deadline=deadline
            )
            for item in _items(items):
                if isinstance(item, dict) and str(item.get("spend_id")) == spend_id:
                    return item
            return None

        return await self._engine.call(
            "transfer", params, _TRANSFER, kind=Kind.WRITE, recover=find_by_spend_id
        )

    async def get_invoices(
        self,
        *,
        asset: str | None = None,
        fiat: str | None = None,
        invoice_ids: Iterable[int] | str | None = None,
        status: str | None = None,
        offset: int | None = None,
        count: int | None = None,
    ) -> list[Invoice]:
        params: dict[str, Any] = {}
        if asset is not None:
            params["asset"] = p.code(asset, "asset")
        if fiat is not None:
            params["fiat"] = p.code(fiat, "fiat")
        if invoice_ids is not None:
            params["invoice_ids"] = p.id_list(invoice_ids, "invoice_ids")
        p.status(status, p.INVOICE_STATUSES, params)
        p.paging(params, offset, count)
        return await self._engine.call("getInvoices", params, _INVOICES, kind=Kind.READ)

    async def get_transfers(
        self,
        *,
        asset: str | None = None,
        transfer_ids: Iterable[int] | str | None = None,
        spend_id: str | None = None,
        offset: int | None = None,
        count: int | None = None,
    ) -> list[Transfer]:
        params: dict[str, Any] = {}
        if asset is not None:
            params["asset"] = p.code(asset, "asset")
        if transfer_ids is not None:
            params["transfer_ids"] = p.id_list(transfer_ids, "transfer_ids")
        if spend_id is not None:
            params["spend_id"] = p.spend_id(spend_id)
        p.paging(params, offset, count)
        return await self._engine.call("getTransfers", params, _TRANSFERS, kind=Kind.READ)

    async def get_checks(
        self,
        *,
        asset: str | None = None,
        check_ids: Iterable[int] | str | None = None,
        status: str | None = None,
        offset: int | None = None,
        count: int | None = None,
    ) -> list[Check]:
        params: dict[str, Any] = {}
        if asset is not None:
            params["asset"] = p.code(asset, "asset")
        if check_ids is not None:
            params["check_ids"] = p.id_list(check_ids, "check_ids")
        p.status(status, p.CHECK_STATUSES, params)
        p.paging(params, offset, count)
        return await self._engine.call("getChecks", params, _CHECKS, kind=Kind.READ)

    async def get_balance(self) -> list[Balance]:
        return await self._engine.call("getBalance", {}, _BALANCES, kind=Kind.READ)

    async def get_exchange_rates(self) -> list[ExchangeRate]:
        return await self._engine.call("getExchangeRates", {}, _RATES, kind=Kind.READ)

    async def get_currencies(self) -> list[Currency]:
        return await self._engine.call("getCurrencies", {}, _CURRENCIES, kind=Kind.READ)

    async def get_stats(
        self, *, start_at: datetime | None = None, end_at: datetime | None = None
    ) -> AppStats:
        params: dict[str, Any] = {}
        if start_at is not None:
            params["start_at"] = p.iso_utc(start_at, "start_at")
        if end_at is not None:
            params["end_at"] = p.iso_utc(end_at, "end_at")
        if start_at is not None and end_at is not None and start_at > end_at:
            raise ValueError("start_at must not be after end_at")
        return await self._engine.call("getStats", params, _STATS, kind=Kind.READ)
