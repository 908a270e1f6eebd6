"""Per-row controls: a details, edit or delete control, or a link to a record, shows only where it works."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqladmin import Admin, ModelView
from sqladmin.authorization import Action
from starlette.requests import Request

from admin.columns import ViewColumns, columns_of, name_of
from backend.db.session import Database

RowAction = Literal["details", "edit", "delete"]
# A row control -> (the view's flag that switches it off, the per-object hook the route asks).
_ROW_CHECKS: dict[str, tuple[str, str]] = {
    "details": ("can_view_details", "check_can_view_details"),
    "edit": ("can_edit", "check_can_edit"),
    "delete": ("can_delete", "check_can_delete"),
}
# Stands for the id in a URL made once per page (see `url_for_rows`); no real id contains it.
_PK_SLOT = "__pk__"


def admin_of(request: Request) -> Admin:
    """The `Admin` serving this request (CustodianAdmin puts itself on its app's state)."""
    admin: Admin = request.app.state.admin
    return admin


def database_of(request: Request) -> Database:
    """The `Database` of the admin serving this request, for work outside its unit of work (jobs)."""
    database = getattr(admin_of(request), "database", None)
    if not isinstance(database, Database):
        raise RuntimeError("The admin has no database (see admin/site.py).")
    return database


def url_for_rows(request: Request, name: str, **params: Any) -> Callable[[object], str]:
    """`request.url_for(name, pk=…, **params)` for many rows: the route is looked up once.

    `url_for` walks the routing table on every call; a page of 100 rows asks
    for several hundred URLs.
    """
    head, tail = url_parts_for_rows(request, name, **params)
    return lambda pk: f"{head}{pk}{tail}"


def url_parts_for_rows(request: Request, name: str, **params: Any) -> tuple[str, str]:
    """`request.url_for(name, pk=…, **params)` as the text before and after the id."""
    head, _, tail = str(request.url_for(name, pk=_PK_SLOT, **params)).partition(_PK_SLOT)
    return head, tail


class RowControls(ModelView):
    """The per-row checks a model view's list, details page and delete route share."""

    @property
    def columns(self) -> ViewColumns:
        """What this view declares about its columns (admin/columns.py), read once."""
        return columns_of(self)

    def can_delete_any(self, request: Request) -> bool:
        """Whether the bulk delete is offered: the view allows deletes and the user may delete here.

        The route still asks `check_can_delete` for every selected row.
        """
        return bool(self.can_delete) and self.has_permission(request, Action.DELETE)

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
        if action == "delete" and not self.can_delete_any(request):
            return [False] * len(rows)
        check = getattr(self, hook)
        if getattr(type(self), hook) is getattr(RowControls, hook):
            return [await check(request, rows[0]) is True] * len(rows)
        return [await check(request, row) is True for row in rows]

    def links_related(self, column: str) -> bool:
        """Whether related records in `column` may be links: not if `non_link_related_fields` names it."""
        return all(column != name_of(item) for item in self.non_link_related_fields)

    async def detail_links(self, request: Request, objs: Sequence[Any]) -> dict[tuple[type, Any], str]:
        """Details URLs of the records (of any model) this user may open, by (model, id).

        A record not in it is shown as text: a record in the trash has no
        details page, and a model the user may not view has none for them either.
        """
        views = {view.model: view for view in admin_of(request).views if isinstance(view, RowControls)}
        grouped: dict[type, list[Any]] = {}
        for obj in objs:
            if getattr(obj, "deleted_at", None) is None:
                grouped.setdefault(type(obj), []).append(obj)
        links: dict[tuple[type, Any], str] = {}
        for model, members in grouped.items():
            view = views.get(model)
            if view is None:
                continue
            allowed_rows = await view.allowed_rows(request, members, "details")
            url = url_for_rows(request, "admin:details", identity=view.identity)
            for obj, allowed in zip(members, allowed_rows, strict=True):
                if allowed:
                    links[(model, obj.id)] = url(obj.id)
        return links

    async def detail_url(self, request: Request, obj: Any) -> str | None:
        """The details URL of `obj` (any model) if it would open for this user, else None (for templates)."""
        links = await self.detail_links(request, [obj])
        return next(iter(links.values()), None)
