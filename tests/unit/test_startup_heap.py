"""freeze_startup_heap: startup's garbage is collected, what lives on is frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bot.app import freeze_startup_heap


class Node:
    other: object = None


@pytest.fixture
def collector_paused() -> Iterator[None]:
    """No automatic collection during the test (it could free the cycle by itself)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_paused")
def test_garbage_is_collected_and_the_rest_frozen() -> None:
    garbage = Node()
    garbage.other = garbage  # a cycle only the cyclic collector frees
    dead = weakref.ref(garbage)
    del garbage
    alive = Node()
    before = gc.get_freeze_count()

    freeze_startup_heap()

    assert dead() is None, "startup garbage was frozen instead of collected"
    assert gc.get_freeze_count() > before
    # What was alive is frozen: out of the generations a collection walks, still usable.
    assert not any(o is alive for o in gc.get_objects())
    assert alive.other is None
