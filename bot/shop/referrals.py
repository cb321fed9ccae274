"""Referrals as the shopper meets them: their invite link, and arriving through someone's."""

from __future__ import annotations

import logging

from bot.context import ShopContext
from storage import Attribution, Buyer, attribute_referral, referral_code

log = logging.getLogger("bot.referrals")

PREFIX = "r_"


def invite_link(ctx: ShopContext, code: str) -> str:
    return f"{ctx.bot_url}?start={PREFIX}{code}"


async def my_invite_link(ctx: ShopContext, buyer: Buyer) -> str:
    return invite_link(ctx, await referral_code(ctx.db, buyer))


async def arrive(ctx: ShopContext, buyer: Buyer, start_args: str) -> Attribution:
    """A /start r_<code>: a new customer becomes the code owner's referral (once, never their
    own); anyone else is simply welcomed."""
    code = start_args.removeprefix(PREFIX)
    attribution = await attribute_referral(ctx.db, buyer, code)
    if attribution == Attribution.ATTRIBUTED:
        log.info("a new customer arrived through a referral link")
    return attribution
