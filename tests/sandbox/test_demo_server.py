"""The demo page's server against the stand-ins, in process: it acts as the FakeUsers, maps
invoice links to the pay page, streams the chats, and answers only the page itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import FakeCryptoPay, FakeTelegram
from bot.sandbox.demo.server import DemoServer, Persona

BOT_TOKEN = "777:demo-server-test"
CP_TOKEN = "42:demo-server-test"
PAGE = {"X-Demo-Page": "1", "Content-Type": "application/json"}


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeTelegram, FakeCryptoPay, DemoServer]]:
    async with (
        FakeTelegram(token=BOT_TOKEN, bot_username="demo_shop_bot") as tg,
        FakeCryptoPay(token=CP_TOKEN) as cp,
    ):
        personas = [
            Persona("shopper", "Shopper", tg.user(1, "Sam")),
            Persona("admin", "Admin", tg.user(2, "Ada")),
        ]
        demo = DemoServer(tg, cp, personas, bot_origin="http://127.0.0.1:9")
        await demo.start()
        try:
            yield tg, cp, demo
        finally:
            await demo.stop()


async def bot_call(tg: FakeTelegram, method: str, **params: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{tg.base_url}/bot{tg.token}/{method}", json=params) as resp,
    ):
        body = await resp.json()
    assert body["ok"], body
    return body["result"]


async def test_every_server_is_on_loopback(world) -> None:
    tg, cp, demo = world
    for server in (tg, cp, demo):
        assert server.host == "127.0.0.1"
        assert server.origin.startswith("http://127.0.0.1:")


async def test_only_the_page_may_act(world) -> None:
    tg, _, demo = world
    body = json.dumps({"who": "shopper", "text": "/start"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{demo.origin}/api/send", data=body) as resp:
            assert resp.status == 403  # no page header: a form or fetch from another site
        headers = {**PAGE, "Origin": "https://evil.example"}
        async with http.post(f"{demo.origin}/api/send", data=body, headers=headers) as resp:
            assert resp.status == 403
        headers = {**PAGE, "Host": "evil.example"}
        async with http.post(f"{demo.origin}/api/send", data=body, headers=headers) as resp:
            assert resp.status == 421  # DNS rebinding
        assert tg.pending_updates == []
        async with http.post(f"{demo.origin}/api/send", data=body, headers=PAGE) as resp:
            assert resp.status == 200
    [update] = tg.pending_updates
    assert update["message"]["text"] == "/start"
    assert update["message"]["from"]["id"] == 1


async def test_the_page_loads_only_its_own_code_and_is_never_framed(world) -> None:
    _, cp, demo = world
    async with aiohttp.ClientSession() as http, http.get(demo.url) as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
    rules = dict(rule.strip().split(" ", 1) for rule in csp.split(";"))
    assert rules["script-src"] == "'self'"
    assert rules["frame-src"] == f"http://127.0.0.1:9 {cp.origin}"  # the Mini App, the pay page
    assert rules["frame-ancestors"] == "'none'"  # no clickjacking of a page that can /refund


async def test_a_tap_is_a_callback_query_and_its_answer_comes_back(world) -> None:
    tg, _, demo = world
    sent = await bot_call(
        tg,
        "sendMessage",
        chat_id=1,
        text="<b>Menu</b>",
        parse_mode="HTML",
        reply_markup={"inline_keyboard": [[{"text": "Catalog", "callback_data": "cat"}]]},
    )

    async def answer() -> None:
        record = await tg.wait_until(
            lambda: next(iter(tg.callbacks.values()), None), timeout=5, what="a tap"
        )
        await bot_call(
            tg,
            "answerCallbackQuery",
            callback_query_id=record.query["id"],
            text="Out of stock",
            show_alert=True,
        )

    answering = asyncio.create_task(answer())
    tap = {
        "who": "shopper",
        "message_id": sent["message_id"],
        "row": 0,
        "col": 0,
        "text": "Catalog",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{demo.origin}/api/tap", json=tap, headers=PAGE) as resp:
            result = await resp.json()
        stale = {**tap, "text": "Help"}
        async with http.post(f"{demo.origin}/api/tap", json=stale, headers=PAGE) as resp:
            assert resp.status == 409  # the keyboard changed under the finger
    await answering
    assert result["answer"] == {"text": "Out of stock", "show_alert": True}
    [record] = tg.callbacks.values()
    assert record.query["data"] == "cat"
    assert record.query["from"]["id"] == 1


async def test_the_stream_carries_each_change(world) -> None:
    tg, _, demo = world
    async with aiohttp.ClientSession() as http, http.get(f"{demo.origin}/api/events") as resp:
        first = await read_event(resp)
        assert first["chats"]["shopper"]["messages"] == []
        await bot_call(
            tg, "sendMessage", chat_id=2, text="💰 <b>Order #1 paid</b>", parse_mode="HTML"
        )
        second = await read_event(resp)
    [message] = second["chats"]["admin"]["messages"]
    assert message["from"] == "bot"
    assert message["text"] == ["💰 ", {"t": "b", "c": ["Order #1 paid"]}]


async def test_the_menu_button_the_bot_sets_is_pushed_to_the_page(world) -> None:
    """setChatMenuButton with a web_app (for every chat, as the shop sets it): each chat's
    menu button opens that Mini App; a chat's own button wins over the default."""
    tg, _, demo = world
    async with aiohttp.ClientSession() as http, http.get(f"{demo.origin}/api/events") as resp:
        first = await read_event(resp)
        assert first["chats"]["shopper"]["menu_button"] == {"type": "commands"}
        web_app = {"url": "http://127.0.0.1:9/app/"}
        menu = {"type": "web_app", "text": "Open shop", "web_app": web_app}
        assert await bot_call(tg, "setChatMenuButton", menu_button=menu) is True
        second = await read_event(resp)  # pushed, though no chat has a new message
    shown = {"type": "web_app", "text": "Open shop", "url": "http://127.0.0.1:9/app/"}
    assert second["chats"]["shopper"]["menu_button"] == shown
    assert second["chats"]["admin"]["menu_button"] == shown
    await bot_call(tg, "setChatMenuButton", chat_id=2, menu_button={"type": "commands"})
    async with aiohttp.ClientSession() as http, http.get(f"{demo.origin}/api/state") as resp:
        state = await resp.json()
    assert state["chats"]["admin"]["menu_button"] == {"type": "commands"}
    assert state["chats"]["shopper"]["menu_button"] == shown


