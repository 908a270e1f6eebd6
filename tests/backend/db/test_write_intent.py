"""SQLite: a writing unit of work holds the write lock from its first read; a read-only one never takes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db import migrations
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import User
from tests.databases import make_settings

pytestmark = pytest.mark.sqlite
SYSTEM = Actor.system("tests")


@pytest.fixture
async def own_database(fresh_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite file whose connections give up on a lock at once (no busy wait)."""
    settings: Settings = make_settings(fresh_url, sqlite_busy_timeout_ms=0)
    await migrations.upgrade(migrations.alembic_config(settings))
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


async def _another_writer_can_start(database: Database) -> bool:
    async with database.engine.connect() as other:
        try:
            # A write statement needs the write lock even when it changes no row.
            await other.exec_driver_sql("DELETE FROM login_attempt WHERE 0")
        except OperationalError as exc:
            assert "locked" in str(exc)
            return False
        return True


async def test_writing_unit_holds_the_write_lock_from_its_first_read(own_database: Database) -> None:
    async with unit_of_work(own_database, SYSTEM) as uow:
        await uow.session.execute(select(func.count()).select_from(User))
        assert not await _another_writer_can_start(own_database)
    assert await _another_writer_can_start(own_database)


async def test_read_only_unit_leaves_the_write_lock_free(own_database: Database) -> None:
    async with unit_of_work(own_database, SYSTEM, writes=False) as uow:
        await uow.session.execute(select(func.count()).select_from(User))
        assert await _another_writer_can_start(own_database)


async def test_read_only_unit_switches_to_writing(own_database: Database) -> None:
    async with unit_of_work(own_database, SYSTEM, writes=False) as uow:
        users = (await uow.session.execute(select(func.count()).select_from(User))).scalar_one()
        await uow.begin_writing()
        assert uow.writes
        await uow.session.execute(select(func.count()).select_from(User))
        assert not await _another_writer_can_start(own_database)
        assert users == 0


async def test_read_only_unit_refuses_to_write(own_database: Database) -> None:
    async with unit_of_work(own_database, SYSTEM, writes=False) as uow:
        uow.session.add(User(username="sneaky"))
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.session.flush()
    async with unit_of_work(own_database, SYSTEM, writes=False) as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.session.execute(update(User).values(email="x@example.com"))
        await uow.begin_writing()
        await uow.session.execute(update(User).values(email="x@example.com"))
