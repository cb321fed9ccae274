"""A deeply nested catalog file is refused in one sentence, like every bad file (issue 15)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

DEPTH = 100_000


@pytest.mark.parametrize(
    "nested",
    [
        "[" * DEPTH + "]" * DEPTH,  # arrays
        "{a = " * DEPTH + "1" + "}" * DEPTH,  # inline tables
    ],
    ids=["arrays", "inline-tables"],
)
async def test_deeply_nested_catalog_is_one_sentence_not_a_traceback(
    shop: Shop, nested: str
) -> None:
    path = shop.tmp_path / "nested.toml"
    path.write_text(f'currency = "USD"\nextra = {nested}\n')
    importer = shop.command("catalog", "import", str(path))
    assert await importer.run_to_end() == 1
    lines = [line for line in importer.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, importer.stderr[-2000:]
    assert "Traceback" not in importer.stderr and "RecursionError" not in importer.stderr
    assert lines[0].startswith(f"Catalog not imported: {path}:"), lines[0]
    assert "nested too deeply" in lines[0], lines[0]
    assert importer.stdout == ""
