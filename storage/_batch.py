"""Group commit: calls that arrive while a batch is running wait and then run together.

A webhook's settlement is a handful of short statements, and every statement and every
transaction costs more CPU in SQLAlchemy than SQLite or PostgreSQL spend on it (and on
SQLite each one is a trip to the connection's thread while the single write lock is held).
Under load the callers queue for that lock anyway; a `Coalescer` over `settle_many` (the
webhook route owns one, built with the web app) turns the queue into one transaction with
set-based statements for all of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")  # its result

# run(items) -> one outcome per item, in order: its result, or the exception its caller gets.
BatchRun = Callable[[list[I]], Awaitable[Sequence[R | Exception]]]


class Coalescer(Generic[I, R]):
    """`await coalescer(item)` runs `item` in a batch and returns its result (or raises its
    exception). A call made while no batch is running starts one at the loop's next turn,
    with every call made until then; calls made while it runs form the next batch (at most
    `max_size` items each), which starts as soon as it ends. Nothing waits for company.

    A caller that stops waiting (cancelled) does not take its item out of the batch: a
    payment that started to settle settles. `run` failing as a whole fails every item of
    that batch with its exception; the next batch runs as usual.
    """

    def __init__(self, run: BatchRun[I, R], max_size: int) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._run = run
        self._max_size = max_size
        self._queue: deque[tuple[I, asyncio.Future[R]]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        # A drainer that is done without having run (cancelled with its loop before it
        # started) never cleared itself.
        if self._drainer is None or self._drainer.done():
            # Its own empty context: it runs everybody's items, not the first caller's.
            self._drainer = loop.create_task(
                self._drain(), name="coalescer", context=contextvars.Context()
            )
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                take = min(self._max_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(take)]
                try:
                    outcomes = await self._run([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
                except Exception as error:
                    outcomes = [error] * len(batch)
                except BaseException:  # cancelled (shutdown): nobody is left to run them
                    for _, future in (*batch, *self._queue):
                        future.cancel()
                    self._queue.clear()
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller was cancelled: nobody else will say
                        if isinstance(outcome, Exception):
                            log.error(
                                "a batched call failed after its caller left", exc_info=outcome
                            )
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None
