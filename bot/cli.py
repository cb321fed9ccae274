"""The command line of PRODUCT.md §2.2: fixable errors are one sentence, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from bot.config import ConfigError, Settings, StoreSettings, load_settings, load_store_settings
from bot.logs import setup_logging

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Telegram shop bot paid through Crypto Pay."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bot (the default)")

    demo = commands.add_parser(
        "demo", help="try the shop in the browser: local stand-ins of Telegram and Crypto Pay"
    )
    demo.add_argument(
        "--catalog", metavar="FILE", help="catalog to import (default: examples/catalog.toml)"
    )
    demo.add_argument("--port", type=int, metavar="N", help="port of the demo page (default 8000)")
    demo.add_argument(
        "--db", metavar="URL", help="database URL (default: SQLite in a temporary file)"
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply pending migrations and exit")

    catalog = commands.add_parser("catalog", help="import or export the catalog (TOML)")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True)
    importer = catalog_commands.add_parser("import", help="import a catalog file (idempotent)")
    importer.add_argument("path", help="path of the TOML catalog file")
    exporter = catalog_commands.add_parser("export", help="write the catalog as TOML")
    exporter.add_argument("path", nargs="?", help="output file (default: standard output)")

    orders = commands.add_parser("orders", help="orders as CSV")
    orders_commands = orders.add_subparsers(dest="orders_command", required=True)
    orders_export = orders_commands.add_parser(
        "export", help="write the orders created in a date range as CSV"
    )
    orders_export.add_argument("path", help="output file; - for standard output")
    orders_export.add_argument(
        "--from", dest="first", metavar="YYYY-MM-DD", help="first day (UTC; default: 29 days ago)"
    )
    orders_export.add_argument(
        "--to", dest="last", metavar="YYYY-MM-DD", help="last day, included (default: today)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo(args)
    try:
        # The database commands run in release steps that may not hold the tokens.
        settings = (
            load_store_settings()
            if args.command in ("db", "catalog", "orders")
            else load_settings()
        )
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if isinstance(settings, Settings):
        for note in settings.warnings():
            log.warning(note)
    return _run(_dispatch(args, settings))


def demo(args: argparse.Namespace) -> int:
    """The demo reads no environment and no .env: its settings are its own (PRODUCT.md §2.2's
    commands read both; this one must never meet a real token)."""
    from pathlib import Path

    from bot.config import normalize_database_url
    from bot.context import DEMO_CATALOG

    database_url = None
    if args.db:
        try:
            database_url = normalize_database_url(args.db)
        except ValueError as error:
            print(f"--db {error}.", file=sys.stderr)
            return 2
    if args.port is not None and not 0 < args.port < 65536:
        print("--port must be between 1 and 65535.", file=sys.stderr)
        return 2
    setup_logging("WARNING", "text")
    from bot.sandbox.demo.runner import DemoError, run_demo

    catalog = Path(args.catalog) if args.catalog else DEMO_CATALOG
    try:
        return _run(run_demo(catalog, port=args.port, database_url=database_url))
    except DemoError as error:
        print(error, file=sys.stderr)
        return 2


def _run(main: Coroutine[Any, Any, int]) -> int:
    """`main`'s exit code; Ctrl-C is 0 and a known startup failure is its sentence and 1."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return 0
    except Exception as error:
        message = _startup_failure(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


def _startup_failure(error: Exception) -> str | None:
    """The operator's sentence for a known startup failure, else None.

    aiogram is imported here, not at the top: importing it takes seconds, and a missing
    variable must be reported at once (PRODUCT.md §2: fail fast).
    """
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import StartupError

    if isinstance(error, TelegramUnauthorizedError):
        return (
            "Telegram rejected BOT_TOKEN (401 Unauthorized); copy the token again from @BotFather."
        )
    if isinstance(error, TelegramNetworkError):
        return f"Cannot reach Telegram at TELEGRAM_API_URL ({error.message})."
    if isinstance(error, StartupError):
        return str(error)
    return None


async def _dispatch(args: argparse.Namespace, settings: StoreSettings) -> int:
    command = args.command or "run"
    if command in ("db", "catalog", "orders"):
        # Imported per command, like bot.app below: the storage stack takes a while to load,
        # and a missing variable must be reported before that.
        from bot import commands

        try:
            if command == "db":
                await commands.db_upgrade(settings)
            elif command == "orders":
                await commands.orders_export(settings, args.path, args.first, args.last)
            elif args.catalog_command == "import":
                await commands.catalog_import(settings, args.path)
            else:
                await commands.catalog_export(settings, args.path)
        except commands.CliError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    from bot.app import run_bot

    assert isinstance(settings, Settings)
    return await run_bot(settings)
