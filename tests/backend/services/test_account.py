"""Self-service (backend/services/account.py): one's own password and sessions, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.auth.passwords import hasher_for
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, AuthSession, LoginAttempt, User
from backend.services import account
from backend.services.account import AccountService
from backend.services.auth import AuthService, hash_token
from tests.backend.services.conftest import UowFactory
from tests.factories import DEFAULT_PASSWORD, make_role, make_user

NEW_PASSWORD = "a-brand-new-password-77"


async def _signed_in(
    system_uow: UnitOfWork, user: User, *, address: str = "10.1.0.1", agent: str = ""
) -> str:
    outcome = await AuthService(system_uow).login(
        user.username, DEFAULT_PASSWORD, client_address=address, user_agent=agent
    )
    assert outcome.ok and outcome.token and outcome.pending_factor is None
    await system_uow.flush()
    return outcome.token


def _as(user: User, address: str = "10.1.0.1") -> Actor:
    return Actor(user_id=user.id, username=user.username, client_address=address)


async def _actions(session: AsyncSession, user: User) -> list[str]:
    rows = await session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.model == "user", AuditEntry.object_id == str(user.id))
        .order_by(AuditEntry.id)
    )
    return list(rows)


async def _open(system_uow: UnitOfWork, token: str) -> bool:
    # As a new request would: the service's UPDATEs bypass the identity map.
    for row in list(system_uow.session.identity_map.values()):
        if isinstance(row, AuthSession):
            system_uow.session.expire(row)
    return await AuthService(system_uow).authenticate(token) is not None


async def test_a_wrong_current_password_counts_toward_throttling(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    token = await _signed_in(system_uow, user)
    limit = system_uow.settings.login_max_failures_per_user
    async with uow_as(_as(user)) as uow:
        for _ in range(limit):
            wrong = await AccountService(uow).change_password(
                token, "not-my-password", NEW_PASSWORD, client_address="10.1.0.1"
            )
            assert not wrong.ok and wrong.message == account.WRONG_PASSWORD and not wrong.throttled
        throttled = await AccountService(uow).change_password(
            token, DEFAULT_PASSWORD, NEW_PASSWORD, client_address="10.1.0.1"
        )
    assert not throttled.ok and throttled.throttled and "Too many failed" in throttled.message
    failures = await session.scalar(
        select(func.count()).where(LoginAttempt.username == user.username, LoginAttempt.succeeded.is_(False))
    )
    assert failures == limit
    actions = await _actions(session, user)
    assert actions.count(account.PASSWORD_FAILED) == limit and account.PASSWORD_REFUSED in actions
    await session.refresh(user)
    assert hasher_for(system_uow.settings).verify_and_update(DEFAULT_PASSWORD, user.password_hash)[0]
    # The sign-in form is throttled too: the same counter.
    refused = await AuthService(system_uow).login(user.username, DEFAULT_PASSWORD, client_address="10.9.9.9")
    assert refused.throttled


async def test_the_policy_of_set_password_applies(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    token = await _signed_in(system_uow, user)
    async with uow_as(_as(user)) as uow:
        with pytest.raises(ValidationFailed) as short:
            await AccountService(uow).change_password(token, DEFAULT_PASSWORD, "short", client_address="x")
        with pytest.raises(ValidationFailed) as same:
            await AccountService(uow).change_password(
                token, DEFAULT_PASSWORD, DEFAULT_PASSWORD, client_address="x"
            )
        with pytest.raises(ValidationFailed) as named:
            await AccountService(uow).change_password(
                token, DEFAULT_PASSWORD, user.username.upper(), client_address="x"
            )
    assert "Use at least 10 characters." in short.value.errors["password"]
    assert same.value.errors["password"] == [account.SAME_PASSWORD]
    assert named.value.errors["password"]
    assert await _open(system_uow, token)  # nothing ended


async def test_success_ends_every_other_session_and_rotates_this_one(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    token = await _signed_in(system_uow, user, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    other = await _signed_in(system_uow, user, address="10.1.0.2")
    async with uow_as(_as(user)) as uow:
        changed = await AccountService(uow).change_password(
            token, DEFAULT_PASSWORD, NEW_PASSWORD, client_address="10.1.0.1"
        )
    assert changed.ok and changed.token and changed.token != token
    assert not await _open(system_uow, token) and not await _open(system_uow, other)
    assert await _open(system_uow, changed.token)
    rotated = await session.scalar(
        select(AuthSession).where(AuthSession.token_hash == hash_token(changed.token))
    )
    assert rotated is not None and rotated.user_agent.startswith("Mozilla/5.0")
    assert rotated.pending_factor is None and rotated.revoked_at is None
    actions = await _actions(session, user)
    assert account.PASSWORD_CHANGED in actions and "update" in actions
    entry = await session.scalar(
        select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.object_id == str(user.id))
    )
    assert entry is not None and entry.changes["password_hash"] == ["[redacted]", "[redacted]"]
    assert entry.actor_id == user.id
    assert not (await AuthService(system_uow).login(user.username, DEFAULT_PASSWORD, client_address="z")).ok
    assert (await AuthService(system_uow).login(user.username, NEW_PASSWORD, client_address="z")).ok


async def test_a_half_signed_in_or_foreign_or_ended_session_is_refused(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    role = await make_role(session, permissions=["product.view"], requires_two_factor=True)
    pending_user = await make_user(session)
    pending_user.roles = [role]
    user, stranger = await make_user(session), await make_user(session)
    await session.commit()
    pending = await AuthService(system_uow).login(pending_user.username, DEFAULT_PASSWORD, client_address="a")
    assert pending.token and pending.pending_factor == "enrol"
    theirs = await _signed_in(system_uow, stranger)
    mine = await _signed_in(system_uow, user)
    await AuthService(system_uow).logout(mine)
    async with uow_as(_as(pending_user)) as uow:
        with pytest.raises(PermissionDenied):
            await AccountService(uow).change_password(
                pending.token, DEFAULT_PASSWORD, NEW_PASSWORD, client_address="a"
            )
        with pytest.raises(PermissionDenied):
            await AccountService(uow).end_other_sessions(pending.token)
    async with uow_as(_as(user)) as uow:
        with pytest.raises(PermissionDenied):
            await AccountService(uow).open_sessions(theirs)  # another user's token
        with pytest.raises(PermissionDenied):
            await AccountService(uow).open_sessions(mine)  # signed out
    assert await _open(system_uow, theirs)


async def test_ending_sessions_touches_only_ones_own_others(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    user, stranger = await make_user(session), await make_user(session)
    await session.commit()
    this = await _signed_in(system_uow, user, agent="this")
    second = await _signed_in(system_uow, user, agent="second")
    third = await _signed_in(system_uow, user, agent="third")
    theirs = await _signed_in(system_uow, stranger)
    ids = {
        row.user_agent: row.id
        for row in await session.scalars(select(AuthSession).where(AuthSession.user_id == user.id))
    }
    their_id = await session.scalar(select(AuthSession.id).where(AuthSession.user_id == stranger.id))
    assert their_id is not None
    async with uow_as(_as(user)) as uow:
        listed = await AccountService(uow).open_sessions(this)
        assert {s.id for s in listed} == set(ids.values())
        assert [s.id for s in listed if s.current] == [ids["this"]]
        with pytest.raises(NotFound):
            await AccountService(uow).end_session(this, their_id)
        with pytest.raises(Conflict):
            await AccountService(uow).end_session(this, ids["this"])
        await AccountService(uow).end_session(this, ids["second"])
        with pytest.raises(NotFound):
            await AccountService(uow).end_session(this, ids["second"])  # already over
    assert await _open(system_uow, theirs) and await _open(system_uow, this)
    assert not await _open(system_uow, second) and await _open(system_uow, third)
    async with uow_as(_as(user)) as uow:
        assert await AccountService(uow).end_other_sessions(this) == 1
        assert [s.id for s in await AccountService(uow).open_sessions(this)] == [ids["this"]]
        assert await AccountService(uow).end_other_sessions(this) == 0
    assert await _open(system_uow, this) and not await _open(system_uow, third)
    assert await _open(system_uow, theirs)
    actions = await _actions(session, user)
    assert actions.count(account.SESSION_ENDED) == 1 and actions.count(account.SESSIONS_ENDED) == 1


async def test_the_list_leaves_out_expired_idle_and_half_signed_in_sessions(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    user = await make_user(session)
    await session.commit()
    this = await _signed_in(system_uow, user, agent="this")
    expired = await _signed_in(system_uow, user, agent="expired")
    idle = await _signed_in(system_uow, user, agent="idle")
    pending = await _signed_in(system_uow, user, agent="pending")
    now = datetime.now(UTC)
    idle_for = timedelta(minutes=system_uow.settings.session_idle_timeout_minutes + 1)
    for token, values in (
        (expired, {"expires_at": now - timedelta(seconds=1)}),
        (idle, {"last_seen_at": now - idle_for}),
        (pending, {"pending_factor": "code"}),
    ):
        await session.execute(
            update(AuthSession).where(AuthSession.token_hash == hash_token(token)).values(**values)
        )
    async with uow_as(_as(user)) as uow:
        listed = await AccountService(uow).open_sessions(this)
        assert [s.user_agent for s in listed] == ["this"]
        # "All others" ends the half signed-in one too: whoever knew the password loses that step.
        assert (
            await AccountService(uow).end_other_sessions(this) == 2
        )  # idle and pending, not the expired one
    revoked = await session.scalar(
        select(AuthSession.revoked_at).where(AuthSession.token_hash == hash_token(pending))
    )
    assert revoked is not None
