from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, hasher_for
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.models import AuthSession, LoginAttempt, User
from backend.services.auth import BAD_CREDENTIALS, PASSWORD_TOO_LONG, AuthService, hash_token
from tests.databases import make_settings
from tests.factories import DEFAULT_PASSWORD, make_user


async def test_login_opens_a_session_storing_only_a_hash(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    user = await make_user(session, roles=["auditor"])
    await session.commit()
    outcome = await AuthService(system_uow).login(user.username, DEFAULT_PASSWORD, client_address="10.0.0.1")
    assert outcome.ok and outcome.token
    stored = (await session.execute(select(AuthSession).where(AuthSession.user_id == user.id))).scalar_one()
    assert stored.token_hash == hash_token(outcome.token) and outcome.token not in stored.token_hash
    assert stored.client_address == "10.0.0.1"
    actor = await AuthService(system_uow).authenticate(outcome.token)
    assert actor is not None and actor.user_id == user.id
    assert actor.has_perm("audit.view") and not actor.has_perm("user.change")


async def test_failures_are_recorded_and_look_alike(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    auth = AuthService(system_uow)
    wrong = await auth.login(user.username, "wrong", client_address="10.0.0.2")
    unknown = await auth.login("ghost", "wrong", client_address="10.0.0.2")
    assert not wrong.ok and not unknown.ok
    assert wrong.message == unknown.message == BAD_CREDENTIALS
    await system_uow.session.flush()
    recorded = (
        await session.execute(select(LoginAttempt).where(LoginAttempt.client_address == "10.0.0.2"))
    ).all()
    assert len(recorded) == 2


async def test_hash_is_upgraded_on_login(database: Database, session: AsyncSession) -> None:
    weak = PasswordHasher(memory_kib=1024, time_cost=1).hash(DEFAULT_PASSWORD)
    user = await make_user(session)
    user.password_hash = weak
    await session.commit()
    stronger = make_settings(
        database.settings.database_url, password_hash_memory_kib=2048, password_hash_time_cost=2
    )
    async with unit_of_work(
        Database(stronger, engine=database.engine, sessions=database.sessions), _anon()
    ) as uow:
        assert (await AuthService(uow).login(user.username, DEFAULT_PASSWORD, client_address="x")).ok
        await uow.commit()
    await session.refresh(user)
    assert user.password_hash != weak
    assert "m=2048,t=2" in user.password_hash


async def test_unknown_users_cost_a_full_verification(database: Database) -> None:
    # At production cost one verification takes tens of milliseconds: an
    # unknown user must pay it too, or response times would reveal who exists.
    production_cost = make_settings(database.settings.database_url, password_hash_memory_kib=19456)
    hasher = hasher_for(production_cost)  # built, and its dummy hash made, before timing
    # The fastest of a few runs: a busy machine only ever makes a run slower, and an inflated
    # reference would fail the comparison below for no fault of the code.
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        hasher.spend_verification_time("whatever")
        runs.append(time.perf_counter() - started)
    one_verification = min(runs)
    db = Database(production_cost, engine=database.engine, sessions=database.sessions)
    async with unit_of_work(db, _anon()) as uow:
        await AuthService(uow).login("warm-up", "whatever", client_address="y")  # compile the statements
        attempts = []
        for _ in range(3):  # the fastest of a few too: the same busy machine, the same rule
            started = time.perf_counter()
            await AuthService(uow).login("certainly-nobody", "whatever", client_address="y")
            attempts.append(time.perf_counter() - started)
        unknown = min(attempts)
    assert unknown >= one_verification / 2


async def test_idle_absolute_and_revoked_sessions_are_refused(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    auth = AuthService(system_uow)
    tokens = [(await auth.login(user.username, DEFAULT_PASSWORD, client_address="z")).token for _ in range(4)]
    assert all(tokens)
    idle, expired, revoked, live = (t or "" for t in tokens)
    now = datetime.now(UTC)
    db = system_uow.session
    await db.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(idle))
        .values(last_seen_at=now - timedelta(days=1))
    )
    await db.execute(
        update(AuthSession).where(AuthSession.token_hash == hash_token(expired)).values(expires_at=now)
    )
    await auth.logout(revoked)
    assert await auth.authenticate(idle) is None
    assert await auth.authenticate(expired) is None
    assert await auth.authenticate(revoked) is None
    assert await auth.authenticate(live) is not None
    assert await auth.authenticate("") is None and await auth.authenticate("made-up") is None
    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    assert await auth.authenticate(live) is None


async def test_last_seen_is_written_at_most_once_a_minute(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    token = (
        await AuthService(system_uow).login(user.username, DEFAULT_PASSWORD, client_address="w")
    ).token or ""
    fresh = AuthService(system_uow)
    await fresh.authenticate(token)
    assert not fresh.touched
    await system_uow.session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(token))
        .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=5))
    )
    later = AuthService(system_uow)
    await later.authenticate(token)
    assert later.touched


