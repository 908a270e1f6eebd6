from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import Customer, User
from tests.factories import make_customer

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
