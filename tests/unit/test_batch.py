"""storage._batch.Coalescer: what arrives together runs together, each caller gets its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage import Coalescer


class Recorder:
    """A batch runner that records its batches; `gate` (when set) holds every batch until
    released, so a test can make calls while one is running."""

    def __init__(self, gated: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = asyncio.Event() if gated else None
        self.started = asyncio.Event()

    async def __call__(self, items: list[int]) -> Sequence[str | Exception]:
        self.batches.append(list(items))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else f"done {i}" for i in items]


async def test_calls_made_together_run_as_one_batch() -> None:
    run = Recorder()
    coalesce = Coalescer(run, max_size=10)
    results = await asyncio.gather(*(coalesce(i) for i in range(5)))
    assert results == [f"done {i}" for i in range(5)]
    assert run.batches == [[0, 1, 2, 3, 4]]


async def test_calls_made_while_a_batch_runs_form_the_next_one() -> None:
    run = Recorder(gated=True)
    coalesce = Coalescer(run, max_size=10)
    first = asyncio.ensure_future(coalesce(1))
    await run.started.wait()
    later = [asyncio.ensure_future(coalesce(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)  # the queued calls are not taken while the batch runs
    assert run.batches == [[1]]
    assert run.gate is not None
    run.gate.set()
    assert await first == "done 1"
    assert await asyncio.gather(*later) == ["done 2", "done 3", "done 4"]
    assert run.batches == [[1], [2, 3, 4]]


async def test_batches_are_at_most_max_size() -> None:
    run = Recorder()
    coalesce = Coalescer(run, max_size=3)
    results = await asyncio.gather(*(coalesce(i) for i in range(7)))
    assert results == [f"done {i}" for i in range(7)]
    assert run.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_an_item_error_reaches_only_its_caller() -> None:
    coalesce = Coalescer(Recorder(), max_size=10)
    outcomes = await asyncio.gather(coalesce(1), coalesce(-2), coalesce(3), return_exceptions=True)
    assert outcomes[0] == "done 1" and outcomes[2] == "done 3"
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad -2"


async def test_a_failing_run_fails_its_batch_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    async def run(items: list[int]) -> list[str]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("database gone")
        return [f"ok {i}" for i in items]

    coalesce = Coalescer(run, max_size=10)
    failed = await asyncio.gather(coalesce(1), coalesce(2), return_exceptions=True)
    assert [type(e) for e in failed] == [RuntimeError, RuntimeError]
    assert await coalesce(3) == "ok 3"
    assert calls == [[1, 2], [3]]


async def test_a_run_returning_the_wrong_number_of_outcomes_fails_its_batch() -> None:
    async def run(items: list[int]) -> list[str]:
        return ["only one"]

    coalesce = Coalescer(run, max_size=10)
    outcomes = await asyncio.gather(coalesce(1), coalesce(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "1 outcomes for 2" in str(o) for o in outcomes)


async def test_a_cancelled_caller_leaves_its_item_in_the_batch() -> None:
    run = Recorder(gated=True)
    coalesce = Coalescer(run, max_size=10)
    blocker = asyncio.ensure_future(coalesce(0))
    await run.started.wait()
    leaver = asyncio.ensure_future(coalesce(1))
    stayer = asyncio.ensure_future(coalesce(2))
    await asyncio.sleep(0)
    leaver.cancel()
    assert run.gate is not None
    run.gate.set()
    assert await blocker == "done 0" and await stayer == "done 2"
    with pytest.raises(asyncio.CancelledError):
        await leaver
    assert run.batches == [[0], [1, 2]]  # item 1 still ran


async def test_the_coalescer_works_again_after_going_idle() -> None:
    run = Recorder()
    coalesce = Coalescer(run, max_size=10)
    assert await coalesce(1) == "done 1"
    assert await coalesce(2) == "done 2"
    assert run.batches == [[1], [2]]


async def test_an_error_nobody_waits_for_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    run = Recorder(gated=True)
    coalesce = Coalescer(run, max_size=10)
    blocker = asyncio.ensure_future(coalesce(0))
    await run.started.wait()
    leaver = asyncio.ensure_future(coalesce(-1))
    await asyncio.sleep(0)
    leaver.cancel()
    assert run.gate is not None
    run.gate.set()
    assert await blocker == "done 0"
    assert await coalesce(5) == "done 5"  # batches run in order: the leaver's has run
    failures = [r for r in caplog.records if r.name == "storage._batch"]
    assert [r.getMessage() for r in failures] == ["a batched call failed after its caller left"]
    assert failures[0].exc_info is not None and str(failures[0].exc_info[1]) == "bad -1"


def test_sizes_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        Coalescer(Recorder(), max_size=0)


def test_a_drainer_cancelled_with_its_loop_before_it_ran_does_not_stall_the_next_loop() -> None:
    run = Recorder()
    coalesce = Coalescer(run, max_size=10)

    async def call_and_leave() -> None:
        asyncio.get_running_loop().create_task(coalesce(1))  # the loop ends before it runs

    asyncio.run(call_and_leave())

    async def call() -> str:
        return await asyncio.wait_for(coalesce(2), timeout=10)

    assert asyncio.run(call()) == "done 2"
