"""Reading a bot process's ``/metrics`` the way Prometheus would."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess


def parse(text: str) -> list[Sample]:
    """Every sample of the exposition (raises if the text does not parse)."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


async def scrape_text(http: aiohttp.ClientSession, process: BotProcess) -> str:
    async with http.get(f"{process.url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        assert resp.status == 200, resp.status
        assert resp.content_type == "text/plain", resp.content_type
        return await resp.text()


async def scrape(http: aiohttp.ClientSession, process: BotProcess) -> list[Sample]:
    return parse(await scrape_text(http, process))


def sample_sum(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
