"""Alembic environment: async engine from our settings, one transaction per run.

`backend.db.migrations` passes a live connection in `config.attributes`; a
plain `alembic` invocation builds its own from the settings. On SQLite the
tables are rebuilt in batch mode with foreign keys off, and the keys are
checked before the transaction commits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.functions import FunctionElement

import backend.models  # noqa: F401  - registers every table on Base.metadata
from backend.config import Settings, get_settings
from backend.db.base import Base
from backend.db.migrations import include_object
from backend.db.session import create_engine
from backend.db.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _settings() -> Settings:
    settings = config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Keep generated revisions free of imports from the application.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    # Render portable defaults instead of the connected dialect's SQL text,
    # so one revision runs on SQLite and PostgreSQL alike.
    if type_ == "server_default":
        arg = getattr(obj, "arg", obj)
        if isinstance(arg, FunctionElement) and arg.name == "now":
            return "sa.func.now()"
        if isinstance(arg, True_):
            return "sa.true()"
        if isinstance(arg, False_):
            return "sa.false()"
    return False


def _run(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        transactional_ddl=True,
        compare_type=True,
        render_item=_render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
        if is_sqlite:
            _check_sqlite_foreign_keys(connection)


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    if violations:
        tables = sorted({str(row[0]) for row in violations})
        raise RuntimeError(f"migration left broken foreign keys in: {', '.join(tables)}")


async def _run_with_own_engine() -> None:
    engine = create_engine(_settings(), for_migrations=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=_settings().is_sqlite,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_with_own_engine())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
