"""What the demo page is sent: a chat's messages as JSON, and where a link in them leads.

Formatting travels as a tree of allowed nodes (never as HTML): the page builds DOM nodes
from it with `textContent`, so nothing the bot sends can run in the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox._tg_model import SentMessage

# Telegram's HTML tags → the node the page draws.
_NODES = {
    "b": "b",
    "strong": "b",
    "i": "i",
    "em": "i",
    "u": "u",
    "ins": "u",
    "s": "s",
    "strike": "s",
    "del": "s",
    "code": "code",
    "pre": "pre",
    "a": "a",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
}
Node = str | dict[str, Any]


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: dict[str, Any] = {"t": "root", "c": []}
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _NODES.get(tag)
        values = dict(attrs)
        if tag == "span" and "tg-spoiler" in (values.get("class") or ""):
            kind = "spoiler"
        node: dict[str, Any] = {"t": kind or "span", "c": []}
        href = values.get("href") or ""
        if kind == "a" and href.lower().startswith(("http://", "https://", "tg://")):
            node["href"] = href
        self.stack[-1]["c"].append(node)
        self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        children = self.stack[-1]["c"]
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def rich_text(raw: str | None, parse_mode: str | None, plain: str | None) -> list[Node]:
    """The message's text as nodes: parsed when it was sent as HTML, else as it is."""
    if raw is None or (parse_mode or "").upper() != "HTML":
        return [plain] if plain else []
    tree = _Tree()
    tree.feed(raw)
    tree.close()
    children: list[Node] = tree.root["c"]
    return children


def message_json(message: SentMessage, who: str) -> dict[str, Any]:
    raw = message.raw
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    buttons = [[_button(button) for button in row] for row in rows]
    item: dict[str, Any] = {
        "id": message.message_id,
        "from": "bot" if message.outgoing else "user",
        "date": raw.get("date"),
        "edited": message.edits > 0,
        "text": rich_text(message.raw_text, message.parse_mode, message.text)
        if message.outgoing
        else ([message.text] if message.text else []),
        "buttons": buttons,
    }
    href = f"/api/files/{who}/{message.message_id}"
    if "document" in raw:
        document = raw["document"]
        item["document"] = {
            "name": document.get("file_name") or "file",
            "size": document.get("file_size") or 0,
            "href": href,
        }
    if "photo" in raw:
        has_bytes = message.file is not None and bool(message.file.content)
        item["photo"] = {"href": href if has_bytes else None}
    return item


def _button(button: dict[str, Any]) -> dict[str, Any]:
    for kind in ("callback_data", "url", "web_app"):
        if kind in button:
            break
    else:
        kind = "other"
    out: dict[str, Any] = {"text": button.get("text", ""), "kind": kind.removesuffix("_data")}
    if kind == "url":
        out["url"] = button["url"]
    elif kind == "web_app":
        out["url"] = (button.get("web_app") or {}).get("url", "")
    return out


@dataclass(frozen=True)
class Link:
    """Where a link the bot showed leads in the demo."""

    # "invoice" (an invoice's hash), "start" (a deep link into this bot), "external" (an
    # http(s) or tg link, opened by the browser), "unsupported" (any other scheme: never opened)
    kind: str
    value: str


_INVOICE_APP_HOSTS = ("testnet-app.send.tg", "app.send.tg")
# What the page may hand to window.open: never javascript:, data:, file: or the like, which
# would run in (or read from) the demo page's origin.
_EXTERNAL_SCHEMES = ("http", "https", "tg")


def resolve_link(url: str, *, bot_username: str, cryptopay_bot: str) -> Link:
    """Telegram opens t.me links inside the app; the demo does what Telegram would do with
    the ones it can play: an invoice of Crypto Bot (bot_invoice_url, mini_app_invoice_url,
    web_app_invoice_url) opens the pay page, a deep link into this bot sends `/start X`."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    query = parse_qs(parts.query)
    path = [p for p in parts.path.split("/") if p]
    if host in ("t.me", "telegram.me") and path:
        name = path[0].lower()
        if name == cryptopay_bot.lower():
            start = (query.get("start") or query.get("startapp") or [""])[0]
            start = start.removeprefix("invoice-")
            if start.startswith("IV"):
                return Link("invoice", start)
        if name == bot_username.lower() and len(path) == 1:
            start = (query.get("start") or [""])[0]
            return Link("start", f"/start {start}" if start else "/start")
    if host in _INVOICE_APP_HOSTS and len(path) == 2 and path[0] == "invoices":
        return Link("invoice", path[1])
    if parts.scheme.lower() not in _EXTERNAL_SCHEMES:
        return Link("unsupported", url)
    return Link("external", url)
