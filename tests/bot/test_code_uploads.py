"""Code uploads (issue 15, Low): lines end at \\n or \\r\\n only, and no code may hide a
character that changes how it reads."""

from __future__ import annotations

import pytest

from tests.bot.conftest import ADMIN_ID, Shop
from tests.bot.test_admin import counts, send_document


@pytest.mark.parametrize(
    ("content", "line", "codepoint"),
    [
        # str.splitlines() cut these lines in two and added both halves as codes
        ("GOOD-1\nBAD-\u2028CODE\n", 2, "U+2028"),
        ("GOOD-1\nGOOD-2\nBAD-\u2029CODE", 3, "U+2029"),
        ("BAD-\x85CODE\n", 1, "U+0085"),
        ("BAD-\x1cCODE\n", 1, "U+001C"),
        ("GOOD-1\rGOOD-2\n", 1, "U+000D"),  # a lone \r is no line break
        ("GOOD-1\nBAD-\x0bCODE\n", 2, "U+000B"),
        # bidi controls: the code shown is not the code typed
        ("GOOD-1\nGOOD-2\nKEY-\u202e4321\n", 3, "U+202E"),
        ("KEY-\u2066X\u2069\n", 1, "U+2066"),
        ("KEY-\u200fX\n", 1, "U+200F"),
        ("KEY-\u061cX\n", 1, "U+061C"),
        # zero-width: two codes that look the same
        ("GOOD-1\nKEY\u200b-1\n", 2, "U+200B"),
        ("KEY\u200d-1\n", 1, "U+200D"),
        ("KEY\u2060-1\n", 1, "U+2060"),
        ("GOOD-1\n\ufeffKEY-1\n", 2, "U+FEFF"),  # past the file's start: not a BOM
        ("KEY\u00ad-1\n", 1, "U+00AD"),  # soft hyphen: invisible formatting
    ],
)
async def test_hidden_characters_are_refused_naming_the_line(
    shop: Shop, content: str, line: int, codepoint: str
) -> None:
    await send_document(shop, "codes.txt", content.encode(), "multi")
    text = shop.last_text().text
    assert f"Line {line} is not a valid code" in text and codepoint in text, text
    assert "Nothing was added" in text
    assert await counts(shop, "multi") == (5, 0, 0)


async def test_line_breaks_and_edges_that_stay_allowed(shop: Shop) -> None:
    content = "\ufeffNEW-1\r\n\tNEW-2 \nNEW-3\u00a0\n\nKÓD-ÄÖÜ-4\n"
    await send_document(shop, "codes.txt", content.encode(), "multi")
    text = shop.last_text().text
    assert "Added 4 codes" in text and "Available now: 9" in text, text


async def test_a_big_upload_says_what_it_added_and_how_long_it_took(shop: Shop) -> None:
    """65,536 codes fit in one upload (512 KiB); the reply counts them and times them."""
    codes = "".join(f"{i:06d}\n" for i in range(65_536)) + "000001\nMULTI-1\n"
    await send_document(shop, "codes.txt", codes.encode(), "multi", ADMIN_ID)
    text = shop.last_text().text
    assert "Added 65536 codes" in text and "2 duplicates or blank lines skipped" in text, text
    assert "Took " in text and text.endswith(" s.")
    assert await counts(shop, "multi") == (65_541, 0, 0)
