from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuthSession, User
from backend.services.auth import AuthService
from backend.services.users import UserService
from tests.backend.services.conftest import UowFactory
from tests.factories import DEFAULT_PASSWORD, make_role, make_user

GOOD_PASSWORD = "correct-horse-battery-9"


def actor_with(*codenames: str, user_id: int = 999_999) -> Actor:
    return Actor(user_id=user_id, username="tester", permissions=frozenset(codenames))


async def test_create_hashes_the_password_and_assigns_roles(system_uow: UnitOfWork) -> None:
    user = await UserService(system_uow).create(
        {"username": "dana", "email": "dana@example.com", "password": GOOD_PASSWORD, "roles": ["viewer"]}
    )
    assert user.password_hash.startswith("$argon2id$")
    assert GOOD_PASSWORD not in user.password_hash
    assert [role.name for role in user.roles] == ["viewer"]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10 characters"),
        ("dana-the-user", "same as the username"),
        ("password123", "too common"),
        ("PASSWORD123", "too common"),
    ],
)
async def test_password_policy(system_uow: UnitOfWork, password: str, problem: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await UserService(system_uow).create({"username": "dana-the-user", "password": password})
    assert any(problem in message for message in caught.value.errors["password"])


async def test_invalid_input_names_the_fields(system_uow: UnitOfWork) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await UserService(system_uow).create(
            {"username": "has space", "email": "not-an-email", "password": GOOD_PASSWORD, "roles": []}
        )
    assert set(caught.value.errors) == {"username", "email"}


async def test_duplicate_username_is_a_field_conflict(system_uow: UnitOfWork, session: AsyncSession) -> None:
    await make_user(session, username="taken")
    await session.commit()
    with pytest.raises(Conflict, match=r"A user named taken already exists\.") as caught:
        await UserService(system_uow).create({"username": "taken", "password": GOOD_PASSWORD})
    assert caught.value.field == "username"


async def test_unknown_role_is_refused(system_uow: UnitOfWork) -> None:
    with pytest.raises(ValidationFailed, match="not valid") as caught:
        await UserService(system_uow).create({"username": "x1", "password": GOOD_PASSWORD, "roles": ["nope"]})
    assert caught.value.errors == {"roles": ["No such role: nope."]}


async def test_permission_is_checked_first(uow_as: UowFactory) -> None:
    async with uow_as(actor_with("user.view")) as uow:
        with pytest.raises(PermissionDenied, match=r"user\.add"):
            await UserService(uow).create({"username": "x2", "password": GOOD_PASSWORD})


async def test_only_superusers_make_superusers(uow_as: UowFactory, session: AsyncSession) -> None:
    target = await make_user(session)
    await session.commit()
    manager = actor_with("user.view", "user.add", "user.change")
    async with uow_as(manager) as uow:
        with pytest.raises(PermissionDenied, match="superuser"):
            await UserService(uow).create({"username": "x3", "password": GOOD_PASSWORD, "is_superuser": True})
        with pytest.raises(PermissionDenied, match="superuser"):
            await UserService(uow).update(target.id, {"is_superuser": True})


async def test_nobody_gives_roles_beyond_their_own_permissions(
    uow_as: UowFactory, session: AsyncSession
) -> None:
    strong = await make_role(session, permissions=["user.view", "user.change", "role.change"])
    purger = await make_role(session, permissions=["user.purge"])
    target = await make_user(session)
    await session.commit()
    manager = actor_with("user.view", "user.add", "user.change")
    async with uow_as(manager) as uow:
        with pytest.raises(PermissionDenied, match=r"role\.change"):
            await UserService(uow).update(target.id, {"roles": [strong.name]})
        with pytest.raises(PermissionDenied, match="purge"):
            await UserService(uow).update(target.id, {"roles": [purger.name]})
    async with uow_as(actor_with("user.view", "user.change", "role.change", "user.purge")) as uow:
        with pytest.raises(PermissionDenied, match="purge"):  # purge stays superuser-only
            await UserService(uow).update(target.id, {"roles": [purger.name]})


async def test_cannot_deactivate_or_delete_yourself(uow_as: UowFactory, session: AsyncSession) -> None:
    me = await make_user(session)
    await session.commit()
    actor = actor_with("user.view", "user.change", "user.delete", user_id=me.id)
    async with uow_as(actor) as uow:
        with pytest.raises(PermissionDenied, match="your own account"):
            await UserService(uow).deactivate(me.id)
        with pytest.raises(PermissionDenied, match="your own account"):
            await UserService(uow).delete(me.id)


async def test_delete_is_soft_and_frees_the_username(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session, username="leaving")
    await session.commit()
    service = UserService(system_uow)
    await service.delete(user.id)
    await system_uow.commit()
    row = (await session.execute(select(User).where(User.id == user.id))).scalar_one()
    await session.refresh(row)
    assert row.deleted_at is not None and row.deleted_by_id is None  # the system actor has no user row
    with pytest.raises(NotFound):
        await service.get(user.id)
    await service.create({"username": "leaving", "password": GOOD_PASSWORD})  # the name is free again


async def _signed_in(uow: UnitOfWork, username: str) -> str:
    outcome = await AuthService(uow).login(username, DEFAULT_PASSWORD, client_address="127.0.0.1")
    assert outcome.token
    return outcome.token


async def test_password_change_revokes_sessions(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    token = await _signed_in(system_uow, user.username)
    auth = AuthService(system_uow)
    assert await auth.authenticate(token) is not None
    await UserService(system_uow).set_password(user.id, GOOD_PASSWORD)
    assert await auth.authenticate(token) is None
    open_sessions = await session.scalar(
        select(AuthSession.id).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
    )
    assert open_sessions is None


async def test_role_change_revokes_sessions_but_an_unchanged_save_does_not(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    user = await make_user(session, roles=["viewer"])
    await session.commit()
    token = await _signed_in(system_uow, user.username)
    service, auth = UserService(system_uow), AuthService(system_uow)
    await service.update(user.id, {"email": "same-roles@example.com", "roles": ["viewer"]})
    assert await auth.authenticate(token) is not None
    await service.update(user.id, {"roles": ["viewer", "editor"]})
    assert await auth.authenticate(token) is None
