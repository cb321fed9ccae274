"""The 13 Crypto Pay API methods of the fake (mixed into FakeCryptoPay)."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bot.sandbox._cp_data import (
    MAX_EXPIRES_IN,
    NAMES,
    PAID_BTN_NAMES,
    SWAP_TO,
    CpError,
    amount_param,
    bool_param,
    fmt,
    fmt8,
    id_list,
    int_param,
    iso,
    order_invoice,
    page,
    parse_iso,
    required,
    str_param,
)

# Mixed into FakeCryptoPay; typed loosely because FakeCryptoPay is built from this class.
_Base: Any = object

_ALPHABET = string.ascii_letters + string.digits


def _hash(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(10))


class CryptoPayMethods(_Base):
    def _asset(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.assets:
            raise CpError(400, "UNSUPPORTED_ASSET", allowed_crypto_assets=list(self.assets))
        return value

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return {
            "app_id": self.app_id,
            "name": self.app_name,
            "payment_processing_bot_username": self.bot_username,
        }

    async def _m_createInvoice(self, params: dict[str, Any]) -> Any:
        currency_type = params.get("currency_type") or "crypto"
        invoice: dict[str, Any] = {"currency_type": currency_type}
        if currency_type == "crypto":
            invoice["asset"] = self._asset(required(params, "asset"))
        elif currency_type == "fiat":
            fiat = required(params, "fiat")
            if fiat not in self.fiat_per_usd:
                raise CpError(400, "UNSUPPORTED_FIAT", allowed_fiat=list(self.fiat_per_usd))
            invoice["fiat"] = fiat
            accepted = params.get("accepted_assets")
            if isinstance(accepted, list | dict):
                raise CpError(500, "APP_ERROR")  # must be a comma-separated string
            names = [a.strip() for a in str(accepted).split(",")] if accepted else self.assets
            invoice["accepted_assets"] = [self._asset(a) for a in names]
        else:
            raise CpError(400, "CURRENCY_TYPE_INVALID")
        invoice["amount"] = fmt(amount_param(params))
        description = str_param(params, "description", 1024)
        hidden = str_param(params, "hidden_message", 2048)
        payload = str_param(params, "payload", 4096, utf8=True)
        btn_name = params.get("paid_btn_name") or None
        btn_url = params.get("paid_btn_url") or None
        if btn_name is not None:
            if btn_name not in PAID_BTN_NAMES:
                raise CpError(400, "PAID_BTN_NAME_INVALID")
            if btn_url is None:
                raise CpError(400, "PAID_BTN_URL_REQUIRED")
            if not str(btn_url).startswith(("http://", "https://")):
                raise CpError(400, "PAID_BTN_URL_INVALID")
        swap_to = params.get("swap_to") or None
        if swap_to is not None and swap_to not in SWAP_TO:
            raise CpError(400, "SWAP_TO_INVALID")
        expires_in = int_param(params, "expires_in", error="EXPIRES_IN_INVALID")
        if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise CpError(400, "EXPIRES_IN_INVALID")
        allow_comments = bool_param(params, "allow_comments", True)
        allow_anonymous = bool_param(params, "allow_anonymous", True)

        invoice_id = self._next_invoice_id
        self._next_invoice_id += 1
        code = _hash("IV")
        now = self.now()
        invoice.update(
            invoice_id=invoice_id,
            hash=code,
            pay_url=f"https://t.me/{self.bot_username}?start={code}",
            bot_invoice_url=f"https://t.me/{self.bot_username}?start={code}",
            mini_app_invoice_url=self._mini_app_url(code),
            web_app_invoice_url=f"https://{self._web_app_host}/invoices/{code}",
            status="active",
            created_at=iso(now),
            allow_comments=allow_comments,
            allow_anonymous=allow_anonymous,
        )
        optional = {
            "description": description,
            "hidden_message": hidden,
            "payload": payload,
            "paid_btn_name": btn_name,
            "paid_btn_url": btn_url,
            "swap_to": swap_to,
        }
        invoice.update({k: v for k, v in optional.items() if v is not None})
        if expires_in is not None:
            invoice["expiration_date"] = iso(now + timedelta(seconds=expires_in))
            self._expiry[invoice_id] = now + timedelta(seconds=expires_in)
        invoice = order_invoice(invoice)
        self.invoices[invoice_id] = invoice
        self.created_invoices.append(params)
        return invoice

    def _mini_app_url(self, code: str) -> str:
        if self.network == "mainnet":
            return f"https://t.me/CryptoBot/app?startapp=invoice-{code}&mode=compact"
        return f"https://t.me/CryptoTestnetBot/app?startapp=invoice-{code}"

    async def _m_deleteInvoice(self, params: dict[str, Any]) -> Any:
        invoice_id = int_param(params, "invoice_id", error="INVOICE_ID_INVALID")
        if invoice_id not in self.invoices:
            raise CpError(400, "INVOICE_NOT_FOUND")
        self.deleted_invoices[invoice_id] = self.invoices.pop(invoice_id)
        return True

    async def _m_getInvoices(self, params: dict[str, Any]) -> Any:
        status = params.get("status") or None
        if status is not None and status not in ("active", "paid"):
            raise CpError(400, "STATUS_INVALID", allowed_statuses=["active", "paid"])
        ids = id_list(params, "invoice_ids")
        asset, fiat = params.get("asset") or None, params.get("fiat") or None
        items = [
            inv
            for inv_id, inv in sorted(self.invoices.items(), reverse=True)
            if (ids is None or inv_id in ids)
            and (status is None or inv["status"] == status)
            and (asset is None or inv.get("asset") == asset)
            and (fiat is None or inv.get("fiat") == fiat)
        ]
        return page(params, items)

    async def _m_transfer(self, params: dict[str, Any]) -> Any:
        if not self.transfers_enabled:
            raise CpError(
                403,
                "METHOD_DISABLED",
                description="Transfers are disabled for this app. "
                "Enable them in the app settings: Security -> Transfers.",
            )
        user_id = int_param(params, "user_id", error="USER_ID_INVALID")
        if user_id is None:
            raise CpError(400, "PARAM_USER_ID_REQUIRED")
        asset = self._asset(required(params, "asset"))
        amount = amount_param(params)
        spend_id = str(required(params, "spend_id"))
        if len(spend_id) > 64:
            raise CpError(400, "SPEND_ID_TOO_LONG")
        comment = str_param(params, "comment", 1024)
        previous = next((t for t in self.transfers.values() if t["spend_id"] == spend_id), None)
        if previous is not None:
            if self.spend_id_reuse == "return_existing":
                return {k: v for k, v in previous.items() if k != "spend_id"}
            raise CpError(400, self.spend_id_reuse_error)
        if self.known_users is not None and user_id not in self.known_users:
            raise CpError(400, "USER_NOT_FOUND")
        if self.transfer_min_usd is not None and amount * self._rate(asset, "USD") < Decimal(
            self.transfer_min_usd
        ):
            raise CpError(400, "AMOUNT_TOO_SMALL")
        if self.balances.get(asset, Decimal(0)) < amount:
            raise CpError(400, "NOT_ENOUGH_COINS")
        self.balances[asset] = self.balances.get(asset, Decimal(0)) - amount
        transfer = {
            "transfer_id": self._next_transfer_id,
            "spend_id": spend_id,
            "user_id": user_id,
            "asset": asset,
            "amount": fmt(amount),
            "status": "completed",
            "completed_at": iso(self.now()),
        }
        if comment:
            transfer["comment"] = comment
        self._next_transfer_id += 1
        self.transfers[transfer["transfer_id"]] = transfer
        # /transfer does not echo spend_id; getTransfers does.
        return {k: v for k, v in transfer.items() if k != "spend_id"}

    async def _m_getTransfers(self, params: dict[str, Any]) -> Any:
        ids = id_list(params, "transfer_ids")
        asset, spend_id = params.get("asset") or None, params.get("spend_id") or None
        items = [
            t
            for t_id, t in sorted(self.transfers.items(), reverse=True)
            if (ids is None or t_id in ids)
            and (asset is None or t["asset"] == asset)
            and (spend_id is None or t["spend_id"] == spend_id)
        ]
        return page(params, items)

    async def _m_createCheck(self, params: dict[str, Any]) -> Any:
        if not self.checks_enabled:
            raise CpError(403, "METHOD_DISABLED", description="Checks are disabled for this app.")
        asset = self._asset(required(params, "asset"))
        amount = amount_param(params)
        if self.balances.get(asset, Decimal(0)) < amount:
            raise CpError(400, "NOT_ENOUGH_COINS")
        self.balances[asset] -= amount
        code = _hash("CQ")
        check: dict[str, Any] = {
            "check_id": self._next_check_id,
            "hash": code,
            "asset": asset,
            "amount": fmt(amount),
            "bot_check_url": f"https://t.me/{self.bot_username}?start={code}",
            "status": "active",
            "created_at": iso(self.now()),
        }
        for key in ("pin_to_user_id", "pin_to_username"):
            if params.get(key):
                check[key] = params[key]
        self._next_check_id += 1
        self.checks[check["check_id"]] = check
        return check

    async def _m_deleteCheck(self, params: dict[str, Any]) -> Any:
        check_id = int_param(params, "check_id", error="CHECK_ID_INVALID")
        check = self.checks.get(check_id or 0)
        if check is None:
            raise CpError(400, "CHECK_NOT_FOUND")
        del self.checks[check["check_id"]]
        if check["status"] == "active":
            self.balances[check["asset"]] += Decimal(check["amount"])
        return True

    async def _m_getChecks(self, params: dict[str, Any]) -> Any:
        status = params.get("status") or None
        if status is not None and status not in ("active", "activated"):
            raise CpError(400, "STATUS_INVALID", allowed_statuses=["active", "activated"])
        ids = id_list(params, "check_ids")
        asset = params.get("asset") or None
        items = [
            c
            for c_id, c in sorted(self.checks.items(), reverse=True)
            if (ids is None or c_id in ids)
            and (asset is None or c["asset"] == asset)
            and (status is None or c["status"] == status)
        ]
        return page(params, items)

    async def _m_getBalance(self, params: dict[str, Any]) -> Any:
        codes = list(dict.fromkeys([*self.assets, *self.balances]))
        return [
            {
                "currency_code": code,
                "available": fmt(self.balances.get(code, Decimal(0))),
                "onhold": "0",
            }
            for code in codes
        ]

    async def _m_getExchangeRates(self, params: dict[str, Any]) -> Any:
        rates = []
        for source in self.assets:
            for target in self.fiat_per_usd:
                rates.append(self._rate_item(source, target, crypto=True))
        for source in ("USD", "EUR"):
            for target in self.fiat_per_usd:
                if source != target:
                    rates.append(self._rate_item(source, target, crypto=False))
        return rates

    def _rate_item(self, source: str, target: str, *, crypto: bool) -> dict[str, Any]:
        return {
            "is_valid": self.rates_valid,
            "is_crypto": crypto,
            "is_fiat": not crypto,
            "source": source,
            "target": target,
            "rate": fmt8(self._rate(source, target)),
        }

    async def _m_getCurrencies(self, params: dict[str, Any]) -> Any:
        out: list[dict[str, Any]] = []
        for code in self.assets:
            name, stable, url, decimals = NAMES.get(code, (code, False, "https://t.me/send", 9))
            out.append(
                {
                    "is_blockchain": not stable,
                    "is_stablecoin": stable,
                    "is_fiat": False,
                    "name": name,
                    "code": code,
                    "url": url,
                    "decimals": decimals,
                }
            )
        for code in self.fiat_per_usd:
            out.append(
                {
                    "is_blockchain": False,
                    "is_stablecoin": False,
                    "is_fiat": True,
                    "name": code,
                    "code": code,
                    "decimals": 8,
                }
            )
        return out

    async def _m_getStats(self, params: dict[str, Any]) -> Any:
        now = self.now()
        end = parse_iso(params["end_at"], "end_at") if params.get("end_at") else now
        start = (
            parse_iso(params["start_at"], "start_at")
            if params.get("start_at")
            else end - timedelta(days=1)
        )
        window = [
            inv
            for inv in [*self.invoices.values(), *self.deleted_invoices.values()]
            if start <= parse_iso(inv["created_at"], "created_at") <= end
        ]
        paid = [inv for inv in window if inv["status"] == "paid"]
        volume = sum(
            (Decimal(inv["paid_amount"]) * Decimal(inv["paid_usd_rate"]) for inv in paid),
            Decimal(0),
        )
        return {
            "volume": float(round(volume, 2)),
            "conversion": round(len(paid) / len(window) * 100, 2) if window else 0,
            "unique_users_count": 0,
            "created_invoice_count": len(window),
            "paid_invoice_count": len(paid),
            "start_at": iso(start),
            "end_at": iso(end),
        }
