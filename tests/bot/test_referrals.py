"""Referrals as shoppers and the admin meet them (PRODUCT.md §4.2): the invite link under
/invite and Help → Invite friends, /start r_<code>, the referrer's reward message (through
the outbox, from the real settle path), /stats' line and /referrals."""

from __future__ import annotations

from decimal import Decimal

from bot.callbacks import Menu, MenuAction
from bot.jobs import reconcile
from bot.screens.outgoing import compose
from bot.shop.checkout import checkout
from storage import Buyer, Customer, OutboxKind, PromoRefusal, get_customer, quote_promo
from storage.promos import PromoCode
from tests.bot.conftest import ADMIN_ID, ALICE, BOB, BOT_USERNAME, Shop, button_texts

CAROL = 1003


async def invite_link(shop: Shop, user: int = ALICE) -> str:
    await shop.send("/invite", user)
    text = shop.last_text().text
    prefix = f"https://t.me/{BOT_USERNAME}?start=r_"
    (line,) = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    return line


async def customer(shop: Shop, telegram_id: int) -> Customer:
    found = await get_customer(shop.ctx.db, telegram_id)
    assert found is not None
    return found


async def paid_order(shop: Shop, user: int, sku: str = "multi") -> int:
    result = await checkout(shop.ctx, Buyer(user, None, None), sku, 1)
    assert result.ok and result.order_id is not None, result
    invoice_id = (await shop.order(result.order_id)).invoice_id
    assert invoice_id is not None
    await shop.cp.pay(invoice_id, send_webhook=False)
    assert await reconcile(shop.ctx) >= 1
    return result.order_id


async def test_invite_shows_the_same_personal_link_everywhere(shop: Shop) -> None:
    link = await invite_link(shop)
    assert link == await invite_link(shop)
    assert link != await invite_link(shop, BOB)
    assert "10% promo code" in shop.last_text().text
    await shop.send("/help", ALICE)
    assert "🎁 Invite friends" in button_texts(shop.last_text())
    await shop.press(Menu(action=MenuAction.INVITE), ALICE)
    assert link in shop.last_text().text.splitlines()


async def test_a_new_customer_arriving_by_link_is_attributed_once(shop: Shop) -> None:
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{code}", BOB)
    assert "Catalog" in button_texts(shop.last_text())  # welcomed like anyone
    alice = await customer(shop, ALICE)
    assert (await customer(shop, BOB)).referred_by == alice.id
    carol_code = (await invite_link(shop, CAROL)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{carol_code}", BOB)  # a second link later changes nothing
    assert (await customer(shop, BOB)).referred_by == alice.id
    # CAROL already talked to the shop (/invite): not re-attributed.
    await shop.send(f"/start r_{code}", CAROL)
    assert (await customer(shop, CAROL)).referred_by is None


async def test_a_shopper_cannot_refer_themselves(shop: Shop) -> None:
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{code}", ALICE)
    assert shop.last_text().text.startswith("That is your own invite link")
    assert (await customer(shop, ALICE)).referred_by is None
    await shop.send("/start r_nosuchcode", CAROL)  # an unknown code: just the welcome
    assert "Catalog" in button_texts(shop.last_text())
    assert (await customer(shop, CAROL)).referred_by is None


async def test_the_first_paid_order_sends_the_referrer_a_code_once(shop: Shop) -> None:
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    await shop.send(f"/start r_{code}", BOB)
    first = await paid_order(shop, BOB)
    await paid_order(shop, BOB)  # a second order: no second reward
    assert await reconcile(shop.ctx) == 0  # and reconciliation again changes nothing
    (row,) = await shop.outbox(kind=OutboxKind.REFERRAL_REWARD)
    assert (row.chat_id, row.order_id) == (ALICE, first)
    text = (await compose(shop.ctx, row)).text
    (promo,) = await shop.rows(PromoCode, PromoCode.owner_id.is_not(None))
    assert f"<code>{promo.code.upper()}</code>" in text and "10% off" in text
    assert "It can be used once, until" in text
    # Alice's alone: Bob cannot use it.
    lines = [(1, 1, Decimal("2.50"))]
    now = shop.ctx.clock()
    assert await quote_promo(shop.ctx.db, promo.code, BOB, lines, "USD", now) == (
        PromoRefusal.UNKNOWN
    )
    assert not isinstance(await quote_promo(shop.ctx.db, promo.code, ALICE, lines, "USD", now), str)

    await shop.send("/stats", ADMIN_ID)
    assert "<b>Referrals</b>: 1 customer came through a friend's link, 1 of them paid" in (
        shop.last_text().text
    )
    await shop.send("/referrals", ADMIN_ID)
    listing = shop.last_text().text
    assert "Top referrers" in listing and f"<code>{ALICE}</code>" in listing
    assert "· 1 · 1 · $5.00" in listing


async def test_with_zero_percent_referrals_are_counted_but_not_rewarded(shop: Shop) -> None:
    shop.ctx.settings.referral_reward_percent = Decimal(0)
    code = (await invite_link(shop)).rsplit("r_", 1)[1]
    assert "counted as yours" in shop.last_text().text and "%" not in shop.last_text().text
    await shop.send(f"/start r_{code}", BOB)
    first = await paid_order(shop, BOB)
    assert await shop.outbox(kind=OutboxKind.REFERRAL_REWARD) == []
    assert await shop.rows(PromoCode, PromoCode.owner_id.is_not(None)) == []
    assert (await customer(shop, BOB)).referral_order_id == first
