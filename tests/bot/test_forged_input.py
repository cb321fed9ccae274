"""Forged callback data and admin arguments (issue 15, Low): strict parsing, no tracebacks.

Anyone can send any callback data to the bot. Each forged shape goes through the real
Dispatcher and must get the "this button no longer works" answer, a DEBUG line and no ERROR;
nothing in the database changes.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from bot.callbacks import (
    MAX_ID,
    AdminOrder,
    AdminOrderAt,
    AdminOrdersPage,
    CategoryPage,
    OrderButton,
    OrdersPage,
    ProductCard,
    RefundConfirm,
    parse_id,
)
from bot.screens.texts import en_admin as ta
from bot.screens.texts import texts as t
from bot.shop.refunds import read_refund_args
from storage import Refund
from tests.bot.conftest import ADMIN_ID, ALICE, Shop
from tests.bot.test_refunds import ask, paid_order

HUGE = str(10**23)

# (callback data, who presses it): each was a traceback, an out-of-range SQL parameter or a
# quantity no card offers.
FORGED = [
    ("c::c²", ALICE),  # the category cursor's digits were checked with str.isdigit()
    ("c::p²", ALICE),
    ("c:games:c" + HUGE, ALICE),
    ("c:games:p" + str(MAX_ID + 1), ALICE),
    ("c:games:x12", ALICE),
    ("c:gam\u202ees:", ALICE),
    ("c:" + "g" * 40 + ":", ALICE),
    ("o:s:" + HUGE, ALICE),
    ("o:k:" + str(MAX_ID + 1), ALICE),  # past PostgreSQL's INTEGER
    ("o:x:²", ALICE),
    ("o:s:-1", ALICE),
    ("o:s:0", ALICE),
    ("o:s:+7", ALICE),
    ("o:s: 7", ALICE),
    ("o:s:\u0661", ALICE),  # ARABIC-INDIC DIGIT ONE: int() takes it
    ("p:s:multi:10²⁵", ALICE),
    ("p:b:multi:" + "9" * 30, ALICE),
    ("p:b:multi:1000000", ALICE),
    ("p:b:multi:0", ALICE),
    ("p:b:mul ti:1", ALICE),
    ("p:i:multi:１", ALICE),  # FULLWIDTH DIGIT ONE
    ("op:" + HUGE, ALICE),
    ("op:²", ALICE),
    ("ao:s:²", ADMIN_ID),
    ("ao:k:" + HUGE, ADMIN_ID),
    ("ao:r:" + str(MAX_ID + 1), ADMIN_ID),
    ("aop:paid:²", ADMIN_ID),
    ("aop:PAID<b>:0", ADMIN_ID),
    ("aot:s:1::²", ADMIN_ID),
    ("aot:s:" + HUGE + "::0", ADMIN_ID),
    ("rf:y:\u202eabc", ADMIN_ID),
    ("rf:y:", ADMIN_ID),
    # The Promo code, cart and language buttons that arrived after the strict parser.
    ("pr:multi:0:0", ALICE),
    ("pr:multi:-3:0", ALICE),
    ("pr:multi:" + HUGE + ":0", ALICE),
    ("pr:" + "m" * 40 + ":1:0", ALICE),
    ("pr:multi:1:2", ALICE),
    ("ct:k:" + HUGE + ":", ALICE),
    ("ct:r:²:", ALICE),
    ("ca:multi:0", ALICE),
    ("ca:multi:" + HUGE, ALICE),
    ("lang:<b>", ALICE),
]


@pytest.mark.parametrize(("data", "user"), FORGED)
async def test_forged_callback_data_gets_the_stale_button_answer(
    shop: Shop, caplog: pytest.LogCaptureFixture, data: str, user: int
) -> None:
    caplog.set_level(logging.DEBUG)
    orders_before = len(await shop.orders())
    update = await shop.press(data, user=user)
    (answer,) = shop.answers_to(update)
    assert answer.text == t.STALE_BUTTON
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert any(
        r.levelno == logging.DEBUG and "button not understood" in r.getMessage()
        for r in caplog.records
    )
    assert len(await shop.orders()) == orders_before
    assert shop.cp.calls_of("createInvoice") == []


def test_the_buttons_we_send_still_pack_and_unpack() -> None:
    """The limits leave room for everything the bot itself puts on a button."""
    shapes = [
        CategoryPage(),
        CategoryPage(slug="games", after=f"c{MAX_ID}"),
        CategoryPage(slug="indie_2-x", after="p1"),
        ProductCard(action="b", sku="Gift-card_01", qty=1000),  # type: ignore[arg-type]
        OrderButton(action="k", order_id=MAX_ID),  # type: ignore[arg-type]
        OrdersPage(),
        OrdersPage(before=12),
        AdminOrder(action="r", order_id=1),  # type: ignore[arg-type]
        AdminOrdersPage(status="needs_review", before=40),
        AdminOrderAt(action="s", order_id=3, status="paid", before=7),  # type: ignore[arg-type]
        RefundConfirm(decision="y", token="AbC-_123xyz0"),  # type: ignore[arg-type]
    ]
    for data in shapes:
        assert type(data).unpack(data.pack()) == data


def test_parse_id_takes_ascii_digits_in_range_only() -> None:
    assert parse_id("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
    for text in ("²", "4²", "\u0664\u0662", "４２", "0", "-1", "+1", " 1", "1_0", str(MAX_ID + 1)):
        assert parse_id(text) is None, text


@pytest.mark.parametrize("command", ["/order", "/refund", "/recheck"])
@pytest.mark.parametrize("arg", ["²", "#²", "4²", str(MAX_ID + 1), "99999999999", "\u0661"])
async def test_admin_order_arguments_are_ascii_ids(
    shop: Shop, caplog: pytest.LogCaptureFixture, command: str, arg: str
) -> None:
    usage = {"/order": ta.ORDER_USAGE, "/refund": ta.REFUND_USAGE, "/recheck": ta.RECHECK_USAGE}
    await shop.send(f"{command} {arg}", ADMIN_ID)
    assert shop.last_text().text == usage[command]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# --- refund amounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "amount", "reason"),
    [
        ("0.5", "0.5", ""),
        ("0.5 USDT", "0.5", ""),
        ("0.5USDT", "0.5", ""),
        ("0.5 usdt wrong key", "0.5", "wrong key"),
        ("1 one code did not work", "1", "one code did not work"),
        ("1.25 USD", "half", ""),  # the order's currency: that share of what was paid
        ("1.25USD   key was used", "half", "key was used"),
        ("all the key was used", "all", "the key was used"),
        ("wrong key sent", "all", "wrong key sent"),  # a plain word first: all of it is reason
        ("ключ не подошёл", "all", "ключ не подошёл"),
    ],
)
async def test_refund_amount_forms_accepted(
    shop: Shop, typed: str, amount: str, reason: str
) -> None:
    order_id = await paid_order(shop)  # Multi Key × 1: 2.50 USD, paid in USDT
    order = await shop.order(order_id)
    assert order.total == Decimal("2.50") and order.paid_amount is not None
    expected = {"all": order.paid_amount, "half": order.paid_amount / 2}.get(amount)
    preview, token = await ask(shop, f"{order_id} {typed}")
    assert token is not None, preview.text
    want = Decimal(amount) if expected is None else expected
    assert f"Send <b>{t.plain(want)} USDT</b>" in preview.text
    assert ("Reason:" in preview.text) == bool(reason)
    if reason:
        assert f"Reason: {reason}" in preview.text


@pytest.mark.parametrize(
    "typed",
    [
        "1,000",
        "1,5",
        "$10",
        "10$",
        "ten",
        "usdt wrong key",  # a code first: money without an amount
        "Ten",
        "десять",
        "10 ton",  # paid in USDT: which money is meant, whatever the case
        "5 eur refund",
        "1e3",
        "-1",
        "+1",
        "0",
        "0.00",
        ".5",
        "5.",
        "1.123456789",
        "10 TON",  # paid in USDT: which money is meant?
        "10TON",
        "10 EUR",
        "10usdx",
        "１０",
        "1²",
        "NaN",
        "Infinity",
    ],
)
async def test_ambiguous_refund_amounts_are_refused_with_the_accepted_forms(
    shop: Shop, typed: str
) -> None:
    order_id = await paid_order(shop)
    answer, token = await ask(shop, f"{order_id} {typed}")
    assert token is None
    assert "not a valid refund amount" in answer.text
    assert f"<code>/refund {order_id} 5.50</code>" in answer.text
    assert f"<code>/refund {order_id} 5.50 USDT reason…</code>" in answer.text
    assert await shop.rows(Refund) == []


def test_read_refund_args_without_telegram() -> None:
    read = read_refund_args
    nothing = read("", "USDT", "USD")
    assert nothing is not None and (nothing.amount, nothing.reason) == (None, "")
    args = read("2.5\tTON\nno longer needed", "TON", "EUR")
    assert args is not None and (args.amount, args.in_currency) == (Decimal("2.5"), False)
    assert args.reason == "no longer needed"
    args = read("3 eur", "TON", "EUR")
    assert args is not None and (args.amount, args.in_currency) == (Decimal(3), True)
    assert read("3 USD", "TON", "EUR") is None
    assert read("3 ton", "TON", "EUR") is not None
