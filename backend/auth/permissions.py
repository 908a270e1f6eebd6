"""Permission codenames, generated from the models, and the built-in roles' policies.

Every model the admin shows gets `<table>.view`, `.add`, `.change`, `.delete`,
`.restore`, `.purge`, `.export` and `.import`, plus the extra actions of its policy
(`Policy(permissions=("publish",))` -> `article.publish`; declaring `pii`
adds `view_pii`). A model opts out with `Policy(admin=False)`. The policy's
`group` says which built-in roles get what by default: "catalog", "business"
(the default) or "accounts".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.db.base import Base
from backend.db.policy import policy_of
from backend.models import mapped_models

MODEL_ACTIONS = ("view", "add", "change", "delete", "restore", "purge", "export", "import")
GLOBAL_PERMISSIONS = {
    "audit.view": "View the audit log",
    "trash.view": "View deleted records (the trash)",
}
ACCOUNTS = "accounts"
CATALOG = "catalog"
BUSINESS = "business"

BUILTIN_ROLES = {
    "manager": "Runs the back office: everything on business data, restore included, but no purge.",
    "editor": "Maintains the catalog: view, add, change and import its records; view other business data.",
    "viewer": "Reads business data; no changes, no export.",
    "auditor": "Reviews everything, deleted records and the audit log included; exports; no changes.",
}


@dataclass(frozen=True)
class PermissionSpec:
    codename: str
    description: str
    table: str | None
    action: str
    group: str


def admin_models() -> list[type[Base]]:
    """Mapped classes the admin shows, in table-name order."""
    return [model for model in mapped_models() if policy_of(model).admin]


def model_permission_specs(model: type[Base]) -> list[PermissionSpec]:
    table = str(model.__tablename__)
    policy = policy_of(model)
    label = table.replace("_", " ")
    actions = (*MODEL_ACTIONS, *(action for action in policy.permissions if action not in MODEL_ACTIONS))
    return [
        PermissionSpec(
            codename=f"{table}.{action}",
            description=f"Can {action.replace('_', ' ')} {label} records",
            table=table,
            action=action,
            group=policy.group,
        )
        for action in actions
    ]


def permission_specs() -> list[PermissionSpec]:
    """Every permission the code defines."""
    specs = [
        PermissionSpec(codename, description, None, codename.split(".")[1], "global")
        for codename, description in GLOBAL_PERMISSIONS.items()
    ]
    for model in admin_models():
        specs.extend(model_permission_specs(model))
    return specs


def default_roles_for(spec: PermissionSpec) -> set[str]:
    """Which built-in roles get `spec` when it first appears."""
    if spec.table is None:
        return {"auditor", "manager"} if spec.codename == "trash.view" else {"auditor"}
    roles = set()
    business = spec.group != ACCOUNTS
    viewing = spec.action == "view" or spec.action.startswith("view_")
    if business and spec.action != "purge":
        roles.add("manager")
    if business and spec.action == "view":
        roles.update({"editor", "viewer"})
    if spec.group == CATALOG and spec.action in {"add", "change", "import"}:
        roles.add("editor")
    if viewing or spec.action == "export":
        roles.add("auditor")
    return roles


def is_purge(codename: str) -> bool:
    return codename.endswith(".purge")


def unknown_codenames(codenames: Iterable[str]) -> list[str]:
    known = {spec.codename for spec in permission_specs()}
    return sorted(set(codenames) - known)
