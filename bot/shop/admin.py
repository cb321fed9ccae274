"""The admin's actions: code uploads, /recheck, and the audit log every admin action writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.context import ShopContext
from bot.screens.texts import en_admin as ta
from bot.shop.settlement import recheck_order
from payments import CryptoPayError
from storage import ProductNotFound, add_codes, get_order, get_product, stock_counts, write_audit

log = logging.getLogger("bot.admin")

MAX_UPLOAD_BYTES = 512 * 1024
MAX_CODE_LENGTH = 512


async def audit(ctx: ShopContext, admin_id: int, action: str, details: str, result: str) -> None:
    """Who did what, when, with what result. Never lets a logging failure hide the action."""
    try:
        await write_audit(ctx.db, admin_id, action, details[:2000], result[:256])
    except Exception:
        log.exception("could not write the audit log", extra={"action": action})


@dataclass(frozen=True)
class UploadResult:
    ok: bool
    text: str
    added: int = 0
    skipped: int = 0


def parse_codes(data: bytes) -> tuple[list[str] | None, str]:
    """One code per line; (codes, "") or (None, why the file is refused)."""
    if len(data) > MAX_UPLOAD_BYTES:
        return None, ta.upload_too_big(MAX_UPLOAD_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, ta.upload_not_utf8()
    codes = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in line):
            return None, ta.upload_bad_line(number, ta.UPLOAD_CONTROL_CHARACTERS)
        if len(line) > MAX_CODE_LENGTH:
            return None, ta.upload_bad_line(number, ta.upload_line_too_long(MAX_CODE_LENGTH))
        codes.append(line)
    if not any(codes):
        return None, ta.UPLOAD_EMPTY
    return codes, ""


async def upload_codes(ctx: ShopContext, sku: str, data: bytes) -> UploadResult:
    product = await get_product(ctx.db, sku)
    if product is None or product.id is None:
        return UploadResult(False, ta.unknown_sku(sku))
    if product.unlimited:
        return UploadResult(False, ta.UPLOAD_UNLIMITED)
    codes, why = parse_codes(data)
    if codes is None:
        return UploadResult(False, why)
    try:
        added, skipped = await add_codes(ctx.db, sku, codes)
    except ProductNotFound:
        return UploadResult(False, ta.unknown_sku(sku))
    available = (await stock_counts(ctx.db, product.id)).available
    return UploadResult(True, ta.codes_added(sku, added, skipped, available), added, skipped)


async def recheck(ctx: ShopContext, admin_id: int, order_id: int) -> str:
    """Settle from getInvoices now (the same settle path as the webhook); the answer text."""
    details = await get_order(ctx.db, order_id)
    if details is None:
        text, result = ta.order_not_found(order_id), "not found"
    else:
        try:
            invoice_status = await recheck_order(ctx, details.order, source="recheck")
        except CryptoPayError as error:
            invoice_status = ""
            text, result = ta.cryptopay_down(error.name), f"error {error.name}"
        if invoice_status == "none":
            text, result = ta.recheck_no_invoice(order_id), "no invoice"
        elif invoice_status:
            after = await get_order(ctx.db, order_id)
            status = after.order.status if after else details.order.status
            text, result = ta.recheck(order_id, invoice_status, status), f"invoice {invoice_status}"
    await audit(ctx, admin_id, "recheck", str(order_id), result)
    return text
