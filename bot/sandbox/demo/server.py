"""The demo page's server: plays Telegram for one shopper and one admin in the browser.

It talks to the FakeTelegram's in-memory chats (a FakeUser sends, taps and uploads as a
Telegram client would) and streams each chat's state to the page (server-sent events).
On 127.0.0.1 only; a POST must carry the page's own header (another site cannot send it)
and every request must name this server as its Host (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.sandbox._server import FakeServer
from bot.sandbox._tg_model import SentMessage
from bot.sandbox._tg_user import FakeUser
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.demo.render import message_json, resolve_link
from bot.sandbox.telegram import FakeTelegram
from bot.sandbox.webapp import sign_init_data

STATIC = Path(__file__).resolve().parent / "static"
WEB_APP_JS = Path(__file__).resolve().parent.parent / "telegram_web_app.js"
HISTORY = 200  # messages of a chat sent to the page
# Photos shown in the page as pictures; anything else (an SVG with a script, say) downloads.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
HEARTBEAT_SECONDS = 20.0
ANSWER_WAIT_SECONDS = 10.0
# The Mini App's light theme, as Telegram passes it in tgWebAppThemeParams.
THEME = {
    "bg_color": "#ffffff",
    "text_color": "#17212b",
    "hint_color": "#707579",
    "link_color": "#2b8fd6",
    "button_color": "#2b8fd6",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#f1f3f5",
}


@dataclass(frozen=True)
class Persona:
    key: str  # "shopper" or "admin"
    label: str
    user: FakeUser


class DemoServer(FakeServer):
    def __init__(
        self,
        tg: FakeTelegram,
        cp: FakeCryptoPay,
        personas: list[Persona],
        *,
        bot_origin: str,
        port: int = 0,
    ) -> None:
        super().__init__(host="127.0.0.1", port=port)
        self.tg = tg
        self.cp = cp
        self.personas = {p.key: p for p in personas}
        self.bot_origin = bot_origin
        app = self.app
        app.middlewares.append(self._guard)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/telegram-web-app.js", self._web_app_js)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/send", self._send)
        app.router.add_post("/api/tap", self._tap)
        app.router.add_post("/api/upload", self._upload)
        app.router.add_post("/api/link", self._link)
        app.router.add_post("/api/webapp", self._webapp_url)
        app.router.add_get("/api/files/{who}/{message_id}", self._file)

    @property
    def url(self) -> str:
        return f"{self.origin}/"

    # --- guards -------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return web.json_response({"error": "wrong host"}, status=421)
        if request.method == "POST":
            # A header of its own makes any other site's request a preflighted one, which
            # this server never allows: only the page itself can act.
            origin = request.headers.get("Origin")
            if request.headers.get("X-Demo-Page") != "1" or origin not in (None, self.origin):
                return web.json_response({"error": "not from the demo page"}, status=403)
        response: web.StreamResponse = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def _persona(self, who: Any) -> Persona:
        persona = self.personas.get(str(who))
        if persona is None:
            raise web.HTTPNotFound(text="no such persona")
        return persona

    def _message(self, user: FakeUser, message_id: Any) -> SentMessage:
        message = self.tg.messages.get((user.id, int(message_id)))
        if message is None or message.deleted:
            raise LookupError(f"no message {message_id}")
        return message

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="bad JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="bad JSON")
        return body

    # --- page ---------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        csp = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"frame-src {self.bot_origin} {self.cp.origin}; connect-src 'self'; "
            # The page acts for both users (it can /refund): no other site may frame it.
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
        return web.FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": csp})

    async def _web_app_js(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_APP_JS, headers={"Content-Type": "text/javascript"})

    async def _config(self, request: web.Request) -> web.Response:
        bot = self.tg.bot_user
        return web.json_response(
            {
                "bot": {"name": bot["first_name"], "username": bot["username"]},
                "personas": [
                    {"key": p.key, "label": p.label, "name": p.user.first_name, "id": p.user.id}
                    for p in self.personas.values()
                ],
            }
        )

    # --- chats --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        chats = {}
        for key, persona in self.personas.items():
            messages = persona.user.chat_messages(include_user=True)[-HISTORY:]
            commands = self._commands(persona.user.id)
            chats[key] = {
                "version": persona.user.version,
                "messages": [message_json(m, key) for m in messages],
                "commands": commands,
                "menu_button": self._menu_button(persona.user.id),
            }
        return {"chats": chats}

    def _commands(self, chat_id: int) -> list[dict[str, str]]:
        """The command menu Telegram shows this chat (its own scope first, then the default)."""
        for scope in ({"type": "chat", "chat_id": chat_id}, {"type": "default"}):
            found = self.tg.commands.get((json.dumps(scope, sort_keys=True), ""))
            if found:
                return [{"command": c["command"], "description": c["description"]} for c in found]
        return []

    def _menu_button(self, chat_id: int) -> dict[str, str]:
        """The chat's menu button as Telegram shows it (setChatMenuButton: this chat's, else the
        bot's default): a web_app one opens the Mini App, anything else is the commands menu."""
        button = self.tg.menu_buttons.get(chat_id) or self.tg.menu_buttons.get(None) or {}
        web_app = button.get("web_app") or {}
        if button.get("type") == "web_app" and web_app.get("url"):
            return {"type": "web_app", "text": str(button.get("text") or ""), "url": web_app["url"]}
        return {"type": "commands"}

    def _version(self) -> tuple[object, ...]:
        """Changes whenever the page must be redrawn: a chat, the commands, the menu button."""
        chats = tuple(p.user.version for p in self.personas.values())
        return (*chats, repr(self.tg.commands), repr(self.tg.menu_buttons))

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        seen: tuple[object, ...] | None = None
        try:
            while not self.closing.is_set():
                now = self._version()
                if now != seen:
                    seen = now
                    data = json.dumps(self.snapshot(), ensure_ascii=False)
                    await response.write(f"data: {data}\n\n".encode())
                elif not await self._changed_since(seen):
                    await response.write(b": heartbeat\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _changed_since(self, seen: tuple[object, ...]) -> bool:
        """Until a chat changes (True), the heartbeat is due or the server stops (False)."""
        change = asyncio.ensure_future(
            self.tg.wait_until(
                lambda: True if self._version() != seen else None,
                timeout=HEARTBEAT_SECONDS,
                what="a chat change",
            )
        )
        stop = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({change, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (change, stop):
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, AssertionError):
            return bool(change.done() and not change.cancelled() and change.result())
        return False

    # --- actions ------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        persona = self._persona(body.get("who"))
        text = str(body.get("text") or "").strip()
        if not text:
            return web.json_response({"error": "empty message"}, status=400)
        await persona.user.send(text[:4096])
        return web.json_response({"ok": True})

    async def _tap(self, request: web.Request) -> web.Response:
        """A tap on a callback button, found by its place in the message's current keyboard
        (and its text: a keyboard edited meanwhile makes the tap miss, as in Telegram)."""
        body = await self._body(request)
        user = self._persona(body.get("who")).user
        try:
            live = self._message(user, body["message_id"])
            rows = (live.reply_markup or {})["inline_keyboard"]
            button = rows[int(body["row"])][int(body["col"])]
        except (KeyError, IndexError, TypeError, ValueError, LookupError):
            return web.json_response({"error": "no such button"}, status=404)
        if button.get("text") != body.get("text") or "callback_data" not in button:
            return web.json_response({"error": "the keyboard has changed"}, status=409)
        query_id = await user.tap_callback(live, button["callback_data"])
        try:
            answer = await user.wait_for_answer(query_id, timeout=ANSWER_WAIT_SECONDS)
        except AssertionError:
            answer = {}
        return web.json_response(
            {
                "ok": True,
                "answer": {
                    "text": answer.get("text") or "",
                    "show_alert": str(answer.get("show_alert", "")).lower() in ("true", "1"),
                },
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        """A document sent to the bot (the admin's .txt of codes with the sku as caption)."""
        if request.content_type != "multipart/form-data":
            return web.json_response({"error": "multipart only"}, status=415)
        form = await request.post()
        persona = self._persona(form.get("who"))
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return web.json_response({"error": "no file"}, status=400)
        caption = str(form.get("caption") or "").strip() or None
        await persona.user.send_document(
            upload.filename,
            upload.file.read(),
            caption=caption,
            mime_type=upload.content_type or "application/octet-stream",
        )
        return web.json_response({"ok": True})

    async def _link(self, request: web.Request) -> web.Response:
        """What opening a link the bot showed does in the demo (see render.resolve_link)."""
        body = await self._body(request)
        persona = self._persona(body.get("who"))
        link = resolve_link(
            str(body.get("url") or ""),
            bot_username=str(self.tg.bot_user["username"]),
            cryptopay_bot=self.cp.bot_username,
        )
        if link.kind == "invoice" and self.cp.invoice_by_hash(link.value) is not None:
            return web.json_response({"kind": "pay", "url": self.cp.pay_page_url(link.value)})
        if link.kind == "start":
            await persona.user.send(link.value)
            return web.json_response({"kind": "sent", "text": link.value})
        if link.kind == "unsupported":
            return web.json_response({"kind": "unsupported"})
        return web.json_response({"kind": "external", "url": link.value})

    async def _webapp_url(self, request: web.Request) -> web.Response:
        """The Mini App's address as Telegram opens it: initData signed for this user."""
        body = await self._body(request)
        persona = self._persona(body.get("who"))
        base = str(body.get("url") or f"{self.bot_origin}/app/")
        if not base.startswith(f"{self.bot_origin}/"):
            return web.json_response({"error": "not this shop's Mini App"}, status=400)
        init_data = sign_init_data(self.tg.token, persona.user.as_user())
        fragment, theme = quote(init_data, safe=""), quote(json.dumps(THEME), safe="")
        url = (
            f"{base.split('#')[0]}#tgWebAppData={fragment}&tgWebAppVersion=8.0"
            f"&tgWebAppPlatform=web&tgWebAppThemeParams={theme}"
        )
        return web.json_response({"url": url})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        user = self._persona(request.match_info["who"]).user
        try:
            message = self._message(user, request.match_info["message_id"])
        except (LookupError, ValueError):
            raise web.HTTPNotFound() from None
        upload = message.file
        if upload is None:
            raise web.HTTPNotFound()
        inline = "photo" in message.raw and upload.content_type in INLINE_IMAGES
        disposition = "inline" if inline else "attachment"
        name = upload.filename.replace('"', "")
        return web.Response(
            body=upload.content,
            content_type=upload.content_type if inline else "application/octet-stream",
            headers={
                "Content-Disposition": f'{disposition}; filename="{name}"',
                # Whatever a file holds, opened by itself it runs nothing on the page's origin.
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )
