"""Plumbing shared by the fake servers: lifecycle, request parameters, fault rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web


@dataclass
class UploadedFile:
    """A multipart file part as the server received it."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


class BadBody(Exception):
    """The request body could not be decoded (invalid JSON)."""


async def read_params(request: web.Request) -> dict[str, Any]:
    """Merge the query string and the body (JSON, urlencoded or multipart) into one dict.

    Query and form values stay strings, as they arrived; a key sent several times becomes a
    list; file parts become :class:`UploadedFile`. JSON bodies keep their JSON types.
    """
    params: dict[str, Any] = _multidict_to_dict(request.query)
    if not request.body_exists:
        return params
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise BadBody(str(e)) from e
            if not isinstance(body, dict):
                raise BadBody("JSON body is not an object")
            params.update(body)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in _multidict_to_dict(form).items():
            params[key] = value
    else:
        await request.read()
    return params


def _convert(value: Any) -> Any:
    if isinstance(value, web.FileField):
        return UploadedFile(
            filename=value.filename,
            content=value.file.read(),
            content_type=value.content_type,
        )
    return value


def _multidict_to_dict(multi: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in multi:
        if key in out:
            continue
        values = [_convert(v) for v in multi.getall(key)]
        out[key] = values[0] if len(values) == 1 else values
    return out


@dataclass
class FaultRule:
    """One armed fault: the next ``times`` matching calls of ``method`` misbehave."""

    method: str
    status: int | None
    times: int
    delay: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    match: Callable[[dict[str, Any]], bool] | None = None

    def applies(self, method: str, params: dict[str, Any]) -> bool:
        if self.times <= 0 or self.method.lower() != method.lower():
            return False
        return self.match is None or self.match(params)


def take_fault(rules: list[FaultRule], method: str, params: dict[str, Any]) -> FaultRule | None:
    """Consume one use of the first rule matching this call (rules are used in order)."""
    for rule in rules:
        if rule.applies(method, params):
            rule.times -= 1
            if rule.times <= 0:
                rules.remove(rule)
            return rule
    return None


class FakeServer:
    """An aiohttp app on 127.0.0.1 with an ephemeral port, usable with ``async with``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self._runner: web.AppRunner | None = None
        # Set when the server stops: wakes long polls and simulated hangs.
        self.closing = asyncio.Event()
        # Notified on every call and change; ``wait_until`` waits on it.
        self._changed = asyncio.Condition()
        # Outgoing calls (webhooks); closed when the server stops.
        self._client: aiohttp.ClientSession | None = None

    @property
    def origin(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake server is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        self.closing.clear()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        self.closing.set()
        await self._on_stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _on_stop(self) -> None:
        await self._notify()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, probe: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Wait (woken on every call and change, no polling) until ``probe()`` is non-None."""
        found: list[Any] = []

        def check() -> bool:
            value = probe()
            if value is not None:
                found.append(value)
            return value is not None

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(check), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
        return found[0]

    async def hang(self, seconds: float) -> None:
        """Hold a request open ``seconds`` (or until the server stops)."""
        try:
            await asyncio.wait_for(self.closing.wait(), seconds)
        except TimeoutError:
            pass

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
