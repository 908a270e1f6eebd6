"""What every command shares: settings loaded once per invocation."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click
from sqlalchemy import exc as sa_exc

from backend.auth.actor import Actor
from backend.config import Settings, load_settings
from backend.db import migrations
from backend.db.errors import is_database_unavailable, unavailable
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work

T = TypeVar("T")


def current_settings() -> Settings:
    """The settings for this invocation, loaded from the environment on first use."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    settings = root.meta.get("custodian.settings")
    if settings is None:
        settings = load_settings()
        root.meta["custodian.settings"] = settings
    return settings


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body: the one `asyncio.run` of the invocation."""
    return asyncio.run(coro)


def system_actor() -> Actor:
    """The CLI acts as the system, recorded with the OS user who ran it."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = "unknown"
    return Actor.system(os_user)


async def in_unit_of_work(
    work: Callable[[UnitOfWork], Awaitable[T]], *, audit: bool = True, writes: bool = True
) -> T:
    """Run `work` in one transaction as the system actor, and commit it.

    `writes=False` is for a command that only reads (a listing, a dry run):
    on SQLite it does not take the write lock, so it neither waits for nor
    holds up the admin's writes.
    """

    async def in_transaction(database: Database) -> T:
        async with unit_of_work(database, system_actor(), audit=audit, writes=writes) as uow:
            result = await work(uow)
            if uow.writes:  # a read-only unit has nothing to commit
                await uow.commit()
            return result

    return await on_database(in_transaction)


async def on_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against the configured database, disposed after; a database that is not migrated
    or not reachable is said in one line (the errors `migrations.not_migrated` and `unavailable` give)."""
    settings = current_settings()
    database = Database(settings)
    try:
        return await work(database)
    except Exception as exc:
        # A missing table or column looks like an outage to SQLite and like a
        # programming error to PostgreSQL; Alembic's version table tells.
        if isinstance(exc, sa_exc.DBAPIError) and not exc.connection_invalidated:
            behind = await migrations.not_migrated(settings, database.engine)
            if behind is not None:
                raise behind from exc
        if is_database_unavailable(exc):
            raise unavailable(settings, exc) from exc
        raise
    finally:
        await database.dispose()
