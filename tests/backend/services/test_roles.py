from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import PermissionDenied, ValidationFailed
from backend.services.roles import RoleService
from tests.backend.services.conftest import UowFactory
from tests.factories import make_role


def role_admin(*extra: str) -> Actor:
    codes = {"role.view", "role.add", "role.change", *extra}
    return Actor(user_id=1, username="role-admin", permissions=frozenset(codes))


async def test_create_and_grant(system_uow: UnitOfWork) -> None:
    service = RoleService(system_uow)
    role = await service.create({"name": "support", "description": "Help desk", "permissions": ["user.view"]})
    assert [p.codename for p in role.permissions] == ["user.view"]
    role = await service.grant("support", ["role.view"])
    assert sorted(p.codename for p in role.permissions) == ["role.view", "user.view"]
    role = await service.revoke("support", ["user.view"])
    assert [p.codename for p in role.permissions] == ["role.view"]


async def test_unknown_permission_is_refused(system_uow: UnitOfWork) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await RoleService(system_uow).create({"name": "typo", "permissions": ["user.veiw"]})
    assert caught.value.errors == {"permissions": ["Unknown permission: user.veiw."]}


async def test_duplicate_name(system_uow: UnitOfWork) -> None:
    with pytest.raises(ValidationFailed, match="not valid") as caught:
        await RoleService(system_uow).create({"name": "viewer"})
    assert "already exists" in caught.value.errors["name"][0]


async def test_cannot_grant_what_you_lack(uow_as: UowFactory, session: AsyncSession) -> None:
    role = await make_role(session)
    await session.commit()
    async with uow_as(role_admin()) as uow:
        with pytest.raises(PermissionDenied, match=r"user\.change"):
            await RoleService(uow).grant(role.name, ["user.change"])
        with pytest.raises(PermissionDenied, match=r"user\.change"):
            await RoleService(uow).create({"name": "sneaky", "permissions": ["user.change"]})
    async with uow_as(role_admin("user.change")) as uow:
        role_after = await RoleService(uow).grant(role.name, ["user.change"])
        assert [p.codename for p in role_after.permissions] == ["user.change"]


async def test_purge_is_granted_by_superusers_only(uow_as: UowFactory, session: AsyncSession) -> None:
    role = await make_role(session)
    await session.commit()
    async with uow_as(role_admin("user.purge")) as uow:
        with pytest.raises(PermissionDenied, match=r"Only a superuser can grant user\.purge"):
            await RoleService(uow).grant(role.name, ["user.purge"])
    async with uow_as(Actor(user_id=1, username="root", is_superuser=True)) as uow:
        assert [
            p.codename for p in (await RoleService(uow).grant(role.name, ["user.purge"])).permissions
        ] == ["user.purge"]


async def test_removing_permissions_you_lack_is_allowed(uow_as: UowFactory, session: AsyncSession) -> None:
    role = await make_role(session, permissions=["user.change", "role.view"])
    await session.commit()
    async with uow_as(role_admin()) as uow:
        updated = await RoleService(uow).revoke(role.name, ["user.change"])
    assert [p.codename for p in updated.permissions] == ["role.view"]


async def test_viewers_cannot_change_roles(uow_as: UowFactory) -> None:
    async with uow_as(Actor(user_id=1, username="v", permissions=frozenset({"role.view"}))) as uow:
        with pytest.raises(PermissionDenied):
            await RoleService(uow).grant("viewer", ["role.view"])
