"""Benchmark: 5,000 getInvoices calls at concurrency 50 through CryptoPayClient (default
aiohttp transport, every answer parsed into models) against a bare aiohttp ClientSession loop
(the same requests, body read, nothing parsed) on a loopback server in another process.

Run from the repository root: ``python bench/cryptopay_client.py``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payments import CryptoPayClient, Invoice

CALLS = 5_000
CONCURRENCY = 50
ROUNDS = 5
TOKEN = "123456789:AAzQcZWQqQAbsfgPnOLr4FHC8Doa4L7KryC"
SERVER = Path(__file__).resolve().parent / "_cryptopay_server.py"


async def run_workers(call: Callable[[], Awaitable[None]], calls: int) -> float:
    """Calls per second for ``calls`` calls spread over CONCURRENCY workers."""
    per_worker, extra = divmod(calls, CONCURRENCY)

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(CONCURRENCY)))
    return calls / (time.perf_counter() - started)


async def bench_ours(base_url: str) -> float:
    async with CryptoPayClient(TOKEN, base_url, max_connections=100) as client:

        async def call() -> None:
            invoices = await client.get_invoices(status="active", count=100)
            assert len(invoices) == 4 and isinstance(invoices[0], Invoice)

        await run_workers(call, 500)  # warm up: connections, code paths
        return await run_workers(call, CALLS)


async def bench_bare(base_url: str) -> float:
    url = base_url + "/getInvoices"
    body = json.dumps({"status": "active", "count": 100}).encode()
    headers = {"Crypto-Pay-API-Token": TOKEN, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 200

        await run_workers(call, 500)
        return await run_workers(call, CALLS)


async def compare(base_url: str) -> tuple[float, float]:
    ours: list[float] = []
    bare: list[float] = []
    for round_no in range(1, ROUNDS + 1):
        ours.append(await bench_ours(base_url))
        bare.append(await bench_bare(base_url))
        print(
            f"round {round_no}: CryptoPayClient {ours[-1]:,.0f} calls/s, "
            f"bare aiohttp {bare[-1]:,.0f} calls/s",
            flush=True,
        )
    return max(ours), max(bare)


def main() -> None:
    # The server runs in its own process so it does not eat the client's CPU time.
    server = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise SystemExit(f"bench server did not start: {line!r}")
        best_ours, best_bare = asyncio.run(compare(f"http://127.0.0.1:{line[1]}/api"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        f"RESULT cryptopay_client calls_per_s={best_ours:.0f} baseline={best_bare:.0f} "
        f"ratio={best_ours / best_bare:.2f}"
    )


if __name__ == "__main__":
    main()
