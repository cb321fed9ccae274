"""Bot API methods for receiving updates: getMe, long polling and webhooks (mixed in)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bot.sandbox._tg_model import (
    DEFAULT_UPDATE_TYPES,
    POLL_CONFLICT,
    TgError,
    bad,
    param_bool,
    param_int,
    param_json,
)

# Mixed into FakeTelegram; typed loosely because FakeTelegram is built from this class.
_Base: Any = object


class UpdateMethods(_Base):
    webhook: dict[str, Any] | None
    _updates: list[dict[str, Any]]
    _client: aiohttp.ClientSession | None

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise TgError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = param_int(params, "offset", 0) or 0
        limit = min(max(param_int(params, "limit", 100) or 100, 1), 100)
        timeout = max(param_int(params, "timeout", 0) or 0, 0)
        allowed = param_json(params, "allowed_updates")
        if allowed is not None:
            self.allowed_updates = list(allowed) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        permitted = set(self.allowed_updates or DEFAULT_UPDATE_TYPES)
        self._updates = [
            u for u in self._updates if next(iter(u.keys() - {"update_id"})) in permitted
        ]
        self._poll_generation += 1
        generation = self._poll_generation
        await self._notify()  # an older long poll still waiting now ends with 409
        if not self._updates and timeout > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(
                            lambda: (
                                bool(self._updates)
                                or generation != self._poll_generation
                                or self.closing.is_set()
                                or self.webhook is not None
                            )
                        ),
                        timeout,
                    )
                except TimeoutError:
                    pass
        if generation != self._poll_generation:
            raise TgError(409, POLL_CONFLICT)
        return self._updates[:limit]

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url") or ""
        if not url:
            return await self._m_deleteWebhook(params)
        if not str(url).startswith(("http://", "https://")):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad("secret token contains unallowed characters")
        allowed = param_json(params, "allowed_updates")
        if allowed is not None:
            self.allowed_updates = list(allowed) or None
        if param_bool(params, "drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed,
            "max_connections": param_int(params, "max_connections", 40),
            "ip_address": params.get("ip_address"),
            "last_error_date": None,
            "last_error_message": None,
        }
        pending, self._updates = self._updates, []
        for update in pending:
            await self._post_webhook(update)
        return True, "Webhook was set"

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        if param_bool(params, "drop_pending_updates"):
            self._updates.clear()
        was_set, self.webhook = self.webhook is not None, None
        return True, "Webhook was deleted" if was_set else "Webhook is already deleted"

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        if self.webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        info = {
            "url": self.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
            "max_connections": self.webhook["max_connections"],
            "ip_address": "127.0.0.1",
        }
        if self.webhook["allowed_updates"]:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.webhook["last_error_date"]:
            info["last_error_date"] = self.webhook["last_error_date"]
            info["last_error_message"] = self.webhook["last_error_message"]
        return info

    async def _post_webhook(self, update: dict[str, Any]) -> None:
        assert self.webhook is not None
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.webhook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        url = self.webhook["url"]
        if self.webhook_targets:
            url = self.webhook_targets[self._target_turn % len(self.webhook_targets)]
            self._target_turn += 1
        record: dict[str, Any] = {"update": update, "status": None, "error": None, "url": url}
        self.webhook_deliveries.append(record)
        try:
            async with self._client.post(
                url,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as resp:
                record["status"] = resp.status
                reply = await self._read_webhook_reply(resp)
            if resp.status >= 300:
                self.webhook["last_error_message"] = (
                    f"Wrong response from the webhook: {resp.status} {resp.reason}"
                )
                self.webhook["last_error_date"] = int(time.time())
            elif reply and "method" in reply:
                await self._run_webhook_reply(reply)
        except (aiohttp.ClientError, TimeoutError) as e:
            record["error"] = repr(e)
            self.webhook["last_error_message"] = f"Connection failed: {type(e).__name__}"
            self.webhook["last_error_date"] = int(time.time())
        await self._notify()

    async def _read_webhook_reply(self, resp: aiohttp.ClientResponse) -> dict[str, Any] | None:
        """aiogram may answer a webhook with a method call (JSON or multipart); Telegram runs it."""
        if resp.content_type == "application/json":
            try:
                data = await resp.json()
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
        if resp.content_type == "multipart/form-data":
            reader = aiohttp.MultipartReader.from_response(resp)
            fields: dict[str, Any] = {}
            async for part in reader:
                if isinstance(part, aiohttp.BodyPartReader) and part.name:
                    fields[part.name] = (await part.read()).decode()
            return fields
        return None

    async def _run_webhook_reply(self, reply: dict[str, Any]) -> None:
        method = str(reply.pop("method"))
        known = self._methods.get(method.lower())
        self.calls.append((known[0] if known else method, reply))
        if known is not None:
            try:
                await known[1](reply)
            except TgError:
                pass  # Telegram drops errors of webhook replies silently
