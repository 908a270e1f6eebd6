"""Who is doing the work: a signed-in user, or the system (the CLI, seeding)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from backend.errors import PermissionDenied


@dataclass(frozen=True)
class Actor:
    """The identity a service checks permissions against and records in the audit trail."""

    user_id: int | None
    username: str
    is_superuser: bool = False
    permissions: frozenset[str] = field(default_factory=frozenset)
    client_address: str | None = None
    kind: Literal["user", "system"] = "user"

    @classmethod
    def system(cls, os_user: str) -> Actor:
        """The CLI's actor: every permission, recorded as `system:<os user>`."""
        return cls(user_id=None, username=f"system:{os_user}", is_superuser=True, kind="system")

    def has_perm(self, codename: str) -> bool:
        return self.is_superuser or codename in self.permissions

    def require(self, codename: str) -> None:
        """Raise `PermissionDenied` unless the actor holds `codename`."""
        if not self.has_perm(codename):
            raise PermissionDenied(f"You do not have permission to do this ({codename}).")

    def require_superuser(self, what: str) -> None:
        if not self.is_superuser:
            raise PermissionDenied(f"Only a superuser can {what}.")
