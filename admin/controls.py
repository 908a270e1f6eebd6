"""Per-row controls: a details, edit or delete control, or a link to a record, shows only where it works."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from markupsafe import escape
from sqladmin import ModelView
from starlette.requests import Request

RowAction = Literal["details", "edit", "delete"]
# A row control -> (the view's flag that switches it off, the per-object hook the route asks).
_ROW_CHECKS: dict[str, tuple[str, str]] = {
    "details": ("can_view_details", "check_can_view_details"),
    "edit": ("can_edit", "check_can_edit"),
    "delete": ("can_delete", "check_can_delete"),
}


class RowControls(ModelView):
    """The per-row checks a model view's list, details page and delete route share."""

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        # Stock SQLAdmin lets a delete through when the row it loaded is None.
        return model is not None and await super().check_can_delete(request, model)

    async def allowed_rows(self, request: Request, rows: Sequence[Any], action: RowAction) -> list[bool]:
        """For each row, whether its `action` control (details, edit, delete) would be let through.

        The same test as the route: the view's flag, `is_accessible`, and the
        `check_can_*` hook. The hook is awaited once per row only when a
        subclass overrides it (per-object rules); otherwise its answer is the
        same for every row and is asked once. Override this to answer a whole
        page in one query when a per-row rule needs the database.
        """
        flag, hook = _ROW_CHECKS[action]
        if not rows or not getattr(self, flag) or not self.is_accessible(request):
            return [False] * len(rows)
        if action == "delete" and not self._can_delete_any(request):
            return [False] * len(rows)
        check = getattr(self, hook)
        if getattr(type(self), hook) is getattr(RowControls, hook):
            return [await check(request, rows[0]) is True] * len(rows)
        return [await check(request, row) is True for row in rows]

    def links_related(self, column: str) -> bool:
        """Whether related records in `column` may be links: not if `non_link_related_fields` names it."""
        return all(
            column != (item if isinstance(item, str) else item.key) for item in self.non_link_related_fields
        )

    async def detail_links(self, request: Request, objs: Sequence[Any]) -> dict[tuple[str, Any], str]:
        """Details URLs of the records (of any model) this user may open; a record not in it is shown as text.

        A record in the trash has no details page, and a model the user may
        not view has none for them either: neither is ever a link.
        """
        views = {view.identity: view for view in self._admin_ref.views if isinstance(view, RowControls)}
        grouped: dict[str, list[Any]] = {}
        for obj in objs:
            if getattr(obj, "deleted_at", None) is None:
                grouped.setdefault(self._identity_for_object(obj), []).append(obj)
        base = self._admin_ref.base_url.rstrip("/")
        links: dict[tuple[str, Any], str] = {}
        for identity, members in grouped.items():
            view = views.get(identity)
            if view is None:
                continue
            allowed_rows = await view.allowed_rows(request, members, "details")
            for obj, allowed in zip(members, allowed_rows, strict=True):
                if allowed:
                    links[(identity, obj.id)] = f"{base}/{identity}/details/{escape(str(obj.id))}"
        return links

    async def detail_url(self, request: Request, obj: Any) -> str | None:
        """The details URL of `obj` (any model) if it would open for this user, else None (for templates)."""
        links = await self.detail_links(request, [obj])
        return next(iter(links.values()), None)
