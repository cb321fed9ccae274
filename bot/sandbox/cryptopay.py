"""A fake Crypto Pay API server (aiohttp) that answers like pay.crypt.bot.

    async with FakeCryptoPay(token="123:ABC", network="testnet") as cp:
        cp.webhook_url = "http://127.0.0.1:8080/cryptopay/webhook"
        ...  # the bot calls cp.base_url + "/createInvoice"
        status = await cp.pay(invoice_id)  # marks it paid and POSTs a signed webhook

See bot/sandbox/README.md for the whole API.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox._cp_data import (
    FIAT_PER_USD,
    TESTNET_EXTRA,
    USD_PRICES,
    CpError,
    fmt,
    fmt8,
    iso,
    order_invoice,
    round_up,
)
from bot.sandbox._cp_methods import CryptoPayMethods
from bot.sandbox._cp_paypage import PayPage
from bot.sandbox._server import BadBody, FakeServer, FaultRule, read_params, take_fault

METHODS = (
    "getMe createInvoice deleteInvoice createCheck deleteCheck transfer getInvoices "
    "getTransfers getChecks getBalance getExchangeRates getCurrencies getStats"
).split()
_FAULT_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    423: "APP_SUSPENDED",
    429: "TOO_MANY_REQUESTS",
    500: "APP_ERROR",
}
_NGINX = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
_REASONS = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    """Compact UTF-8 JSON, as the Node.js service writes it."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type="application/json")


@dataclass
class WebhookDelivery:
    """One webhook POST the fake made, and how the bot answered it."""

    invoice_id: int
    body: bytes
    headers: dict[str, str]
    status: int | None = None  # None: no HTTP answer (connection error or timeout)
    response_body: bytes = b""
    error: str | None = None

    @property
    def update(self) -> dict[str, Any]:
        return json.loads(self.body)


