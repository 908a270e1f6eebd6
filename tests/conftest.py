"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

The schema is built once per backend by the Alembic migrations. Each test
runs inside a transaction that is rolled back at the end; code under test may
commit, because its session joins that transaction through a SAVEPOINT.
PostgreSQL that cannot be reached is a failure, never a skip: run
`pytest --db sqlite` to leave it out on purpose.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.db.session import Database, create_engine
from backend.models import Customer
from backend.services import masking
from tests.databases import (
    BACKENDS,
    POSTGRESQL,
    SQLITE,
    make_settings,
    migrated_database,
    throwaway_database,
)

# Sign-in in the suite is by password alone unless a test asks for a second factor: the policy's own
# tests (tests/admin/test_two_factor.py, tests/backend/services/test_two_factor.py) turn
# REQUIRE_2FA_FOR on in their settings. Set here, before any Settings is built, so the servers the
# suite starts in subprocesses (browser journeys, workers) inherit it; an explicit value wins.
os.environ.setdefault("REQUIRE_2FA_FOR", "")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("all", *BACKENDS),
        default="all",
        help="Which databases to run the database tests on (default: all).",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--db")
    backends = list(BACKENDS) if chosen == "all" else [chosen]
    if metafunc.definition.get_closest_marker("postgres"):
        backends = [b for b in backends if b == POSTGRESQL]
    if metafunc.definition.get_closest_marker("sqlite"):
        backends = [b for b in backends if b == SQLITE]
    metafunc.parametrize("db_backend", backends, scope="session")


@pytest.fixture(scope="session")
def run_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("custodian")


@pytest.fixture(scope="session")
async def migrated_url(db_backend: str, run_tmp: Path) -> AsyncIterator[str]:
    """A database for the whole run on this backend, migrated to head."""
    async with throwaway_database(db_backend, run_tmp) as url:
        async with migrated_database(make_settings(url)):
            pass
        yield url


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return make_settings(migrated_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is always rolled back."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
def sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """A session factory whose sessions commit into savepoints of the test transaction."""
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


@pytest.fixture
def database(settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> Database:
    """A `Database` for code under test (the web app) that shares the test transaction."""
    return Database(settings, engine=engine, sessions=sessions)


@pytest.fixture
async def fresh_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, unmigrated database of its own, for migration and CLI tests."""
    async with throwaway_database(db_backend, tmp_path) as url:
        yield url


@pytest.fixture
def customer_label_with_email(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Customer's label shows its email, as a model's `__str__` might: for the masking rule's tests."""
    monkeypatch.setattr(Customer, "__str__", lambda self: f"{self.name} <{self.email}>")
    masking.label_may_reveal.cache_clear()
    yield
    monkeypatch.undo()
    masking.label_may_reveal.cache_clear()
