"""Keeping the permission table in step with the models, and the built-in roles in place."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.orm import selectinload

from backend.auth.permissions import BUILTIN_ROLES, default_roles_for, permission_specs
from backend.db.uow import UnitOfWork
from backend.models import Permission, Role


@dataclass
class SyncReport:
    created_permissions: list[str] = field(default_factory=list)
    created_roles: list[str] = field(default_factory=list)


async def sync_permissions(uow: UnitOfWork) -> SyncReport:
    """Add missing permissions and built-in roles; never delete or take anything away.

    Idempotent. A permission seen for the first time is also granted to the
    built-in roles whose policy includes it, so a new model's permissions
    reach them; grants an administrator removed stay removed. Needs the
    system actor or a superuser.
    """
    uow.actor.require_superuser("synchronise permissions")
    permission_repo, role_repo = uow.repo(Permission), uow.repo(Role)
    report = SyncReport()

    existing = {p.codename: p for p in await permission_repo.list()}
    roles = {r.name: r for r in await role_repo.list(options=(selectinload(Role.permissions),))}
    new_roles = {name for name in BUILTIN_ROLES if name not in roles}
    for name in sorted(new_roles):
        role = Role(name=name, description=BUILTIN_ROLES[name], is_builtin=True, permissions=[])
        role_repo.stage(role)
        roles[name] = role
        report.created_roles.append(name)

    grants: dict[str, list[Permission]] = defaultdict(list)
    for spec in permission_specs():
        permission = existing.get(spec.codename)
        is_new = permission is None
        if permission is None:
            permission = Permission(codename=spec.codename, description=spec.description)
            permission_repo.stage(permission)
            existing[spec.codename] = permission
            report.created_permissions.append(spec.codename)
        for role_name in default_roles_for(spec):
            # New roles get their whole policy; existing ones only what is new.
            if is_new or role_name in new_roles:
                grants[role_name].append(permission)

    for role_name, permissions in grants.items():
        role = roles[role_name]
        held = {p.codename for p in role.permissions}
        role.permissions.extend(p for p in permissions if p.codename not in held)
    await uow.flush()
    return report
