from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from backend.models import User
from tests.factories import make_user


async def test_timestamps_are_set_and_timezone_aware_utc(session: AsyncSession) -> None:
    before = datetime.now(UTC)
    user = await make_user(session)
    await session.commit()
    session.expunge_all()

    loaded = (await session.execute(select(User).where(User.id == user.id))).scalar_one()
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= loaded.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert loaded.updated_at >= loaded.created_at


async def test_updated_at_moves_on_update(session: AsyncSession) -> None:
    user = await make_user(session)
    first = user.updated_at
    user.email = "changed@example.com"
    await session.flush()
    assert user.updated_at > first
    assert user.created_at <= first


async def test_database_default_timestamps_for_bulk_sql(session: AsyncSession) -> None:
    await session.execute(text("INSERT INTO \"user\" (username) VALUES ('bulk-row')"))
    row = (await session.execute(select(User).where(User.username == "bulk-row"))).scalar_one()
    assert row.created_at.tzinfo is not None
    assert row.version == 1
    assert row.is_active is True and row.is_superuser is False


async def test_other_time_zones_are_stored_as_utc(session: AsyncSession) -> None:
    plus_two = timezone(timedelta(hours=2))
    user = await make_user(session, last_login_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_two))
    await session.commit()
    session.expunge_all()
    loaded = (await session.execute(select(User).where(User.id == user.id))).scalar_one()
    assert loaded.last_login_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert loaded.last_login_at.tzinfo == UTC


async def test_naive_datetimes_are_refused(session: AsyncSession) -> None:
    session.add(User(username="naive", last_login_at=datetime(2026, 1, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.flush()


async def test_soft_delete_columns(session: AsyncSession) -> None:
    actor = await make_user(session)
    user = await make_user(session)
    assert not user.is_deleted
    user.deleted_at = datetime.now(UTC)
    user.deleted_by_id = actor.id
    await session.flush()
    assert user.is_deleted


async def test_username_is_unique_among_live_rows_only(session: AsyncSession) -> None:
    first = await make_user(session, username="dup")
    first.deleted_at = datetime.now(UTC)
    await session.flush()
    await make_user(session, username="dup")  # allowed: the other one is deleted
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        await make_user(session, username="dup")


async def test_version_counts_updates(session: AsyncSession) -> None:
    user = await make_user(session)
    assert user.version == 1
    user.email = "one@example.com"
    await session.flush()
    assert user.version == 2


async def test_stale_update_is_refused(session: AsyncSession) -> None:
    user = await make_user(session)
    # Someone else saves the row first: its version moves on.
    await session.execute(
        update(User).where(User.id == user.id).values(version=User.version + 1),
        execution_options={"synchronize_session": False},
    )
    user.email = "stale@example.com"
    with pytest.raises(StaleDataError):
        await session.flush()
