from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.auth.authority import Account, authority_problem
from backend.auth.passwords import MAX_PASSWORD_LENGTH, hasher_for
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


# The account-authority rule -------------------------------------------------

USER_MANAGER = ("user.view", "user.change", "user.delete", "user.restore")


def _account(*codenames: str, superuser: bool = False, user_id: int = 7) -> Account:
    return Account(user_id=user_id, username="bob", is_superuser=superuser, permissions=frozenset(codenames))


def test_authority_rule_names_what_is_lacking() -> None:
    manager = actor_with(*USER_MANAGER)
    problem = authority_problem(manager, _account("user.view", "order.delete", "customer.view_pii"))
    assert problem == (
        "You cannot change the account of bob: bob holds permissions you do not have "
        "(customer.view_pii, order.delete)."
    )
    many = _account(*(f"thing{n}.view" for n in range(8)))
    assert "thing4.view and 3 more" in (authority_problem(manager, many) or "")
    assert authority_problem(manager, _account("user.view")) is None  # holds less: allowed
    assert authority_problem(manager, _account(*USER_MANAGER)) is None  # holds the same: allowed
    everything = actor_with(*USER_MANAGER, "order.delete", "customer.view_pii")
    assert authority_problem(everything, _account(superuser=True), doing="delete the account of") == (
        "Only a superuser can delete the account of bob: bob is a superuser."
    )
    assert authority_problem(Actor.system("ops"), _account(superuser=True)) is None
    assert authority_problem(actor_with(user_id=7), _account("order.delete", user_id=7)) is None  # oneself


async def test_user_managers_cannot_take_over_accounts_that_hold_more(
    uow_as: UowFactory, session: AsyncSession, system_uow: UnitOfWork
) -> None:
    manager = await make_user(session, roles=["manager"])
    await session.commit()
    token = await _signed_in(system_uow, manager.username)
    hash_before, email_before = manager.password_hash, manager.email
    async with uow_as(actor_with(*USER_MANAGER)) as uow:
        service = UserService(uow)
        attempts = [
            service.set_password(manager.id, GOOD_PASSWORD),
            service.update(manager.id, {"email": "mine@example.com"}),
            service.update(manager.id, {"roles": []}),
            service.deactivate(manager.id),
            service.delete(manager.id),
        ]
        for attempt in attempts:
            with pytest.raises(
                PermissionDenied, match=rf"{manager.username} holds permissions you do not have"
            ):
                await attempt
        problem = await service.management_problem(manager.id)
        assert problem and problem.endswith(" more).")  # the first few lacking permissions, by name
    row = (await session.execute(select(User).where(User.id == manager.id))).scalar_one()
    await session.refresh(row)
    assert row.password_hash == hash_before and row.is_active and row.deleted_at is None
    assert row.email == email_before
    assert await AuthService(system_uow).authenticate(token) is not None  # their session lives on


async def test_user_managers_manage_accounts_that_hold_less(
    uow_as: UowFactory, session: AsyncSession, system_uow: UnitOfWork
) -> None:
    helpdesk = await make_role(session, permissions=["user.view"])
    target = await make_user(session, roles=[helpdesk.name])
    await session.commit()
    token = await _signed_in(system_uow, target.username)
    async with uow_as(actor_with(*USER_MANAGER)) as uow:
        service = UserService(uow)
        assert await service.management_problem(target.id) is None
        await service.set_password(target.id, GOOD_PASSWORD)
        await service.deactivate(target.id)
    assert await AuthService(system_uow).authenticate(token) is None


