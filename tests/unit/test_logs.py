"""bot.logs: the driver loggers stay quiet at every level of ours (issue 15)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import QUIET_LOGGERS, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restore_logging")
def test_driver_records_below_warning_never_reach_the_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("DEBUG", "text")
    # A library (or an `echo=True` engine) lowering its logger's level again changes nothing.
    logging.getLogger("aiosqlite").setLevel(logging.DEBUG)
    logging.getLogger("aiosqlite").debug("executing INSERT ... ('SECRET-CODE-1',)")
    logging.getLogger("sqlalchemy.engine.Engine").setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine.Engine").info("[raw sql] ('SECRET-CODE-2',)")
    logging.getLogger("aiosqlite").warning("a driver warning still shows")
    logging.getLogger("bot.test").debug("our own debug line shows")
    err = capsys.readouterr().err
    assert "SECRET-CODE" not in err, err
    assert "a driver warning still shows" in err
    assert "our own debug line shows" in err
