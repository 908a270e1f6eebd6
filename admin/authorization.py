"""SQLAdmin's AuthorizationBackend, answered from the actor's permission codenames.

The codenames were loaded with the session in the request's one
authentication query, so `has_permission` is a set lookup: SQLAdmin calls it
many times per page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqladmin import BaseView, ModelView
from sqladmin.authorization import AuthorizationBackend
from starlette.requests import Request

from admin.auth import current_actor
from backend.services import masking

if TYPE_CHECKING:
    from sqladmin.application import BaseAdmin

# SQLAdmin's action names -> our permission actions. Anything else is denied.
ACTION_PERMISSIONS = {
    "list": "view",
    "details": "view",
    "create": "add",
    "edit": "change",
    "delete": "delete",
    "export": "export",
    "import": "import",  # our upload, preview and confirm (admin/imports.py); SQLAdmin's import is off
}
CUSTOM_ACTION_PREFIX = "action:"
FORM_ACTIONS = ("create", "edit")


class CustodianAuthorization(AuthorizationBackend):
    """Maps (view, action) to a codename such as `product.change` and checks the actor holds it.

    Model views use `<table>.<action>`; a custom `@action` maps through the
    view's `action_permissions` (slug -> action); a custom page (`BaseView`)
    declares `required_permission`. Anything unmapped is denied.
    """

    def __init__(self) -> None:
        self._admin: BaseAdmin | None = None
        self._views: dict[str, BaseView | ModelView] = {}
        self._form_fields: dict[str, frozenset[str]] = {}

    def setup(self, admin: BaseAdmin) -> None:
        self._admin = admin

    def codename_for(self, identity: str, action: str) -> str | None:
        view = self._view(identity)
        if isinstance(view, ModelView):
            table = str(getattr(view.model, "__tablename__", ""))
            if action.startswith(CUSTOM_ACTION_PREFIX):
                mapped = getattr(view, "action_permissions", {}).get(
                    action.removeprefix(CUSTOM_ACTION_PREFIX)
                )
                return f"{table}.{mapped}" if mapped else None
            permission = ACTION_PERMISSIONS.get(action)
            return f"{table}.{permission}" if permission else None
        if view is not None and action == "list":
            required = getattr(view, "required_permission", None)
            return required if isinstance(required, str) else None
        return None

    def has_permission(self, request: Request, identity: str, action: str, obj: Any | None = None) -> bool:
        actor = current_actor(request)
        if actor.user_id is None:
            return False
        codename = self.codename_for(identity, str(action))
        if codename is None or not actor.has_perm(codename):
            return False
        if action in FORM_ACTIONS:
            # A form shows what it edits: one with a field the actor may not see is not theirs to open.
            table = codename.split(".", 1)[0]
            return all(masking.can_see(actor, table, name) for name in self._sensitive_form_fields(identity))
        return True

    def _sensitive_form_fields(self, identity: str) -> frozenset[str]:
        if identity not in self._form_fields:
            view = self._view(identity)
            found: frozenset[str] = frozenset()
            if isinstance(view, ModelView):
                sensitive = masking.sensitive_fields(masking.table_of(view.model))
                found = frozenset(name for name in view.get_form_columns() if name in sensitive)
            self._form_fields[identity] = found
        return self._form_fields[identity]

    def _view(self, identity: str) -> BaseView | ModelView | None:
        if identity not in self._views and self._admin is not None:
            for view in self._admin.views:
                self._views.setdefault(view.identity, view)
        return self._views.get(identity)
