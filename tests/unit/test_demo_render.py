"""The demo page's message JSON and link mapping (bot/sandbox/demo/render.py)."""

from __future__ import annotations

from bot.sandbox.demo.render import Link, resolve_link, rich_text


def test_html_becomes_a_tree_of_known_nodes() -> None:
    raw = (
        '<b>Order #1</b> &lt;script&gt; <a href="https://example.com/x">link</a> '
        '<a href="javascript:alert(1)">bad</a> <tg-spoiler>s</tg-spoiler> '
        '<span class="tg-spoiler">t</span> <code>C-1</code>'
    )
    nodes = rich_text(raw, "HTML", None)
    assert nodes[0] == {"t": "b", "c": ["Order #1"]}
    assert nodes[1] == " <script> "  # an entity stays text
    assert nodes[2] == {"t": "a", "c": ["link"], "href": "https://example.com/x"}
    assert nodes[4] == {"t": "a", "c": ["bad"]}  # no href but http(s) and tg
    assert nodes[6] == {"t": "spoiler", "c": ["s"]}
    assert nodes[8] == {"t": "spoiler", "c": ["t"]}
    assert nodes[10] == {"t": "code", "c": ["C-1"]}


def test_text_not_sent_as_html_is_kept_as_it_is() -> None:
    assert rich_text("<b>x</b>", None, "<b>x</b>") == ["<b>x</b>"]
    assert rich_text(None, "HTML", "plain") == ["plain"]


def resolve(url: str) -> Link:
    return resolve_link(url, bot_username="demo_shop_bot", cryptopay_bot="CryptoTestnetBot")


def test_invoice_links_lead_to_the_pay_page() -> None:
    assert resolve("https://t.me/CryptoTestnetBot?start=IVabcDEF1234") == Link(
        "invoice", "IVabcDEF1234"
    )
    assert resolve("https://t.me/CryptoTestnetBot/app?startapp=invoice-IVabcDEF1234") == Link(
        "invoice", "IVabcDEF1234"
    )
    assert resolve("https://testnet-app.send.tg/invoices/IVabcDEF1234") == Link(
        "invoice", "IVabcDEF1234"
    )


def test_deep_links_into_the_bot_are_sent_as_start() -> None:
    assert resolve("https://t.me/demo_shop_bot?start=p_witcher3") == Link(
        "start", "/start p_witcher3"
    )
    assert resolve("https://t.me/demo_shop_bot") == Link("start", "/start")


def test_anything_else_is_external() -> None:
    for url in (
        "https://example.com/guide.pdf",
        "https://t.me/CryptoTestnetBot?start=CQcheck",
        "https://t.me/other_bot?start=IVabc",
        "tg://user?id=1",
    ):
        assert resolve(url) == Link("external", url)


def test_a_link_of_another_scheme_is_never_opened() -> None:
    """javascript:, data:, file: … would run in (or read) the demo page's origin if the page
    handed them to window.open."""
    for url in (
        "javascript:alert(document.domain)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
    ):
        assert resolve(url).kind == "unsupported", url
