"""Roles and their permissions. Nobody grants what they do not hold; purge is superuser-only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from sqlalchemy.orm import selectinload

from backend.auth.permissions import is_purge
from backend.errors import PermissionDenied, ValidationFailed
from backend.models import Permission, Role
from backend.schemas.role import RoleCreate, RoleUpdate
from backend.services.base import CrudService


class RoleService(CrudService[Role, RoleCreate, RoleUpdate]):
    """Manage roles (needs `role.*`).

    Granting checks each added permission: a purge permission needs a
    superuser, and any other needs the granter to hold it. Removing
    permissions is always allowed to those who may change roles.
    """

    model = Role
    create_schema = RoleCreate
    update_schema = RoleUpdate
    unique_messages: ClassVar[dict[str, str]] = {"name": "A role named {value} already exists."}

    async def build(self, payload: RoleCreate) -> Role:
        if await self.repo.exists(name=payload.name):
            raise ValidationFailed({"name": [f"A role named {payload.name} already exists."]})
        permissions = await self._permissions(payload.permissions)
        self._check_can_grant(p.codename for p in permissions)
        return Role(name=payload.name, description=payload.description, permissions=permissions)

    async def apply(self, obj: Role, payload: RoleUpdate) -> None:
        fields = payload.model_fields_set
        if "name" in fields and payload.name and payload.name != obj.name:
            if await self.repo.exists(name=payload.name):
                raise ValidationFailed({"name": [f"A role named {payload.name} already exists."]})
            obj.name = payload.name
        if "description" in fields and payload.description is not None:
            obj.description = payload.description
        if "permissions" in fields and payload.permissions is not None:
            wanted = await self._permissions(payload.permissions)
            await self.repo.load(obj, "permissions")
            held = {p.codename for p in obj.permissions}
            self._check_can_grant(p.codename for p in wanted if p.codename not in held)
            obj.permissions = wanted

    async def get_by_name(self, name: str) -> Role:
        self.require("view")
        role = await self.repo.get_by(name=name, options=(selectinload(Role.permissions),))
        if role is None:
            raise ValidationFailed({"role": [f"No role named {name}."]}, f"No role named {name}.")
        return role

    async def grant(self, name: str, codenames: Iterable[str]) -> Role:
        """Add permissions to the role named `name` (needs `role.change`)."""
        role = await self.get_by_name(name)
        current = [p.codename for p in role.permissions]
        return await self.update(role.id, {"permissions": sorted({*current, *codenames})})

    async def revoke(self, name: str, codenames: Iterable[str]) -> Role:
        """Remove permissions from the role named `name` (needs `role.change`)."""
        role = await self.get_by_name(name)
        removing = set(codenames)
        unknown = sorted(removing - {p.codename for p in await self._permissions(sorted(removing))})
        if unknown:
            raise ValidationFailed({"permissions": [f"Unknown permission: {', '.join(unknown)}."]})
        kept = [p.codename for p in role.permissions if p.codename not in removing]
        return await self.update(role.id, {"permissions": kept})

    async def list_with_permissions(self) -> list[Role]:
        self.require("view")
        return await self.repo.list(order_by=(Role.name,), options=(selectinload(Role.permissions),))

    async def _permissions(self, codenames: Iterable[str]) -> list[Permission]:
        wanted = sorted({c.strip() for c in codenames if c.strip()})
        if not wanted:
            return []
        found = await self.uow.repo(Permission).list(where=[Permission.codename.in_(wanted)])
        unknown = sorted(set(wanted) - {p.codename for p in found})
        if unknown:
            raise ValidationFailed({"permissions": [f"Unknown permission: {', '.join(unknown)}."]})
        return found

    def _check_can_grant(self, codenames: Iterable[str]) -> None:
        if self.actor.is_superuser:
            return
        for codename in codenames:
            if is_purge(codename):
                raise PermissionDenied(f"Only a superuser can grant {codename}.")
            if not self.actor.has_perm(codename):
                raise PermissionDenied(f"You cannot grant {codename}: you do not hold it yourself.")
