"""Fixtures for jobs: the in-process path over the test transaction, and the queue over a real database.

Jobs keep files, so every fixture here points `job_files_dir` at the test's
temporary folder. The queue tests (PostgreSQL) need rows that other
connections see (a worker, procrastinate's own connection): they use a
database of their own, migrated once per module, where writes commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from admin.app import create_app
from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.session import Database
from backend.models import User
from backend.repositories.users import UserRepository
from tests.cli.conftest import cli  # noqa: F401 - the CLI runner fixture, used here too
from tests.databases import make_settings, migrated_database, throwaway_database
from tests.factories import make_user

# Fast heartbeats: a killed worker's job is found stalled within a couple of seconds.
HEARTBEAT_SECONDS = 0.5


def jobs_settings(settings: Settings, folder: Path, **overrides: object) -> Settings:
    return settings.model_copy(update={"job_files_dir": folder, **overrides})


@pytest.fixture
def job_settings(settings: Settings, tmp_path: Path) -> Settings:
    return jobs_settings(settings, tmp_path / "jobs")


@pytest.fixture
def job_database(
    job_settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> Database:
    """The test transaction's database (what the test writes, the code under test sees), jobs in tmp."""
    return Database(job_settings, engine=engine, sessions=sessions)


@pytest.fixture
def app(job_settings: Settings, job_database: Database) -> Starlette:
    return create_app(job_settings, database=job_database)


async def actor_of(session: AsyncSession, user: User) -> Actor:
    """The user as the admin would see them signed in: their roles' permissions."""
    grants = (await UserRepository(session).grants([user.id]))[user.id]
    return Actor(
        user_id=user.id,
        username=user.username,
        is_superuser=user.is_superuser,
        permissions=grants.permissions,
    )


async def new_actor(session: AsyncSession, *, roles: Sequence[str] = (), superuser: bool = False) -> Actor:
    user = await make_user(session, roles=roles, is_superuser=superuser)
    await session.commit()
    return await actor_of(session, user)


@pytest.fixture(scope="module")
async def queue_url(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database of the module's own, migrated (on PostgreSQL: the job table and procrastinate's queue).

    Tests that use it are marked `postgres`; `db_backend` makes `--db sqlite` leave them out.
    """
    async with throwaway_database(db_backend, tmp_path_factory.mktemp("queue")) as url:
        async with migrated_database(make_settings(url)):
            pass
        yield url


@pytest.fixture
async def queue_database(queue_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A `Database` over the queue's database, where writes commit for real."""
    database = Database(
        make_settings(
            queue_url, job_files_dir=str(tmp_path / "jobs"), job_heartbeat_seconds=HEARTBEAT_SECONDS
        )
    )
    try:
        yield database
    finally:
        await database.dispose()
