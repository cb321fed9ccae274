"""Cross-check: the project's own Crypto Pay client and webhook check accept the fake's answers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.sandbox import FakeCryptoPay

payments = pytest.importorskip("payments")

TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"


async def test_client_round_trip_and_webhook_check() -> None:
    async with FakeCryptoPay(token=TOKEN, network="testnet") as cp:
        cp.balances = {"USDT": Decimal("50")}
        async with payments.CryptoPayClient(TOKEN, cp.base_url, max_attempts=1) as client:
            app = await client.get_me()
            assert app.payment_processing_bot_username == "CryptoTestnetBot"
            invoice = await client.create_invoice(
                Decimal("9.99"),
                fiat="USD",
                accepted_assets=["USDT", "TON"],
                payload="order-1",
                expires_in=900,
            )
            assert invoice.amount == Decimal("9.99")
            await cp.pay(invoice.invoice_id, asset="TON")
            [paid] = await client.get_invoices(invoice_ids=[invoice.invoice_id])
            assert paid.status == "paid" and paid.paid_asset == "TON"
            transfer = await client.transfer(7, "USDT", Decimal("1.5"), "refund-1")
            assert transfer.amount == Decimal("1.5")
            assert (await client.get_exchange_rates())[0].rate > 0
            assert any(b.currency_code == "USDT" for b in await client.get_balance())
            await client.get_currencies()
            await client.get_stats()

        body = await _delivery_body(cp, invoice.invoice_id)
        assert payments.verify_signature(body, cp.sign(body), TOKEN)
        update = payments.parse_update(body)
        assert update.payload.invoice_id == invoice.invoice_id


async def _delivery_body(cp: FakeCryptoPay, invoice_id: int) -> bytes:
    """The exact bytes a webhook delivery would carry (sent to a dead port, recorded anyway)."""
    cp.webhook_url = "http://127.0.0.1:9/unused"
    cp.webhook_timeout = 1.0
    await cp.deliver_webhook(invoice_id)
    return cp.webhook_deliveries[-1].body
