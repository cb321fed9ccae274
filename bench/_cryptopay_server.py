"""A loopback stand-in for Crypto Pay's getInvoices, for bench/cryptopay_client.py.

Run as a separate process (so the server does not share the client's CPU time):
prints ``PORT <n>`` once listening on 127.0.0.1 (ephemeral port), serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import signal

from aiohttp import web

TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"

_INVOICES = [
    {
        "invoice_id": 23355449 + i,
        "hash": f"IVECrmWQmMW{i}",
        "currency_type": "fiat",
        "fiat": "USD",
        "amount": "2.6",
        "accepted_assets": ["USDT", "TON", "BTC"],
        "bot_invoice_url": f"https://t.me/CryptoBot?start=IVECrmWQmMW{i}",
        "mini_app_invoice_url": (
            f"https://t.me/CryptoBot/app?startapp=invoice-IVECrmWQmMW{i}&mode=compact"
        ),
        "web_app_invoice_url": f"https://app.send.tg/invoices/IVECrmWQmMW{i}",
        "description": f"Order #{42 + i}: VPN 1 month",
        "status": "active",
        "created_at": "2025-04-02T16:59:04.659Z",
        "expiration_date": "2025-04-02T17:14:04.659Z",
        "allow_comments": True,
        "allow_anonymous": True,
        "payload": json.dumps({"order_id": 42 + i}),
    }
    for i in range(3)
]
_INVOICES.append(
    {
        **_INVOICES[0],
        "invoice_id": 23355460,
        "status": "paid",
        "paid_asset": "USDT",
        "paid_amount": "2.6",
        "paid_fiat_rate": "1.00002469",
        "fee_asset": "USDT",
        "fee_amount": "0.078",
        "fee_in_usd": "0.07800192",
        "paid_usd_rate": "1.00002469",
        "paid_at": "2025-04-02T17:03:05.198Z",
        "paid_anonymously": False,
    }
)
BODY = json.dumps({"ok": True, "result": {"items": _INVOICES}}, separators=(",", ":")).encode()
UNAUTHORIZED = b'{"ok":false,"error":{"code":401,"name":"UNAUTHORIZED"}}'


async def get_invoices(request: web.Request) -> web.Response:
    await request.read()
    if request.headers.get("Crypto-Pay-API-Token") != TOKEN:
        return web.Response(status=401, body=UNAUTHORIZED, content_type="application/json")
    return web.Response(body=BODY, content_type="application/json")


async def main() -> None:
    app = web.Application()
    app.router.add_route("*", "/api/getInvoices", get_invoices)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