async def test_a_session_revoked_after_the_read_is_not_touched_back_to_life(
    system_uow: UnitOfWork, session: AsyncSession, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session)
    await session.commit()
    token = (await AuthService(system_uow).login(user.username, DEFAULT_PASSWORD, client_address="v")).token
    assert token
    five_minutes_ago = datetime.now(UTC) - timedelta(minutes=5)  # a touch is due
    await session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(token))
        .values(last_seen_at=five_minutes_ago)
    )
    await session.commit()
    async with unit_of_work(database, _anon(), writes=False) as uow:
        begin_writing = uow.begin_writing

        async def signed_out_meanwhile() -> None:
            # Another request signs the session out between this request's read and its touch.
            await begin_writing()
            await AuthService(uow).logout(token)

        monkeypatch.setattr(uow, "begin_writing", signed_out_meanwhile)
        auth = AuthService(uow)
        assert await auth.authenticate(token) is None
        assert not auth.touched
    stored = await session.scalar(
        select(AuthSession.last_seen_at).where(AuthSession.token_hash == hash_token(token))
    )
    assert stored is not None
    assert (stored if stored.tzinfo else stored.replace(tzinfo=UTC)) == five_minutes_ago  # not touched


def _anon():  # type: ignore[no-untyped-def]
    from backend.auth.actor import Actor

    return Actor(user_id=None, username="anonymous")


@pytest.mark.postgres
async def test_concurrent_sign_ins_of_one_account_do_not_collide(fresh_url: str) -> None:
    from backend.db import migrations

    settings = make_settings(fresh_url)
    await migrations.upgrade(migrations.alembic_config(settings))
    database = Database(settings)
    try:
        async with unit_of_work(database, _anon()) as setup:
            user = await make_user(setup.session, username="busy")
            await setup.commit()

        async def sign_in() -> bool:
            async with unit_of_work(database, _anon()) as uow:
                outcome = await AuthService(uow).login("busy", DEFAULT_PASSWORD, client_address="x")
                await uow.commit()
                return outcome.ok

        assert all(await asyncio.gather(*(sign_in() for _ in range(6))))
        async with database.sessions() as session:
            stored = (await session.execute(select(User).where(User.id == user.id))).scalar_one()
            assert stored.version == 1  # signing in is not an edit of the account
    finally:
        await database.dispose()


async def test_a_too_long_password_is_a_failed_sign_in(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    auth = AuthService(system_uow)
    for username in (user.username, "ghost"):
        outcome = await auth.login(username, DEFAULT_PASSWORD + "x" * 1_000_000, client_address="10.0.0.9")
        assert not outcome.ok and outcome.message == PASSWORD_TOO_LONG
    at_the_limit = await auth.login(user.username, "x" * MAX_PASSWORD_LENGTH, client_address="10.0.0.9")
    assert not at_the_limit.ok and at_the_limit.message == BAD_CREDENTIALS
    await system_uow.session.flush()
    recorded = (
        await session.execute(select(LoginAttempt.succeeded).where(LoginAttempt.client_address == "10.0.0.9"))
    ).scalars()
    assert list(recorded) == [False, False, False]  # they count towards throttling
