"""The aiohttp routes: Crypto Pay webhook, health and metrics (PRODUCT.md §6)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.context import ShopContext
from bot.logs import log_context
from bot.shop.settlement import SettleReport, settle_invoices
from payments import InvalidUpdateError, Invoice, parse_update, verify_signature
from storage import DATABASE_ERRORS, SETTLE_BATCH, Coalescer, orders_by_status, outbox_backlog

log = logging.getLogger("bot.web")

MAX_WEBHOOK_BODY = 1024 * 1024
SIGNATURE_HEADER = "crypto-pay-api-signature"
CTX_KEY = web.AppKey("ctx", ShopContext)
# A paid invoice and the webhook body that told of it.
Paid = tuple[Invoice, str]
SETTLER_KEY = web.AppKey("settler", Coalescer[Paid, SettleReport])


def build_web_app(ctx: ShopContext) -> web.Application:
    app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
    app[CTX_KEY] = ctx
    app[SETTLER_KEY] = webhook_settler(ctx)
    app.router.add_post(ctx.settings.cryptopay_webhook_path, cryptopay_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def same_secret(given: str | None, expected: str) -> bool:
    """A header's value against a secret, in constant time; any text that is not the secret
    (non-ASCII too) is a mismatch, never an error."""
    if given is None:
        return False
    try:
        # aiohttp hands undecodable header bytes over as surrogate escapes.
        raw = given.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(raw, expected.encode("utf-8"))


class TelegramWebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler with a secret check that cannot raise: its own compares str
    with `secrets.compare_digest`, which raises on a non-ASCII header (a 500 with a
    traceback). Here a wrong header of any kind is answered 401."""

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        return bool(self.secret_token) and same_secret(
            telegram_secret_token, self.secret_token or ""
        )


def add_telegram_webhook(
    app: web.Application, dp: Dispatcher, bot: Bot, *, path: str, secret: str
) -> None:
    """The Telegram webhook route: updates are handled in the background, 200 at once."""
    TelegramWebhookHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True
    ).register(app, path=path)


def webhook_settler(ctx: ShopContext) -> Coalescer[Paid, SettleReport]:
    """Group commit for the webhook: the payments of webhooks arriving while a settle
    transaction runs are settled together in the next one (up to SETTLE_BATCH), each
    webhook answered with its own outcome once that transaction has committed."""

    async def settle(paid: Sequence[Paid]) -> list[SettleReport | Exception]:
        invoices = [invoice for invoice, _ in paid]
        bodies = [body for _, body in paid]
        return await settle_invoices(ctx, invoices, source="webhook", raw_bodies=bodies)

    return Coalescer(settle, SETTLE_BATCH)


def _answer(ctx: ShopContext, status: int, body: dict[str, object]) -> web.Response:
    ctx.metrics.webhook_responses.labels(code=str(status)).inc()
    return web.json_response(body, status=status)


async def cryptopay_webhook(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if (request.content_length or 0) > MAX_WEBHOOK_BODY:
        return _answer(ctx, 413, {"ok": False, "error": "body too large"})
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _answer(ctx, 413, {"ok": False, "error": "body too large"})
    token = ctx.settings.cryptopay_token.get_secret_value()
    if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), token):
        log.warning(
            "Crypto Pay webhook with a bad or missing signature", extra={"peer": request.remote}
        )
        return _answer(ctx, 401, {"ok": False, "error": "bad signature"})
    try:
        update = parse_update(body)
    except InvalidUpdateError as error:
        log.warning("Crypto Pay webhook body is not an update: %s", error)
        return _answer(ctx, 400, {"ok": False, "error": "not an update"})
    log.debug("Crypto Pay webhook verified: %s, %d bytes", update.update_type, len(body))
    if update.update_type != "invoice_paid":
        log.info("ignoring Crypto Pay update", extra={"update_type": update.update_type})
        return _answer(ctx, 200, {"ok": True, "ignored": True})
    # The context covers the failure line too: an operator needs the invoice id most there.
    with log_context(invoice_id=update.payload.invoice_id):
        try:
            settle = request.app[SETTLER_KEY]
            report = await settle((update.payload, body.decode("utf-8", "replace")))
        except DATABASE_ERRORS:
            log.exception("database unavailable while settling a webhook")
            return _answer(ctx, 503, {"ok": False, "error": "try again later"})
    return _answer(ctx, 200, {"ok": True, "result": report.outcome})


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if await ctx.db.ping():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    try:  # gauges read from the database at scrape time, shared by every replica
        for status, count in (await orders_by_status(ctx.db)).items():
            ctx.metrics.orders_by_status.labels(status=status).set(count)
        ctx.metrics.outbox_backlog.set(await outbox_backlog(ctx.db))
    except DATABASE_ERRORS:
        log.warning("metrics: database unavailable; gauges not refreshed")
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
