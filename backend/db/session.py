"""The async engine and session factory, built from settings.

One `Database` per process: the web app opens it in its lifespan, each CLI
command opens one for its run. Both dispose of it when they stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from backend.config import Settings
from backend.db.liveness import check_connections_at_checkout
from backend.db.pooling import pgbouncer_connect_args, pgbouncer_url, through_pgbouncer
from backend.db.replicas import Replica, Replicas, ReplicaSession

# Execution option of a session or connection whose transaction will write
# (set by `UnitOfWork`): on SQLite it begins with BEGIN IMMEDIATE.
WRITE_INTENT = "custodian_write_intent"


def create_engine(settings: Settings, *, for_migrations: bool = False) -> AsyncEngine:
    """Build the async engine for `settings.database_url`.

    PostgreSQL (asyncpg): a bounded QueuePool with pre-ping, and connect and
    command timeouts so an unreachable server fails fast instead of hanging.
    SQLite (aiosqlite): the file's folder is created on demand; foreign keys,
    WAL and a busy timeout are set on each connection, and SQLAlchemy emits
    BEGIN itself so that DDL and savepoints are transactional: `BEGIN
    IMMEDIATE` for a transaction declared to write (`WRITE_INTENT`), so
    concurrent writers queue on the busy timeout instead of failing.

    With `for_migrations=True` SQLite foreign keys are left off: Alembic's
    batch mode rebuilds tables, and the migration checks the keys itself
    before it commits; PostgreSQL is reached at `DATABASE_DIRECT_URL` when
    set, past any PgBouncer.

    `DATABASE_POOLER=pgbouncer`: SQLAlchemy's asyncpg recipe for transaction
    pooling (backend/db/pooling.py), with no pool of the app's own.
    """
    if settings.is_sqlite:
        return _sqlite_engine(settings, settings.url, foreign_keys=not for_migrations)
    if for_migrations:
        return _postgres_engine(settings, settings.direct_url, for_migrations=True)
    return _postgres_engine(settings, settings.url, for_migrations=False)


def create_replicas(settings: Settings) -> Replicas:
    """The replicas of `DATABASE_REPLICA_URLS`, each with a pool of its own (none for SQLite)."""
    return Replicas(
        settings,
        [
            Replica(f"replica {position}", url, _postgres_engine(settings, url, for_migrations=False))
            for position, url in enumerate(settings.replica_urls, start=1)
        ],
    )


def _postgres_engine(settings: Settings, url: URL, *, for_migrations: bool) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_command_timeout,
        "server_settings": {"application_name": "custodian"},
    }
    if for_migrations:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True)
    if through_pgbouncer(settings):
        # Connections come and go with each checkout: nothing stale to pre-ping, no pool to wait for
        # (PgBouncer's query_wait_timeout bounds that wait instead).
        return create_async_engine(
            pgbouncer_url(url),
            hide_parameters=True,
            poolclass=NullPool,
            connect_args=pgbouncer_connect_args(connect_args),
        )
    engine = create_async_engine(
        url,
        # Parameters are customers' data and password hashes: never in an error message or log line.
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )
    check_connections_at_checkout(engine)  # pool_pre_ping's job, in one round trip instead of three
    return engine


def _sqlite_engine(settings: Settings, url: URL, *, foreign_keys: bool) -> AsyncEngine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        poolclass=None if foreign_keys else NullPool,
    )
    busy_timeout_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver's own implicit BEGIN; `_on_begin` emits it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Under WAL a deferred transaction that has read cannot wait for the
        # write lock (SQLite skips the busy timeout: its snapshot may be stale)
        # and fails at once with "database is locked". A transaction declared
        # to write takes the lock up front, and waits for it like any writer.
        writes = bool(connection.get_execution_options().get(WRITE_INTENT, False))
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no lazy reload in async code), and read
    from the primary unless a unit of work gives them a replica (`ReplicaSession`)."""
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=ReplicaSession
    )


class Database:
    """The process's engine and session factory, and its read replicas (`replicas`).

    An engine passed in stays its owner's to dispose (tests share one engine
    across many apps and bind sessions to a connection of their own); the
    replicas' engines are always this object's.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else create_engine(settings)
        self.sessions = sessions if sessions is not None else create_session_factory(self.engine)
        self.replicas = create_replicas(settings)

    async def dispose(self) -> None:
        await self.replicas.dispose()
        if self._owns_engine:
            await self.engine.dispose()