class FakeCryptoPay(CryptoPayMethods, PayPage, FakeServer):
    """Serves ``/api/<method>`` on 127.0.0.1; ``base_url`` ends in ``/api``."""

    def __init__(
        self,
        token: str = "123:ABC",
        network: str = "testnet",
        *,
        balances: dict[str, Decimal] | None = None,
        clock: Callable[[], datetime] | None = None,
        webhook_url: str | None = None,
        app_id: int = 28692,
        app_name: str = "Fake Shop App",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        FakeServer.__init__(self, host=host, port=port)
        if network not in ("testnet", "mainnet"):
            raise ValueError("network must be 'testnet' or 'mainnet'")
        self.token = token
        self.network = network
        self.app_id = app_id
        self.app_name = app_name
        self.bot_username = "CryptoTestnetBot" if network == "testnet" else "CryptoBot"
        self._web_app_host = "testnet-app.send.tg" if network == "testnet" else "app.send.tg"
        # Settings tests may change at any time.
        self.clock = clock
        self.webhook_url = webhook_url
        self.webhook_timeout = 10.0
        self.balances: dict[str, Decimal] = dict(balances or {})
        self.transfers_enabled = True
        self.checks_enabled = True
        self.spend_id_reuse = "error"  # or "return_existing": answer the first transfer again
        self.spend_id_reuse_error = "SPEND_ID_ALREADY_USED"
        self.known_users: set[int] | None = None  # None: every user_id may receive transfers
        self.transfer_min_usd: Decimal | None = None
        self.fee_percent = Decimal("3")
        self.rates_valid = True
        prices = {**USD_PRICES, **(TESTNET_EXTRA if network == "testnet" else {})}
        self.usd_prices: dict[str, Decimal] = {k: Decimal(v) for k, v in prices.items()}
        self.fiat_per_usd: dict[str, Decimal] = {k: Decimal(v) for k, v in FIAT_PER_USD.items()}
        # What tests inspect.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.invoices: dict[int, dict[str, Any]] = {}
        self.deleted_invoices: dict[int, dict[str, Any]] = {}
        self.created_invoices: list[dict[str, Any]] = []
        self.transfers: dict[int, dict[str, Any]] = {}
        self.checks: dict[int, dict[str, Any]] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []
        # Requests being answered right now, and the most seen at once, by method.
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        # Internal state.
        self._offset = timedelta(0)
        self._expiry: dict[int, datetime] = {}
        self._next_invoice_id = 528_890
        self._next_transfer_id = 1_001
        self._next_check_id = 3_001
        self._next_update_id = 22_021
        self._update_ids: dict[int, int] = {}
        self._faults: list[FaultRule] = []
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            name: getattr(self, f"_m_{name}") for name in METHODS
        }
        self.app.router.add_route("*", "/api/{method}", self._handle)
        self._add_pay_page_routes()

    # --- public API ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What the bot gets as ``CRYPTOPAY_API_URL`` (methods live at ``<base_url>/<method>``)."""
        return f"{self.origin}/api"

    @property
    def assets(self) -> list[str]:
        return list(self.usd_prices)

    def now(self) -> datetime:
        base = self.clock() if self.clock is not None else datetime.now(UTC)
        return base + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (invoices past their expiration_date expire)."""
        self._offset += timedelta(seconds=seconds)
        self._expire_due()

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def invoice(self, invoice_id: int) -> dict[str, Any]:
        """The invoice as the API would show it now (expiry applied)."""
        self._expire_due()
        found = self.invoices.get(invoice_id) or self.deleted_invoices.get(invoice_id)
        if found is None:
            raise KeyError(f"no invoice {invoice_id}")
        return found

    def expire(self, invoice_id: int) -> None:
        """Expire an active invoice now, whatever its expiration_date."""
        invoice = self.invoice(invoice_id)
        if invoice["status"] != "active":
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
        invoice["status"] = "expired"

    def sign(self, body: bytes) -> str:
        secret = hashlib.sha256(self.token.encode()).digest()
        return hmac.new(secret, body, hashlib.sha256).hexdigest()

    def signed_update(self, update: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """An update as Crypto Pay POSTs it: compact JSON and its headers, signed."""
        body = json.dumps(update, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Accept": "application/json, text/plain, */*",
            "Content-Type": "application/json;charset=utf-8",
            "User-Agent": "axios/0.21.1",
            "crypto-pay-api-signature": self.sign(body),
        }
        return body, headers

    def fail_next(
        self,
        method: str,
        status: int | None = 500,
        *,
        times: int = 1,
        delay: float | None = None,
        after_effect: bool = False,
        name: str | None = None,
        html: bool | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` misbehave.

        ``status``: answer this error (``name`` overrides the error name; 502-504 answer an
        nginx HTML page unless ``html=False``). ``delay``: hold the request open that long
        first (a client timeout; ``status=None`` then answers normally, just late).
        ``after_effect=True``: perform the call (create the invoice, make the transfer) and
        only then fail or hang: the ambiguous case.
        """
        extra = {"after_effect": after_effect, "name": name, "html": html}
        self._faults.append(FaultRule(method, status, times, delay, extra))

    def clear_faults(self) -> None:
        """Disarm every fault set with ``fail_next``."""
        self._faults.clear()

    def reset_in_flight_peaks(self) -> None:
        """Start ``max_in_flight`` afresh from the requests in flight now."""
        self.max_in_flight = {m: n for m, n in self.in_flight.items() if n}

    async def wait_for_call(
        self, method: str, *, timeout: float = 10.0, since: int = 0
    ) -> dict[str, Any]:
        """Params of the first ``method`` call from index ``since`` of ``calls``."""
        return await self.wait_until(
            lambda: next((p for n, p in self.calls[since:] if n == method), None),
            timeout=timeout,
            what=f"a {method} call",
        )

    async def wait_for_invoice(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first invoice created (id order, from the ``since``-th) matching ``predicate``."""

        def probe() -> dict[str, Any] | None:
            created = sorted({**self.invoices, **self.deleted_invoices}.items())[since:]
            return next((inv for _, inv in created if predicate is None or predicate(inv)), None)

        return await self.wait_until(probe, timeout=timeout, what="an invoice")

    async def pay(
        self,
        invoice_id: int,
        asset: str | None = None,
        amount: Decimal | str | None = None,
        *,
        send_webhook: bool = True,
        paid_anonymously: bool = False,
        comment: str | None = None,
        force: bool = False,
    ) -> int | None:
        """A buyer pays the invoice; then the webhook goes out (if ``webhook_url`` is set).

        ``asset`` defaults to the invoice asset (crypto) or USDT/the first accepted asset
        (fiat); ``amount`` to the invoice amount, converted at the current rate for fiat
        invoices. ``force=True`` pays even an expired invoice. Returns the HTTP status the
        webhook got (None: no webhook sent, or no answer).
        """
        invoice = self.invoice(invoice_id)
        if invoice["status"] == "paid" or (invoice["status"] == "expired" and not force):
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
        if invoice["currency_type"] == "crypto":
            asset = asset or invoice["asset"]
            if asset != invoice["asset"]:
                raise ValueError(f"invoice {invoice_id} is payable in {invoice['asset']} only")
            paid = Decimal(amount) if amount is not None else Decimal(invoice["amount"])
            extra: dict[str, Any] = {}
        else:
            accepted = invoice["accepted_assets"]
            asset = asset or ("USDT" if "USDT" in accepted else accepted[0])
            if asset not in accepted:
                raise ValueError(f"{asset} is not accepted by invoice {invoice_id}")
            fiat_rate = self._rate(asset, invoice["fiat"])
            paid = (
                Decimal(amount)
                if amount is not None
                else round_up(Decimal(invoice["amount"]) / fiat_rate, asset)
            )
            extra = {"paid_fiat_rate": fmt8(fiat_rate)}
        usd_rate = self._rate(asset, "USD")
        fee = paid * self.fee_percent / 100
        invoice.update(
            status="paid",
            paid_asset=asset,
            paid_amount=fmt(paid),
            fee_asset=asset,
            fee_amount=fmt(fee),
            fee_in_usd=fmt8(fee * usd_rate),
            paid_usd_rate=fmt8(usd_rate),
            paid_at=iso(self.now()),
            paid_anonymously=paid_anonymously,
            **extra,
        )
        if invoice["currency_type"] == "crypto":  # deprecated fields, still sent
            invoice.update(fee=fmt(fee), usd_rate=fmt8(usd_rate))
        if comment is not None:
            invoice["comment"] = comment
        ordered = order_invoice(invoice)
        invoice.clear()
        invoice.update(ordered)
        self.balances[asset] = self.balances.get(asset, Decimal(0)) + paid - fee
        await self._notify()
        if send_webhook and self.webhook_url:
            return (await self.deliver_webhook(invoice_id))[0]
        return None

    async def deliver_webhook(
        self, invoice_id: int, *, times: int = 1, concurrently: bool = False
    ) -> list[int | None]:
        """POST the ``invoice_paid`` update of a paid invoice (again): ``times`` deliveries,
        one after another or all at once. Each has a fresh ``request_date``; the
        ``update_id`` stays the same for one invoice. Returns the statuses, in order."""
        if not self.webhook_url:
            raise RuntimeError("set cp.webhook_url first")
        invoice = self.invoice(invoice_id)
        if invoice["status"] != "paid":
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}, not paid")
        if invoice_id not in self._update_ids:
            self._update_ids[invoice_id] = self._next_update_id
            self._next_update_id += 1
        if concurrently:
            jobs = [self._post_update(invoice_id) for _ in range(times)]
            return list(await asyncio.gather(*jobs))
        return [await self._post_update(invoice_id) for _ in range(times)]

    def webhook_request(self, invoice_id: int) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the ``invoice_paid`` webhook of a paid invoice, exactly as
        ``deliver_webhook`` would POST them (signed; fresh ``request_date``), not sent — for
        tests that deliver it themselves (to several replicas, say)."""
        invoice = self.invoice(invoice_id)
        if invoice["status"] != "paid":
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}, not paid")
        if invoice_id not in self._update_ids:
            self._update_ids[invoice_id] = self._next_update_id
            self._next_update_id += 1
        update = {
            "update_id": self._update_ids[invoice_id],
            "update_type": "invoice_paid",
            "request_date": iso(self.now()),
            "payload": invoice,
        }
        return self.signed_update(update)

    async def _post_update(self, invoice_id: int) -> int | None:
        body, headers = self.webhook_request(invoice_id)
        delivery = WebhookDelivery(invoice_id=invoice_id, body=body, headers=headers)
        self.webhook_deliveries.append(delivery)
        if self._client is None:
            self._client = aiohttp.ClientSession(skip_auto_headers=("User-Agent",))
        assert self.webhook_url is not None
        try:
            async with self._client.post(
                self.webhook_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as resp:
                delivery.status = resp.status
                delivery.response_body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            delivery.error = repr(e)
        await self._notify()
        return delivery.status

    # --- plumbing -----------------------------------------------------------------------------

    def _rate(self, source: str, target: str) -> Decimal:
        per_usd = self.fiat_per_usd
        usd = self.usd_prices[source] if source in self.usd_prices else 1 / per_usd[source]
        return usd * per_usd[target]

    def _expire_due(self) -> None:
        now = self.now()
        for invoice_id, moment in self._expiry.items():
            invoice = self.invoices.get(invoice_id)
            if invoice is not None and invoice["status"] == "active" and now >= moment:
                invoice["status"] = "expired"

    def _fault_response(self, rule: FaultRule) -> web.Response:
        status = rule.status or 500
        html = rule.extra["html"]
        if html or (html is None and status in _REASONS):
            reason = _REASONS.get(status, f"{status} Error")
            page = _NGINX.format(reason) + "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            return web.Response(status=status, text=page, content_type="text/html")
        name = rule.extra["name"] or _FAULT_NAMES.get(status, "APP_ERROR")
        return _json(CpError(status, name).envelope(), status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await read_params(request)
        except BadBody:
            params = {}
            self.calls.append((method, params))
            return _json(CpError(400, "BAD_REQUEST").envelope(), status=400)
        self.calls.append((method, params))
        self.in_flight[method] = self.in_flight.get(method, 0) + 1
        self.max_in_flight[method] = max(self.max_in_flight.get(method, 0), self.in_flight[method])
        try:
            return await self._answer(request, method, params)
        finally:
            self.in_flight[method] -= 1
            await self._notify()

    async def _answer(
        self, request: web.Request, method: str, params: dict[str, Any]
    ) -> web.StreamResponse:
        if request.headers.get("Crypto-Pay-API-Token") != self.token:
            return _json(CpError(401, "UNAUTHORIZED").envelope(), status=401)
        handler = self._methods.get(method)
        if handler is None:
            return _json(CpError(405, "METHOD_NOT_FOUND").envelope(), status=405)
        fault = take_fault(self._faults, method, params)
        if fault is not None and not fault.extra["after_effect"]:
            if fault.delay:
                await self.hang(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault)
        self._expire_due()
        try:
            body: dict[str, Any] = {"ok": True, "result": await handler(params)}
            status = 200
        except CpError as e:
            body, status = e.envelope(), e.code
        if fault is not None and fault.extra["after_effect"]:
            await self._notify()  # the effect is visible while the answer hangs
            if fault.delay:
                await self.hang(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault)
        return _json(body, status=status)


def main() -> None:  # pragma: no cover - manual use
    parser = argparse.ArgumentParser(description="Run the fake Crypto Pay API")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--token", default="123:ABC")
    parser.add_argument("--network", default="testnet")
    args = parser.parse_args()
    fake = FakeCryptoPay(token=args.token, network=args.network, port=args.port)
    fake.balances = {"USDT": Decimal("1000"), "TON": Decimal("1000")}
    web.run_app(fake.app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
