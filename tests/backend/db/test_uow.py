from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from backend.auth.actor import Actor
from backend.db.errors import is_database_unavailable
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Customer, Tag, User
from backend.repositories.audit import AuditEntryRepository
from backend.repositories.base import IntegrityViolation
from tests.databases import make_settings
from tests.factories import make_customer, make_tag

SYSTEM = Actor.system("tests")


async def _count(session: AsyncSession, username: str) -> int:
    return (await session.execute(select(func.count()).where(User.username == username))).scalar_one()


async def test_rolls_back_unless_committed(database: Database, session: AsyncSession) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        uow.session.add(User(username="not-committed"))
        await uow.session.flush()
    assert await _count(session, "not-committed") == 0


async def test_commit_persists(database: Database, session: AsyncSession) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        uow.session.add(User(username="committed"))
        await uow.commit()
    assert uow.committed
    assert await _count(session, "committed") == 1


async def test_exception_rolls_back_and_closes(database: Database, session: AsyncSession) -> None:
    try:
        async with unit_of_work(database, SYSTEM) as uow:
            uow.session.add(User(username="failed"))
            await uow.session.flush()
            raise LookupError("boom")
    except LookupError:
        pass
    assert not uow.session.in_transaction()
    assert await _count(session, "failed") == 0


async def test_work_after_commit_is_rolled_back(database: Database, session: AsyncSession) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        uow.session.add(User(username="first"))
        await uow.commit()
        uow.session.add(User(username="second"))
        await uow.session.flush()
    assert await _count(session, "first") == 1
    assert await _count(session, "second") == 0


async def test_database_errors_never_carry_the_values_written(session: AsyncSession) -> None:
    """Error messages (and so log lines) show the SQL, never the parameters: they can be personal data."""
    taken = await make_customer(session, email="private.person@example.com")
    with pytest.raises(IntegrityError) as caught:
        async with session.begin_nested():
            session.add(Customer(name="Someone else", email=taken.email, phone="+44 1", address="x"))
            await session.flush()
    assert "private.person@example.com" not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


async def test_one_repository_per_model_and_unit(database: Database) -> None:
    async with unit_of_work(database, SYSTEM) as uow, unit_of_work(database, SYSTEM) as other:
        assert uow.repo(Tag) is uow.repo(Tag)
        assert uow.repo(Tag) is not other.repo(Tag)
        # A model with its own queries gets its repository class, whichever way it is asked for.
        assert isinstance(uow.repo(AuditEntry), AuditEntryRepository)
        assert uow.repo(AuditEntry) is uow.repo(AuditEntryRepository)


async def test_writes_outside_a_unit_of_work_are_not_audited(
    database: Database, session: AsyncSession
) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        audited = uow.repo(Tag).stage(Tag(name="through-a-unit"))
        await uow.flush()
        assert await _entries(uow.session, audited.id) == 1
    async with database.sessions() as plain:
        tag = Tag(name="around-the-units")
        plain.add(tag)
        await plain.flush()
        assert await _entries(plain, tag.id) == 0


async def _entries(session: AsyncSession, tag_id: int) -> int:
    stmt = select(func.count()).where(AuditEntry.model == "tag", AuditEntry.object_id == str(tag_id))
    return (await session.execute(stmt)).scalar_one()


async def test_a_failed_savepoint_names_the_constraint_and_leaves_the_unit_usable(
    database: Database, session: AsyncSession
) -> None:
    await make_tag(session, name="taken")
    await session.commit()
    async with unit_of_work(database, SYSTEM) as uow:
        tags = uow.repo(Tag)
        with pytest.raises(IntegrityViolation) as caught:
            async with tags.savepoint():
                tags.stage(Tag(name="taken"))
        assert (caught.value.violation.kind, caught.value.violation.columns) == ("unique", ("name",))
        await tags.add(Tag(name="free"))  # the failed insert is not retried
        assert await tags.exists(name="free")


@pytest.mark.postgres
async def test_a_connection_that_died_before_closing_does_not_fail_the_close(fresh_url: str) -> None:
    """PgBouncer or the server going away after a page's last statement: the answer stands."""
    database = Database(make_settings(fresh_url))
    killer = create_async_engine(fresh_url, isolation_level="AUTOCOMMIT")
    try:
        async with unit_of_work(database, SYSTEM, writes=False) as uow:
            pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with killer.connect() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with unit_of_work(database, SYSTEM, writes=False) as uow:
            assert (await uow.session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await killer.dispose()
        await database.dispose()


def test_a_connection_class_sqlstate_means_unavailable() -> None:
    class ClosedMidOperation(Exception):
        sqlstate = "08003"  # asyncpg's ConnectionDoesNotExistError

    class UniqueViolation(Exception):
        sqlstate = "23505"

    def wrapped(cause: Exception) -> DBAPIError:
        orig = Exception("connection was closed in the middle of operation")
        orig.__cause__ = cause
        return DBAPIError("ROLLBACK", None, orig)

    assert is_database_unavailable(wrapped(ClosedMidOperation()))
    assert not is_database_unavailable(wrapped(UniqueViolation()))


@pytest.mark.postgres
async def test_a_pooled_connection_is_pinged_in_one_round_trip_and_replaced_when_dead(fresh_url: str) -> None:
    """SQLAlchemy's pre-ping costs BEGIN, an empty statement and ROLLBACK; ours sends one statement
    alone, keeps a connection that answers it and swaps one that does not for a new one."""
    database = Database(make_settings(fresh_url, db_pool_size=1, db_max_overflow=0))
    killer = create_async_engine(fresh_url, isolation_level="AUTOCOMMIT")
    sent: list[str] = []

    @event.listens_for(database.engine.sync_engine, "connect")
    def _record_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda query: sent.append(query.query))

    try:
        async with unit_of_work(database, SYSTEM, writes=False) as uow:
            first_pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert sent[0].startswith("BEGIN")  # a new connection is not pinged: it has just answered
        await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon after, not during, the query
        sent.clear()
        async with unit_of_work(database, SYSTEM, writes=False) as uow:
            same_pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert same_pid == first_pid  # the connection answered its ping and was kept
        assert sent[0] == "SELECT 1"
        assert sent[1].startswith("BEGIN")
        assert sent.count("SELECT 1") == 1

        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        async with unit_of_work(database, SYSTEM, writes=False) as uow:
            pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert pid != first_pid
    finally:
        await killer.dispose()
        await database.dispose()


async def test_only_a_unit_that_has_done_nothing_takes_a_signed_in_actor(database: Database) -> None:
    nobody = Actor(user_id=None, username="anonymous")
    someone = Actor(user_id=7, username="someone")
    async with unit_of_work(database, nobody, writes=False) as uow:
        uow.signed_in(someone)
        assert uow.actor is someone
        with pytest.raises(RuntimeError):
            uow.signed_in(Actor(user_id=8, username="another"))  # acts as someone already
    async with unit_of_work(database, nobody) as uow:
        uow.session.add(Tag(name="pending"))
        with pytest.raises(RuntimeError):
            uow.signed_in(someone)  # a change made as nobody is never credited to someone
