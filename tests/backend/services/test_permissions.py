from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.auth.permissions import BUILTIN_ROLES, permission_specs
from backend.db.uow import UnitOfWork
from backend.errors import PermissionDenied
from backend.models import Permission, Role
from backend.services.permissions import sync_permissions
from tests.backend.services.conftest import UowFactory


async def _role_codes(session: AsyncSession, name: str) -> set[str]:
    role = (await session.execute(select(Role).where(Role.name == name))).scalar_one()
    await session.refresh(role, attribute_names=["permissions"])
    return {p.codename for p in role.permissions}


async def test_every_model_gets_its_permissions(session: AsyncSession) -> None:
    codes = set((await session.execute(select(Permission.codename))).scalars())
    for table in ("user", "role"):
        for action in ("view", "add", "change", "delete", "restore", "purge", "export", "import"):
            assert f"{table}.{action}" in codes
    assert {"audit.view", "trash.view"} <= codes
    assert "permission.view" not in codes and "auth_session.view" not in codes  # admin-less models


async def test_sync_is_idempotent(system_uow: UnitOfWork, session: AsyncSession) -> None:
    before = await session.scalar(select(func.count()).select_from(Permission))
    report = await sync_permissions(system_uow)
    assert report.created_permissions == [] and report.created_roles == []
    assert await session.scalar(select(func.count()).select_from(Permission)) == before


async def test_sync_adds_missing_and_never_deletes(system_uow: UnitOfWork, session: AsyncSession) -> None:
    session.add(Permission(codename="legacy.thing", description="from an old model"))
    await session.execute(delete(Permission).where(Permission.codename == "user.export"))
    await session.commit()
    report = await sync_permissions(system_uow)
    assert report.created_permissions == ["user.export"]
    assert await session.scalar(select(func.count()).where(Permission.codename == "legacy.thing")) == 1
    # A permission seen for the first time reaches the built-in roles whose policy has it.
    assert "user.export" in await _role_codes(session, "auditor")


async def test_builtin_roles_and_their_policies(session: AsyncSession) -> None:
    names = set((await session.execute(select(Role.name).where(Role.is_builtin.is_(True)))).scalars())
    assert names == set(BUILTIN_ROLES)
    auditor = await _role_codes(session, "auditor")
    assert {"audit.view", "trash.view", "user.view", "role.view", "user.export"} <= auditor
    assert not any(code.endswith((".add", ".change", ".delete", ".purge", ".restore")) for code in auditor)
    for role in ("manager", "editor", "viewer"):
        codes = await _role_codes(session, role)
        assert not any(code.startswith(("user.", "role.")) for code in codes), role
        assert not any(code.endswith(".purge") for code in codes), role
    assert not any(code.endswith(".export") for code in await _role_codes(session, "viewer"))


async def test_edited_roles_stay_edited(system_uow: UnitOfWork, session: AsyncSession) -> None:
    auditor = (await session.execute(select(Role).where(Role.name == "auditor"))).scalar_one()
    await session.refresh(auditor, attribute_names=["permissions"])
    auditor.permissions = [p for p in auditor.permissions if p.codename != "audit.view"]
    await session.commit()
    await sync_permissions(system_uow)
    assert "audit.view" not in await _role_codes(session, "auditor")


async def test_sync_needs_a_superuser(uow_as: UowFactory) -> None:
    async with uow_as(Actor(user_id=1, username="u", permissions=frozenset({"role.change"}))) as uow:
        with pytest.raises(PermissionDenied):
            await sync_permissions(uow)


def test_specs_are_unique() -> None:
    codes = [spec.codename for spec in permission_specs()]
    assert len(codes) == len(set(codes))
