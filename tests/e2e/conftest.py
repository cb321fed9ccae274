"""End-to-end fixtures: both fakes in-process, the real ``python -m bot`` as a subprocess.

The bot's stderr/stdout go to files in ``tmp_path``; when a test fails, every process log of
that test is attached to the failure report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.runtime.buy_guard import SharedBuyGuard
from bot.runtime.refund_confirmations import SharedPendingRefunds
from bot.runtime.shared_rates import REDIS_KEY as RATES_KEY
from bot.runtime.tap_throttle import SharedTapThrottle
from bot.sandbox.cryptopay import FakeCryptoPay
from bot.sandbox.telegram import FakeTelegram
from tests.conftest import PgServer, connect_redis, pg_dsn

REPO = Path(__file__).resolve().parents[2]
BOT_TOKEN = "424242:e2e-Test_token"
CRYPTOPAY_TOKEN = "31337:AAe2eCryptoPayToken"
READY_TIMEOUT = 40.0
STOP_TIMEOUT = 10.0

# Only these variables of the outer environment reach the bot: a developer's BOT_TOKEN or
# DATABASE_URL must never leak into a test run.
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env["PYTHONPATH"] = str(REPO)  # the code under test is this checkout's
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


@dataclass
class BotProcess:
    """One ``python -m bot ...`` subprocess with its logs in files."""

    args: list[str]
    env: dict[str, str]
    cwd: Path
    name: str
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    stderr_path: Path = field(init=False)
    stdout_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stderr_path = self.cwd / f"{self.name}.stderr.log"
        self.stdout_path = self.cwd / f"{self.name}.stdout.log"

    def start(self) -> BotProcess:
        with self.stderr_path.open("wb") as err, self.stdout_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until GET /healthz answers 200 (readiness); fails early if the process dies."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if not self.alive():
                    raise AssertionError(
                        f"{self.name} exited with {self.proc and self.proc.returncode} "
                        f"before it was ready:\n{self.stderr}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(
                        f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)
                    ) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not ready after {timeout}s")
                await asyncio.sleep(0.05)  # connection refused returns at once: pace retries

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s") from None

    async def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and the exit code (fails if it takes longer than ``timeout``)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.wait_exit(STOP_TIMEOUT)

    async def run_to_end(self, timeout: float = 30.0) -> int:
        """For one-shot commands (catalog, db)."""
        self.start()
        return await self.wait_exit(timeout)


@dataclass
class Shop:
    """Launches bot processes wired to the fakes, all sharing one database by default."""

    tg: FakeTelegram
    cp: FakeCryptoPay
    tmp_path: Path
    processes: list[BotProcess] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "shop.db"

    def env(self, **overrides: str) -> dict[str, str]:
        values = {
            "BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_URL": self.tg.base_url,
            "CRYPTOPAY_TOKEN": CRYPTOPAY_TOKEN,
            "CRYPTOPAY_NETWORK": "testnet",
            "CRYPTOPAY_API_URL": self.cp.base_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
            "HOST": "127.0.0.1",
            "RECONCILE_INTERVAL_SECONDS": "30",
            "LOG_LEVEL": "INFO",
        }
        values.update(overrides)
        return base_env(**values)

    def command(self, *args: str, env: dict[str, str] | None = None) -> BotProcess:
        """A one-shot ``python -m bot <args>`` (not started)."""
        process = BotProcess(
            list(args),
            self.env() if env is None else env,
            self.tmp_path,
            f"cmd{len(self.processes)}",
        )
        self.processes.append(process)
        return process

    async def launch(self, *, webhook: bool = False, **env: str) -> BotProcess:
        """Start ``python -m bot`` and wait until /healthz is 200; Crypto Pay webhooks go to it."""
        port = free_port()
        extra = {"PORT": str(port), **env}
        if webhook:
            extra["TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}"
        process = BotProcess([], self.env(**extra), self.tmp_path, f"bot{len(self.processes)}")
        process.port = port
        self.processes.append(process)
        process.start()
        await process.wait_ready()
        path = env.get("CRYPTOPAY_WEBHOOK_PATH", "/cryptopay/webhook")
        self.cp.webhook_url = f"{process.url}{path}"
        return process

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the bot's SQLite database directly (a separate connection, read only)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as c:
            c.execute("PRAGMA busy_timeout=2000")
            return list(c.execute(sql, params).fetchall())

    async def wait_for_db(
        self, sql: str, check: Callable[[list[tuple[Any, ...]]], bool], *, timeout: float, what: str
    ) -> list[tuple[Any, ...]]:
        """Until ``check(rows)`` holds. The database has no change events, so this re-reads it
        at a short interval, bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql)
            if check(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {rows}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeCryptoPay]]:
    async with (
        FakeTelegram(token=BOT_TOKEN, bot_username="e2e_shop_bot") as tg,
        FakeCryptoPay(token=CRYPTOPAY_TOKEN, network="testnet") as cp,
    ):
        yield tg, cp


@pytest.fixture
async def shop(
    fakes: tuple[FakeTelegram, FakeCryptoPay], tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Shop]:
    tg, cp = fakes
    shop = Shop(tg, cp, tmp_path)
    request.node.e2e_processes = shop.processes
    yield shop
    for process in shop.processes:
        if process.alive():
            assert process.proc is not None
            process.proc.kill()
            await asyncio.to_thread(process.proc.wait, STOP_TIMEOUT)


# --- PostgreSQL and Redis, for the replica tests (skipped when absent, except under CI=true) --

# Redis: a database number of its own (the replicas share the rates under a fixed key).
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A brand-new, empty PostgreSQL database (the bot migrates it; dropped at the end)."""
    return pg_server.new_url()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = await connect_redis(REDIS_URL)
    patterns = (
        f"fsm:{BOT_TOKEN.split(':')[0]}:*",
        f"{SharedBuyGuard.PREFIX}:*",
        f"{SharedPendingRefunds.PREFIX}:*",
        f"{SharedTapThrottle.PREFIX}:*",
    )

    async def clean() -> None:
        keys = [key for pattern in patterns async for key in client.scan_iter(match=pattern)]
        await client.delete(RATES_KEY, *keys)

    await clean()
    yield REDIS_URL
    await clean()
    await client.aclose()


class Pg:
    """Reads the replicas' database directly (a connection per query)."""

    def __init__(self, url: str) -> None:
        self.dsn = pg_dsn(url)

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def wait_for(
        self,
        sql: str,
        check: Callable[[list[tuple[Any, ...]]], bool],
        *args: Any,
        timeout: float,
        what: str,
    ) -> list[tuple[Any, ...]]:
        """Until ``check(rows)`` holds (no change events in a database: re-read, bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.query(sql, *args)
            if check(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {rows}")
            await asyncio.sleep(0.1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    report = yield
    processes: list[BotProcess] = getattr(item, "e2e_processes", [])
    if report.failed and report.when in ("call", "setup"):
        for process in processes:
            report.sections.append(
                (f"{process.name} ({' '.join(process.args) or 'run'}) stderr", process.stderr)
            )
    return report