async def read_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    while True:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        if line.startswith(b"data: "):
            return json.loads(line[6:])


async def test_invoice_links_open_the_pay_page_and_deep_links_send_start(world) -> None:
    tg, cp, demo = world
    async with aiohttp.ClientSession(headers={"Crypto-Pay-API-Token": CP_TOKEN}) as http:
        async with http.post(
            f"{cp.base_url}/createInvoice", json={"asset": "USDT", "amount": "1"}
        ) as resp:
            invoice = (await resp.json())["result"]
    async with aiohttp.ClientSession() as http:
        for url in (invoice["bot_invoice_url"], invoice["mini_app_invoice_url"]):
            body = {"who": "shopper", "url": url}
            async with http.post(f"{demo.origin}/api/link", json=body, headers=PAGE) as resp:
                assert await resp.json() == {
                    "kind": "pay",
                    "url": cp.pay_page_url(invoice["hash"]),
                }
        body = {"who": "shopper", "url": "https://t.me/demo_shop_bot?start=p_witcher3"}
        async with http.post(f"{demo.origin}/api/link", json=body, headers=PAGE) as resp:
            assert (await resp.json())["kind"] == "sent"
        # A link of another scheme (from a Mini App's openLink, say) is never handed back.
        body = {"who": "shopper", "url": "javascript:fetch('/api/send')"}
        async with http.post(f"{demo.origin}/api/link", json=body, headers=PAGE) as resp:
            assert await resp.json() == {"kind": "unsupported"}
    [update] = tg.pending_updates
    assert update["message"]["text"] == "/start p_witcher3"


async def test_documents_download_only_in_their_own_chat(world) -> None:
    tg, _, demo = world
    form = aiohttp.FormData()
    form.add_field("chat_id", "2")
    form.add_field("document", b"order,total\n1,9.99\n", filename="orders.csv")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{tg.token}/sendDocument", data=form) as resp:
            sent = (await resp.json())["result"]
        async with http.get(f"{demo.origin}/api/files/admin/{sent['message_id']}") as resp:
            assert resp.status == 200
            assert await resp.read() == b"order,total\n1,9.99\n"
            assert 'attachment; filename="orders.csv"' in resp.headers["Content-Disposition"]
        async with http.get(f"{demo.origin}/api/files/shopper/{sent['message_id']}") as resp:
            assert resp.status == 404  # another chat's message
        async with http.get(f"{demo.origin}/api/config") as resp:
            config = await resp.json()
    assert config["bot"] == {"name": "Fake Shop", "username": "demo_shop_bot"}
    assert [p["key"] for p in config["personas"]] == ["shopper", "admin"]


async def test_photos_are_shown_inline(world) -> None:
    tg, _, demo = world
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    form = aiohttp.FormData()
    form.add_field("chat_id", "1")
    form.add_field("caption", "<b>Witcher 3</b>")
    form.add_field("parse_mode", "HTML")
    form.add_field("photo", png, filename="w3.png", content_type="image/png")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{tg.token}/sendPhoto", data=form) as resp:
            sent = (await resp.json())["result"]
        async with http.get(f"{demo.origin}/api/state") as resp:
            state = await resp.json()
        [message] = state["chats"]["shopper"]["messages"]
        assert message["photo"] == {"href": f"/api/files/shopper/{sent['message_id']}"}
        assert message["text"] == [{"t": "b", "c": ["Witcher 3"]}]
        async with http.get(f"{demo.origin}{message['photo']['href']}") as resp:
            assert resp.status == 200
            assert resp.content_type == "image/png"
            assert resp.headers["Content-Disposition"].startswith("inline")
            assert await resp.read() == png


async def test_a_file_never_runs_on_the_pages_origin(world) -> None:
    """A photo that is an SVG with a script (or any document) is not served as a page of the
    demo's origin: downloaded, and sandboxed should it be opened by itself."""
    tg, _, demo = world
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    form = aiohttp.FormData()
    form.add_field("chat_id", "1")
    form.add_field("photo", svg, filename="x.svg", content_type="image/svg+xml")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot{tg.token}/sendPhoto", data=form) as resp:
            sent = (await resp.json())["result"]
        async with http.get(f"{demo.origin}/api/files/shopper/{sent['message_id']}") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/octet-stream"
            assert resp.headers["Content-Disposition"].startswith("attachment")
            assert "sandbox" in resp.headers["Content-Security-Policy"]
