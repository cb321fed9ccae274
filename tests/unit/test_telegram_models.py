"""aiogram's parsed-response models stay built once pinned (bot/runtime/telegram_models.py)."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import Response

from bot.runtime.telegram_models import HOT_METHODS, pin_response_models


def test_pinned_response_models_outlive_a_collection() -> None:
    pin_response_models()
    refs = [weakref.ref(Response[method.__returning__]) for method in HOT_METHODS]  # type: ignore[name-defined]
    gc.collect()
    assert all(ref() is not None for ref in refs)


def test_unpinned_response_model_is_rebuilt_after_a_collection() -> None:
    """Why the pin is needed: pydantic caches a generic model weakly, so a collection frees
    one nothing holds, and the next request builds it again."""
    ref = weakref.ref(Response[list[int]])
    gc.collect()
    assert ref() is None
