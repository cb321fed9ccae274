"""The broadcast's admin screens: the draft's buttons, the progress message, the report and
/broadcasts."""

from __future__ import annotations

import math
from datetime import datetime

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import BroadcastDraftButton, BroadcastStep, BroadcastStop
from bot.screens.texts import en as t
from bot.screens.texts import en_broadcast as tb
from storage import Broadcast, BroadcastCounts, BroadcastStatus


def _cancel(kb: InlineKeyboardBuilder) -> None:
    kb.button(text=t.BTN_CANCEL, callback_data=BroadcastDraftButton(step=BroadcastStep.CANCEL))


def button_step() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=tb.BTN_NO_BUTTON, callback_data=BroadcastDraftButton(step=BroadcastStep.NO_BUTTON)
    )
    _cancel(kb)
    kb.adjust(2)
    return kb.as_markup()


def cancel_only() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    _cancel(kb)
    return kb.as_markup()


def preview_controls(everyone: int, buyers: int, buyers_only: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=tb.audience_button(True, everyone, not buyers_only),
        callback_data=BroadcastDraftButton(step=BroadcastStep.EVERYONE),
    )
    kb.button(
        text=tb.audience_button(False, buyers, buyers_only),
        callback_data=BroadcastDraftButton(step=BroadcastStep.BUYERS),
    )
    kb.button(text=tb.BTN_SEND, callback_data=BroadcastDraftButton(step=BroadcastStep.SEND))
    _cancel(kb)
    kb.adjust(2, 2)
    return kb.as_markup()


def stop_button(broadcast_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tb.BTN_STOP, callback_data=BroadcastStop(broadcast_id=broadcast_id))
    return kb.as_markup()


def seconds_between(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds()))


def progress_text(
    broadcast: Broadcast, counts: BroadcastCounts, now: datetime, per_second: float
) -> str:
    """Sent / failed / left, and the time left at the pace so far (never above the limit)."""
    assert broadcast.id is not None
    failed = counts.failed + counts.blocked
    done = counts.delivered + failed
    left = max(0, broadcast.total - done)
    elapsed = (now - broadcast.created_at).total_seconds()
    pace = per_second if done == 0 or elapsed <= 0 else min(per_second, done / elapsed)
    return tb.progress(broadcast.id, counts.delivered, failed, left, math.ceil(left / pace))


def report_text(broadcast: Broadcast, counts: BroadcastCounts, now: datetime) -> str:
    assert broadcast.id is not None
    end = broadcast.finished_at or now
    return tb.report(
        broadcast.id,
        counts.delivered,
        counts.blocked,
        counts.failed,
        seconds_between(broadcast.created_at, end),
        stopped=broadcast.status == BroadcastStatus.STOPPED,
    )


def broadcasts_text(rows: list[tuple[Broadcast, BroadcastCounts]]) -> str:
    if not rows:
        return tb.NO_BROADCASTS
    lines = [tb.BROADCASTS_HEAD]
    for broadcast, counts in rows:
        assert broadcast.id is not None
        lines.append(
            tb.broadcast_line(
                broadcast.id,
                broadcast.created_at,
                broadcast.buyers_only,
                broadcast.status,
                broadcast.total,
                counts.delivered,
                counts.blocked,
                counts.failed,
            )
        )
    return "\n\n".join(lines)
