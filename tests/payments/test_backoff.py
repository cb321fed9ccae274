"""No call waits for another by default; a 429 holds back every call of the client."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from payments import RateLimitedError

from .conftest import fail, ok


class ManualTime:
    """A clock the test moves; sleepers wake when it passes their time (nothing else does)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.changed = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, wake))
        self.changed.set()
        await wake

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(at, w) for at, w in self.sleepers if at <= self.now]
        self.sleepers = [(at, w) for at, w in self.sleepers if at > self.now]
        for _, wake in due:
            wake.set_result(None)

    async def until_sleeping(self, count: int, unless: asyncio.Task[object]) -> None:
        """Return once `count` calls sleep, or once `unless` finished without sleeping."""
        while len(self.sleepers) < count and not unless.done():
            self.changed.clear()
            changed = asyncio.ensure_future(self.changed.wait())
            await asyncio.wait({changed, unless}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()


def too_many(retry_after: str | None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    body = {"ok": False, "error": {"code": 429, "name": "TOO_MANY_REQUESTS"}}
    return httpx.Response(429, headers=headers, json=body)


async def test_a_burst_goes_out_at_once_by_default(make_client) -> None:
    """100 concurrent calls are all in flight together: the server holds every answer until
    the hundredth request has arrived, which a client-side queue would never let happen."""
    arrived = asyncio.Barrier(100)

    async def handler(request: httpx.Request) -> httpx.Response:
        await arrived.wait()
        return ok([])

    client, server = make_client(handler, max_attempts=1)
    await asyncio.wait_for(asyncio.gather(*(client.get_balance() for _ in range(100))), 10)
    assert len(server.requests) == 100


async def test_a_429_holds_back_the_other_calls_for_its_retry_after(make_client) -> None:
    time = ManualTime()
    sent: list[tuple[str, float]] = []
    answers = iter([too_many("2")])

    def handler(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        sent.append((method, time.now))
        return next(answers, None) or ok([])

    client, _ = make_client(handler, sleep=time.sleep, clock=time.clock)
    first = asyncio.create_task(client.get_balance())
    await time.until_sleeping(1, unless=first)  # got its 429, waits to retry
    assert sent == [("getBalance", 1000.0)]

    # Calls made meanwhile wait for the same moment instead of going out now.
    others = asyncio.gather(client.get_exchange_rates(), client.get_currencies())
    others_task = asyncio.ensure_future(others)
    await time.until_sleeping(3, unless=others_task)
    assert len(sent) == 1 and not others_task.done()

    time.advance(1.9)
    assert len(sent) == 1
    time.advance(0.1)
    await asyncio.wait_for(asyncio.gather(first, others_task), 5)
    assert sorted(sent[1:]) == [
        ("getBalance", 1002.0),
        ("getCurrencies", 1002.0),
        ("getExchangeRates", 1002.0),
    ]


async def test_a_429_without_retry_after_still_slows_the_client(make_client) -> None:
    time = ManualTime()
    answers = iter([too_many(None)])
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.now)
        return next(answers, None) or ok([])

    client, _ = make_client(handler, sleep=time.sleep, clock=time.clock, backoff_base=0.5)
    first = asyncio.create_task(client.get_balance())
    await time.until_sleeping(1, unless=first)
    other = asyncio.create_task(client.get_balance())
    await time.until_sleeping(2, unless=other)
    assert len(sent) == 1 and not other.done()
    time.advance(0.5)  # the policy's first pause is at most backoff_base
    await asyncio.wait_for(asyncio.gather(first, other), 5)
    assert len(sent) == 3


async def test_a_hold_past_the_deadline_fails_at_once_without_sending(make_client) -> None:
    time = ManualTime()
    answers = iter([too_many("120")])
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return next(answers, None) or ok([])

    client, _ = make_client(handler, sleep=time.sleep, clock=time.clock, total_deadline=30)
    with pytest.raises(RateLimitedError):
        await client.get_balance()  # Retry-After 120 is past its 30 s deadline
    with pytest.raises(RateLimitedError) as info:
        await client.get_invoices()
    assert len(sent) == 1 and time.sleepers == []
    assert info.value.retryable and not info.value.ambiguous
    assert info.value.retry_after == pytest.approx(120)

    time.advance(120)  # the server's pause is over: calls go out again
    assert await client.get_invoices() == []
    assert len(sent) == 2


async def test_a_503_without_retry_after_holds_back_nobody_else(make_client) -> None:
    time = ManualTime()
    answers = iter([fail(503, "UNAVAILABLE")])
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.now)
        return next(answers, None) or ok([])

    client, _ = make_client(handler, sleep=time.sleep, clock=time.clock)
    first = asyncio.create_task(client.get_balance())
    await time.until_sleeping(1, unless=first)
    assert await client.get_balance() == []  # goes out at once, while the first waits
    assert sent == [1000.0, 1000.0]
    time.advance(10)
    await asyncio.wait_for(first, 5)
