from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments import CryptoPayClient

VECTORS = Path(__file__).parent / "vectors"
TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"
BASE = "https://pay.example/api"


def load_vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": result})


def fail(status: int, name: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"ok": False, "error": {"code": status, "name": name, **extra}}
    )


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Server:
    """An httpx.MockTransport that records requests and answers from a script."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def methods(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.requests]

    def params(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def make_client(
    fake_time: FakeTime,
) -> AsyncIterator[Callable[..., tuple[CryptoPayClient, Server]]]:
    opened: list[httpx.AsyncClient] = []

    def factory(
        handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
    ) -> tuple[CryptoPayClient, Server]:
        server = Server(handler)
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        opened.append(http)
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.clock)
        return CryptoPayClient(TOKEN, BASE, http=http, **kwargs), server

    yield factory
    for http in opened:
        await http.aclose()
