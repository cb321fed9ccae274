"""The webhook benchmark's load generator, run as its own process (as Crypto Pay is: the
shop does not share its CPU with the sender). Not a benchmark itself.

``python bench/_load.py URL FILE CONCURRENCY EXPECT``: POSTs every request of FILE (JSON
lines of ``{"body": str, "headers": {...}}``) to URL with CONCURRENCY workers on one
keep-alive connection each, and prints one JSON object: elapsed seconds, per-request
latencies and the answers that were not as EXPECTed (``settled``: 200 with
``{"result": "settled"}``; ``ok``: 200).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp


async def main(
    url: str, requests: list[dict[str, Any]], concurrency: int, expect: str
) -> dict[str, Any]:
    pending = iter(requests)
    latencies: list[float] = []
    wrong: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector,
        skip_auto_headers=("User-Agent",),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as session:

        async def worker() -> None:
            for request in pending:
                started = time.perf_counter()
                async with session.post(
                    url, data=request["body"].encode(), headers=request["headers"]
                ) as response:
                    body = await response.read()
                latencies.append(time.perf_counter() - started)
                good = response.status == 200 and (
                    expect == "ok" or json.loads(body).get("result") == "settled"
                )
                if not good:
                    wrong.append(f"{response.status} {body[:200]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "wrong": wrong[:5], "n_wrong": len(wrong)}


if __name__ == "__main__":
    url, path, concurrency, expect = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(path, encoding="utf-8") as f:
        requests = [json.loads(line) for line in f]
    print(json.dumps(asyncio.run(main(url, requests, concurrency, expect))))
