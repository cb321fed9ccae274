"""The texts of /broadcast and /broadcasts (an admin's), in English (the msgids) and, through
bot/locales, in Russian. Same patterns as en_admin.py."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.i18n import _, __, ngettext, translated
from bot.screens.texts.en import duration, when

BROADCAST_ASK = __(
    "Send the message for your customers: a text (its formatting is kept) or a photo with a "
    "caption."
)
BROADCAST_NOT_TEXT = __(
    "A broadcast is a text, or a photo with a caption. Send one of those, or tap Cancel."
)
BUTTON_ASK = __(
    "Add a button under it? Send one line: <code>Button text | https://…</code> for a link, "
    "or <code>Button text | p_&lt;sku&gt;</code> to open a product. Or tap No button."
)
BTN_NO_BUTTON = __("No button")
BTN_SEND = __("Send")
BTN_STOP = __("Stop")

BUTTON_LINE_FORMAT = __(
    "A button line is <code>Button text | https://…</code> or "
    "<code>Button text | p_&lt;sku&gt;</code>: one line, with one “|” between the text and "
    "the link. Send it again, or tap No button."
)
# Under the preview, which comes at once: a button can still be put under the message.
BUTTON_HINT = __(
    "To put a button under it, send one line: <code>Button text | https://…</code> for a "
    "link, or <code>Button text | p_&lt;sku&gt;</code> to open a product."
)
BUTTON_LINE_FORMAT_AT_PREVIEW = __(
    "A button line is <code>Button text | https://…</code> or "
    "<code>Button text | p_&lt;sku&gt;</code>: one line, with one “|” between the text and "
    "the link. Send it again, or tap Send to go without a button."
)
BUTTON_TEXT_EMPTY = __("The button needs a text before the “|”. Send the line again.")
BUTTON_LINK_BAD = __(
    "After the “|” comes a link that starts with https:// (or http://), or p_ and a product's "
    "sku. Send the line again."
)


def preview_refused(reason: str) -> str:
    """Telegram refused the preview: customers could not get it either."""
    return _(
        "Telegram refused this ({reason}), so customers could not get it either. Send it "
        "again, changed."
    ).format(reason=escape(reason))


def button_text_too_long(limit: int) -> str:
    return _("A button's text is at most {limit} characters. Send the line again.").format(
        limit=limit
    )


def button_unknown_product(sku: str) -> str:
    return _("There is no product <code>{sku}</code> on sale. Send the line again.").format(
        sku=escape(sku)
    )


def audience_button(everyone: bool, n: int, chosen: bool) -> str:
    label = _("Everyone ({n})") if everyone else _("Buyers only ({n})")
    return ("✓ " if chosen else "") + label.format(n=n)


def preview_note(buyers_only: bool, n: int) -> str:
    """Under the preview: the audience chosen and its size."""
    audience = _("buyers only") if buyers_only else _("everyone")
    count = ngettext("{n} customer", "{n} customers", n).format(n=n)
    return _(
        "Above is the preview: customers get exactly that message.\n"
        "Audience: <b>{audience}</b>, {count}. Tap Send to start."
    ).format(audience=audience, count=count)


BROADCAST_CANCELLED = __("Broadcast cancelled; nothing was sent.")
BROADCAST_NOBODY = __(
    "Nobody is in this audience yet, so there is nothing to send. Pick the other audience, "
    "or tap Cancel."
)
BROADCAST_DRAFT_GONE = __("This preview is no longer open. Start again with /broadcast.")
BROADCAST_ALREADY_OVER = __("This broadcast has already ended.")


def progress(broadcast_id: int, sent: int, failed: int, left: int, seconds_left: int) -> str:
    return _(
        "<b>Broadcast #{id}</b> is sending…\n"
        "Sent: {sent} · failed: {failed} · left: {left}\n"
        "Time left: about {time}"
    ).format(id=broadcast_id, sent=sent, failed=failed, left=left, time=duration(seconds_left))


def report(
    broadcast_id: int, delivered: int, blocked: int, failed: int, seconds: int, *, stopped: bool
) -> str:
    if stopped:
        head = _("<b>Broadcast #{id}</b> was stopped.").format(id=broadcast_id)
    else:
        head = _("<b>Broadcast #{id}</b> is done.").format(id=broadcast_id)
    return (
        head
        + "\n"
        + _(
            "Delivered: {delivered}\nBlocked the bot: {blocked}\nFailed: {failed}\n"
            "Time taken: {time}"
        ).format(delivered=delivered, blocked=blocked, failed=failed, time=duration(seconds))
    )


NO_BROADCASTS = __("No broadcasts yet. Start one with /broadcast.")
BROADCASTS_HEAD = __("<b>Recent broadcasts</b>")
_STATUS = {
    "running": __("sending"),
    "stopped": __("stopped"),
    "done": __("done"),
}


def broadcast_line(
    broadcast_id: int,
    created: datetime,
    buyers_only: bool,
    status: str,
    total: int,
    delivered: int,
    blocked: int,
    failed: int,
) -> str:
    audience = _("buyers only") if buyers_only else _("everyone")
    return _(
        "#{id} · {when} · {audience} · {status}\n"
        "   delivered {delivered} of {total}, blocked {blocked}, failed {failed}"
    ).format(
        id=broadcast_id,
        when=when(created),
        audience=audience,
        status=_(_STATUS.get(status, status)),
        delivered=delivered,
        total=total,
        blocked=blocked,
        failed=failed,
    )


translated(__name__)
