"""Queries of user accounts beyond the generic ones: what their roles let them do."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import Select, select

from backend.models import Permission, User, role_permission, user_role
from backend.repositories.base import Repository

Columns = TypeVarTuple("Columns")


@dataclass(frozen=True)
class Grants:
    """An account and the permission codenames its roles give it."""

    user_id: int
    username: str
    is_superuser: bool
    permissions: frozenset[str]


def with_role_permissions(stmt: Select[*Columns]) -> Select[*Columns]:
    """`stmt`, which selects from `User`, outer-joined to the `Permission` rows its roles grant."""
    return (
        stmt.outerjoin(user_role, user_role.c.user_id == User.id)
        .outerjoin(role_permission, role_permission.c.role_id == user_role.c.role_id)
        .outerjoin(Permission, Permission.id == role_permission.c.permission_id)
    )


class UserRepository(Repository[User]):
    model = User

    async def grants(self, user_ids: Collection[int]) -> dict[int, Grants]:
        """The accounts (live or deleted) among `user_ids` with their permissions, in one query."""
        users = select(User.id, User.username, User.is_superuser, Permission.codename)
        stmt = with_role_permissions(users).where(User.id.in_(sorted(user_ids)))
        found: dict[int, tuple[str, bool]] = {}
        permissions: dict[int, set[str]] = {}
        for row in (await self.session.execute(stmt)).all():
            found[row.id] = (row.username, bool(row.is_superuser))
            if row.codename is not None:
                permissions.setdefault(row.id, set()).add(row.codename)
        return {
            user_id: Grants(user_id, username, is_superuser, frozenset(permissions.get(user_id, ())))
            for user_id, (username, is_superuser) in found.items()
        }
