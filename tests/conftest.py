"""Fixtures every test package may use: throwaway PostgreSQL databases on the local server.

When no server answers, a test that asks for one is skipped — except under CI=true, where
that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in another thread (works whether or
    not the calling thread already runs a loop — fixtures are set up from inside one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_reachable() -> str | None:
    try:
        run_blocking(pg_admin("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class PgServer:
    """Creates and drops throwaway databases on the local server."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new_url(self) -> str:
        name = f"shop_test_{uuid.uuid4().hex[:12]}"
        run_blocking(pg_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self.created:
            run_blocking(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    problem = _pg_reachable()
    if problem is not None:
        unavailable("PostgreSQL", problem)
    server = PgServer()
    yield server
    server.drop_all()


def unavailable(what: str, problem: str) -> NoReturn:
    """Skip a test whose service is unreachable — fail it under CI=true, where every
    service the tests use must be up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true and is unreachable: {problem}")
    pytest.skip(f"{what} unreachable: {problem}")


async def connect_redis(url: str) -> Redis:
    """A client of the real Redis at `url`, once it answers a ping (else `unavailable`)."""
    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        unavailable("Redis", f"{type(error).__name__}: {error}")
    return client
