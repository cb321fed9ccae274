"""The non-running CLI commands: migrations, catalog import/export, the orders' CSV."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.catalog_file import CatalogFileError, dump_catalog, load_catalog
from bot.catalog_sync import export_catalog_file, import_catalog_file
from bot.config import StoreSettings
from bot.photos.export import export_photos
from bot.photos.fetch import PhotoCopier, PhotoFetcher
from bot.shop.export import BadRange, date_range, write_orders_csv
from storage import Database, upgrade

log = logging.getLogger("bot.commands")


class CliError(Exception):
    """A failure worded for the operator; printed as it is."""


async def open_database(settings: StoreSettings, *, migrate: bool | None = None) -> Database:
    """The database, brought up to date first unless AUTO_MIGRATE=false (PRODUCT.md §2.2)."""
    db = Database(settings.database_url)
    if not await db.ping():
        await db.dispose()
        raise CliError(
            "Cannot reach the database at DATABASE_URL; check that it is running and reachable."
        )
    if settings.auto_migrate if migrate is None else migrate:
        await upgrade(db)
    return db


async def db_upgrade(settings: StoreSettings) -> None:
    db = await open_database(settings, migrate=True)
    await db.dispose()
    print("Database is up to date.", file=sys.stderr)


async def catalog_import(settings: StoreSettings, path: str) -> None:
    try:
        catalog = load_catalog(path, settings.shop_currency)
    except CatalogFileError as error:
        raise CliError(f"Catalog not imported: {error}") from None
    db = await open_database(settings)
    try:
        summary = await import_catalog_file(db, catalog)
        # URLs are fetched now (the operator sees what failed); Telegram file_ids need the
        # bot's token: the running bot copies those (and retries failed URLs).
        report = await PhotoCopier(db, PhotoFetcher()).run(batch=len(catalog.products) or 1)
    finally:
        await db.dispose()
    print(f"Catalog imported from {path}: {summary}.", file=sys.stderr)
    for sku, reason in report.failed:
        print(f"Photo of {sku!r} not copied yet: {reason}.", file=sys.stderr)


async def catalog_export(settings: StoreSettings, path: str | None) -> None:
    out = open_output(path, "Catalog")
    db = await open_database(settings)
    folder = None if path is None else Path(path).resolve().parent  # noqa: ASYNC240 - a CLI
    try:
        catalog = await export_catalog_file(db, settings.shop_currency)
        catalog, notes = await export_photos(db, catalog, folder)
        out.write(dump_catalog(catalog))
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
        await db.dispose()
    if path is not None:
        print(f"Catalog written to {path}.", file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)


def open_output(path: str | None, what: str) -> TextIO:
    """The export's file (standard output for None), opened before the database is: a path
    that cannot be written is one sentence, not a traceback after the migrations."""
    if path is None:
        return sys.stdout
    try:
        return Path(path).open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise CliError(f"{what} not exported: cannot write {path}: {error.strerror}.") from None


async def orders_export(
    settings: StoreSettings, path: str, first: str | None, last: str | None
) -> None:
    try:
        span = date_range(first, last, datetime.now(UTC).date())
    except BadRange as error:
        if error.reason == "order":
            raise CliError("Orders not exported: --from is after --to.") from None
        raise CliError(
            f"Orders not exported: {error.value!r} is not a date; write it as YYYY-MM-DD."
        ) from None
    out = open_output(None if path == "-" else path, "Orders")
    db = await open_database(settings)
    try:
        count = await write_orders_csv(db, out, span)
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
        await db.dispose()
    where = "standard output" if path == "-" else path
    print(
        f"{count} orders from {span.first} to {span.last} (UTC) written to {where}.",
        file=sys.stderr,
    )
