"""Throwaway test databases: a SQLite file, or a PostgreSQL database made for the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from backend.auth.actor import Actor
from backend.config import Settings, load_settings
from backend.db import migrations
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.services.permissions import sync_permissions

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BACKENDS = (SQLITE, POSTGRESQL)

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# A port nothing listens on: connections are refused at once.
UNREACHABLE_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/test"
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"


def postgres_server_url() -> str:
    """TEST_DATABASE_URL, else the local server (trust auth, database `test`)."""
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "db_connect_timeout": 2.0,
        # Cheap hashing keeps the suite fast; production cost is the default.
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
    }
    values.update(overrides)
    return load_settings(**values)


class PostgresUnreachable(RuntimeError):
    pass


@asynccontextmanager
async def throwaway_database(backend: str, tmp_dir: Path) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database; drop it afterwards."""
    if backend == SQLITE:
        path = tmp_dir / f"custodian-{uuid.uuid4().hex[:8]}.sqlite3"
        yield f"sqlite+aiosqlite:///{path}"
        return

    server = make_url(postgres_server_url())
    name = f"custodian_test_{uuid.uuid4().hex[:12]}"
    admin_engine = create_async_engine(
        server, isolation_level="AUTOCOMMIT", pool_pre_ping=True, connect_args={"timeout": 5}
    )
    try:
        try:
            async with admin_engine.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OSError as exc:
            raise PostgresUnreachable(
                f"PostgreSQL is not reachable at {server.render_as_string(hide_password=True)} ({exc}). "
                "Start it, point TEST_DATABASE_URL at a server, or run only SQLite with '--db sqlite'."
            ) from exc
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin_engine.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin_engine.dispose()


@asynccontextmanager
async def migrated_database(settings: Settings) -> AsyncIterator[UnitOfWork]:
    """Migrate the database `settings` names to head and sync the permissions.

    The block gets the system's unit of work to add rows with; they are
    committed when it ends. The engine is disposed: code that needs the
    database afterwards opens a `Database(settings)` of its own.
    """
    await migrations.upgrade(migrations.alembic_config(settings))
    database = Database(settings)
    try:
        async with unit_of_work(database, Actor.system("tests")) as uow:
            await sync_permissions(uow)
            yield uow
            await uow.commit()
    finally:
        await database.dispose()