async def test_only_superusers_manage_superusers(uow_as: UowFactory, session: AsyncSession) -> None:
    root = await make_user(session, is_superuser=True)
    await session.commit()
    almighty = actor_with(*USER_MANAGER, "user.add", "user.purge", "role.change", "order.delete")
    async with uow_as(almighty) as uow:
        with pytest.raises(
            PermissionDenied, match=rf"Only a superuser can change the password of {root.username}"
        ):
            await UserService(uow).set_password(root.id, GOOD_PASSWORD)
        with pytest.raises(PermissionDenied, match="Only a superuser can delete the account of"):
            await UserService(uow).delete(root.id)
    async with uow_as(Actor(user_id=1, username="other-root", is_superuser=True)) as uow:
        await UserService(uow).set_password(root.id, GOOD_PASSWORD)


async def test_everyone_manages_their_own_account(uow_as: UowFactory, session: AsyncSession) -> None:
    me = await make_user(session, roles=["manager"])
    await session.commit()
    async with uow_as(actor_with("user.view", "user.change", user_id=me.id)) as uow:
        await UserService(uow).set_password(me.id, GOOD_PASSWORD)
        await UserService(uow).update(me.id, {"email": "me@example.com"})
        with pytest.raises(PermissionDenied, match="your own account"):
            await UserService(uow).deactivate(me.id)


async def test_restore_and_purge_follow_the_rule(
    uow_as: UowFactory, session: AsyncSession, system_uow: UnitOfWork
) -> None:
    manager_id = (await make_user(session, roles=["manager"])).id
    await session.commit()
    await UserService(system_uow).delete(manager_id)
    await system_uow.commit()
    async with uow_as(actor_with(*USER_MANAGER, "user.purge")) as uow:
        with pytest.raises(PermissionDenied, match="restore the account of"):
            await UserService(uow).restore(manager_id)
        with pytest.raises(PermissionDenied, match="purge the account of"):
            await UserService(uow).purge(manager_id)
    row = (await session.execute(select(User).where(User.id == manager_id))).scalar_one()
    await session.refresh(row)
    assert row.deleted_at is not None


# Password length ------------------------------------------------------------


async def test_passwords_are_bounded(system_uow: UnitOfWork, session: AsyncSession) -> None:
    service = UserService(system_uow)
    longest = "x7" * (MAX_PASSWORD_LENGTH // 2)
    user = await service.create({"username": "long-pass", "password": longest})
    too_long = longest + "x"
    with pytest.raises(ValidationFailed) as on_create:
        await service.create({"username": "too-long-pass", "password": too_long})
    assert "password" in on_create.value.errors
    with pytest.raises(ValidationFailed) as on_set:
        await service.set_password(user.id, "y" * 1_000_000)
    assert on_set.value.errors == {"password": [f"Use at most {MAX_PASSWORD_LENGTH} characters."]}
    hasher = hasher_for(system_uow.settings)
    assert hasher.verify_and_update("y" * 1_000_000, user.password_hash) == (False, None)
    with pytest.raises(ValueError, match="at most"):
        hasher.hash(too_long)


async def test_management_problems_answer_many_accounts_as_the_single_question_does(
    uow_as: UowFactory, session: AsyncSession
) -> None:
    manager = await make_user(session, roles=["manager"])
    root = await make_user(session, is_superuser=True)
    plain = await make_user(session)
    gone = await make_user(session, roles=["manager"])
    gone.deleted_at = plain.deleted_at = datetime.now(UTC)  # deleted accounts are answered: the trash asks
    await session.commit()
    async with uow_as(actor_with(*USER_MANAGER)) as uow:
        service = UserService(uow)
        ids = [manager.id, root.id, plain.id, gone.id, 999_999, 888_888]
        answers = await service.management_problems(ids, doing="restore the account of")
        assert set(answers) == set(ids)
        for user_id in (manager.id, root.id, gone.id):
            single = await service.management_problem(user_id, doing="restore the account of")
            assert single and answers[user_id] == single
        assert answers[plain.id] is None
        assert answers[999_999] is None  # the actor's own account (actor_with's id)
        assert answers[888_888] == "User 888888 does not exist."
    async with uow_as(actor_with("user.change")) as uow:
        with pytest.raises(PermissionDenied):
            await UserService(uow).management_problems([plain.id])
