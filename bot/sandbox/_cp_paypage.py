"""The fake Crypto Pay's pay page: what a buyer sees on opening an invoice, with **Pay** and
**Let it expire** (mixed into FakeCryptoPay; ``/pay/<hash>`` on the fake's own server).

Paying goes through ``cp.pay`` (marks the invoice paid, credits the balance and POSTs the
signed ``invoice_paid`` webhook exactly as every test does); expiring through ``cp.expire``.
Crypto Pay sends no webhook for an expired invoice: the shop learns of it when it asks.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.sandbox._cp_data import fmt, round_up

# Mixed into FakeCryptoPay; typed loosely because FakeCryptoPay is built from this class.
_Base: Any = object

_STYLE = """
:root { color-scheme: light; --accent: #2b8fd6; --ok: #1a9d55; --muted: #6b7a89; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: #eef3f8; color: #17212b; }
main { max-width: 420px; margin: 24px auto; background: #fff; border-radius: 16px;
  box-shadow: 0 6px 24px rgba(16, 42, 67, .12); overflow: hidden; }
header { background: linear-gradient(135deg, #2b8fd6, #3fb0e8); color: #fff; padding: 18px 22px; }
header h1 { margin: 0; font-size: 19px; }
header p { margin: 4px 0 0; opacity: .9; font-size: 13px; }
section { padding: 18px 22px; }
.amount { font-size: 30px; font-weight: 700; margin: 2px 0 4px; }
.desc { color: var(--muted); margin: 0 0 14px; white-space: pre-wrap; }
.status { display: inline-block; padding: 3px 10px; border-radius: 999px; font-size: 13px;
  font-weight: 600; background: #e8f1fb; color: var(--accent); }
.status.paid { background: #e3f6ec; color: var(--ok); }
.status.expired { background: #f3e8e8; color: #b23b3b; }
fieldset { border: 0; padding: 0; margin: 14px 0; }
legend { font-weight: 600; margin-bottom: 6px; }
label.asset { display: flex; justify-content: space-between; align-items: center; gap: 10px;
  border: 1px solid #d9e2ec; border-radius: 10px; padding: 9px 12px; margin: 6px 0;
  cursor: pointer; }
label.asset:has(input:checked) { border-color: var(--accent); background: #f2f8fd; }
label.asset span.code { font-weight: 600; }
.buttons { display: flex; gap: 10px; margin-top: 16px; }
button { flex: 1; font: inherit; font-weight: 600; border-radius: 10px; padding: 11px 14px;
  border: 0; cursor: pointer; }
button.pay { background: var(--accent); color: #fff; }
button.expire { background: #eef2f6; color: #33475b; }
.note { font-size: 12.5px; color: var(--muted); margin-top: 14px; }
.result { margin: 12px 0 0; }
"""


class PayPage(_Base):
    """``GET /pay/<hash>`` shows the invoice; ``POST /pay/<hash>`` pays or expires it."""

    def _add_pay_page_routes(self) -> None:
        self.app.router.add_get("/pay/{hash}", self._pay_page)
        self.app.router.add_post("/pay/{hash}", self._pay_action)

    def pay_page_url(self, invoice_hash: str) -> str:
        """Where a buyer opens the invoice with this hash (the demo maps the invoice links
        the bot shows, which point at Telegram, here)."""
        return f"{self.origin}/pay/{invoice_hash}"

    def invoice_by_hash(self, invoice_hash: str) -> dict[str, Any] | None:
        self._expire_due()
        found: dict[str, Any] | None = next(
            (inv for inv in self.invoices.values() if inv.get("hash") == invoice_hash), None
        )
        return found

    async def _pay_page(self, request: web.Request) -> web.StreamResponse:
        invoice = self.invoice_by_hash(request.match_info["hash"])
        if invoice is None:
            return _page("Invoice not found", "<section><p>No such invoice.</p></section>", 404)
        return _page(f"Invoice {invoice['invoice_id']}", self._invoice_html(invoice, note=""))

    async def _pay_action(self, request: web.Request) -> web.StreamResponse:
        invoice = self.invoice_by_hash(request.match_info["hash"])
        if invoice is None:
            return _page("Invoice not found", "<section><p>No such invoice.</p></section>", 404)
        form = await request.post()
        action, asset = str(form.get("action") or ""), str(form.get("asset") or "") or None
        note = ""
        try:
            if action == "pay":
                status = await self.pay(invoice["invoice_id"], asset)
                if status is None:
                    note = "Paid. No webhook is set, so the shop learns of it when it asks."
                else:
                    note = f"Paid. The shop's webhook answered {status}."
            elif action == "expire":
                self.expire(invoice["invoice_id"])
                note = (
                    "Expired. Crypto Pay sends no webhook for that: the shop finds out "
                    "when it asks (Check payment in the chat, or its next round)."
                )
            else:
                return _page("Bad request", "<section><p>Unknown action.</p></section>", 400)
        except ValueError as error:
            note = str(error)
        invoice = self.invoice(invoice["invoice_id"])
        return _page(f"Invoice {invoice['invoice_id']}", self._invoice_html(invoice, note=note))

    def _invoice_html(self, invoice: dict[str, Any], *, note: str) -> str:
        e = html.escape
        status = str(invoice["status"])
        if invoice["currency_type"] == "fiat":
            amount = f"{invoice['amount']} {invoice['fiat']}"
            assets = list(invoice["accepted_assets"])
        else:
            amount = f"{invoice['amount']} {invoice['asset']}"
            assets = [invoice["asset"]]
        parts = [
            "<section>",
            f'<span class="status {e(status)}" data-status="{e(status)}">{e(status)}</span>',
            f'<p class="amount">{e(amount)}</p>',
        ]
        if invoice.get("description"):
            parts.append(f'<p class="desc">{e(str(invoice["description"]))}</p>')
        if status == "active":
            parts.append('<form method="post"><fieldset><legend>Pay with</legend>')
            for i, asset in enumerate(assets):
                checked = " checked" if i == 0 else ""
                parts.append(
                    f'<label class="asset"><span><input type="radio" name="asset" '
                    f'value="{e(asset)}"{checked}> <span class="code">{e(asset)}</span></span>'
                    f"<span>{e(self._asset_amount(invoice, asset))}</span></label>"
                )
            parts.append(
                '</fieldset><div class="buttons">'
                '<button class="pay" name="action" value="pay">Pay</button>'
                '<button class="expire" name="action" value="expire">Let it expire</button>'
                "</div></form>"
            )
        elif status == "paid":
            paid = f"{invoice.get('paid_amount')} {invoice.get('paid_asset')}"
            parts.append(f'<p class="result">Paid <b>{e(paid)}</b> at {e(invoice["paid_at"])}.</p>')
        else:
            parts.append('<p class="result">This invoice can no longer be paid.</p>')
        if note:
            parts.append(f'<p class="result" role="status">{e(note)}</p>')
        parts.append(
            '<p class="note">A stand-in of Crypto Pay running on this computer: '
            "no real money moves.</p></section>"
        )
        return "".join(parts)

    def _asset_amount(self, invoice: dict[str, Any], asset: str) -> str:
        if invoice["currency_type"] != "fiat":
            return f"{invoice['amount']} {asset}"
        rate = self._rate(asset, invoice["fiat"])
        return f"≈ {fmt(round_up(Decimal(invoice['amount']) / rate, asset))} {asset}"


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Crypto Pay (local stand-in)</title>"
        f"<style>{_STYLE}</style></head><body><main><header><h1>Crypto Pay</h1>"
        "<p>Local stand-in · test money only</p></header>"
        f"{body}</main></body></html>"
    )
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
