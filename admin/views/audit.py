"""Pages for auditors: the trash (with restore and purge), the audit log, and each record's history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from sqladmin import BaseView, expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from admin import outcomes
from admin.auth import current_actor
from admin.controls import RowControls, admin_of
from admin.i18n import gettext, lazy_gettext, model_name, translated
from admin.params import path_id, query_date, query_id, query_int, query_optional_int, query_uuid
from admin.requests import request_uow
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.exports import csv_line
from backend.models import User
from backend.services import account
from backend.services.auth import SESSION_EVENTS
from backend.services.history import (
    REVERT_ACTION,
    AuditFilters,
    AuditLog,
    AuditRecord,
    Related,
    Trash,
    TrashItem,
)
from backend.services.masking import table_of
from backend.services.registry import soft_deletable_tables
from backend.services.revert import Reverter
from backend.services.users import UserService

AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "restore",
    "purge",
    *SESSION_EVENTS,  # sign-in, sign-out and the second factor's events
    *account.EVENTS,  # one's own password and sessions
    "import",
    REVERT_ACTION,
)
AUDIT_FILTERS = ("actor", "model", "object_id", "action", "since", "until", "import_id")
PAGE_SIZE = 50


MAX_TRASH_DAYS = 36_600  # a hundred years: "deleted in the past N days"
MAX_TRASH_PAGE = 1_000  # pages are fetched by offset across every table


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, datetime.min.time(), UTC) if day else None


def _day_end(day: date | None) -> datetime | None:
    """The start of the day after `day`; None (no bound) for the last day there is."""
    if day is None or day == date.max:
        return None
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1)


async def _unmanageable_accounts(uow: UnitOfWork, items: Sequence[TrashItem]) -> set[tuple[str, int]]:
    """The (model, id) of the deleted accounts on the page the actor may neither restore nor purge.

    The account-authority rule refuses both for an account holding more than
    the actor: its buttons are not shown. Asked for the whole page at once.
    """
    user_ids = [item.object_id for item in items if item.model == User.__tablename__]
    if not user_ids or not (uow.actor.has_perm("user.restore") or uow.actor.has_perm("user.purge")):
        return set()
    problems = await UserService(uow).management_problems(user_ids, doing="restore the account of")
    return {(User.__tablename__, user_id) for user_id, problem in problems.items() if problem}


class TrashView(BaseView):
    """Deleted records of every model, with restore and purge."""

    name = lazy_gettext("Trash")
    icon = "fa-solid fa-trash-can"
    category = "Review"
    identity = "trash"
    required_permission: ClassVar[str] = "trash.view"

    @expose("/trash", methods=["GET"], identity="trash")
    async def trash(self, request: Request) -> Response:
        model = request.query_params.get("model") or None
        deleted_by = request.query_params.get("user") or None
        days = query_optional_int(request, "days", minimum=1, maximum=MAX_TRASH_DAYS)
        page = query_int(request, "page", default=1, minimum=1, maximum=MAX_TRASH_PAGE)
        uow = await request_uow(request)
        trash = Trash(uow)
        items, has_next = await trash.list(
            model=model, deleted_by=deleted_by, days=days, page=page, page_size=PAGE_SIZE
        )
        models = trash.models()
        refused = await _unmanageable_accounts(uow, items)
        actor = current_actor(request)
        context = {
            "items": items,
            "models": models,
            "filters": {"model": model or "", "user": deleted_by or "", "days": days or ""},
            "page": page,
            "has_next": has_next,
            "can_restore": {table for table in models if actor.has_perm(f"{table}.restore")},
            "can_purge": {table for table in models if actor.has_perm(f"{table}.purge")},
            "refused": refused,
        }
        return await self.templates.TemplateResponse(request, "custodian/trash.html", context)

    @expose("/trash/{model}/{pk}/restore", methods=["POST"], identity="trash")
    async def restore(self, request: Request) -> Response:
        return await self._act(request, "restore")

    @expose("/trash/{model}/{pk}/purge", methods=["POST"], identity="trash")
    async def purge(self, request: Request) -> Response:
        return await self._act(request, "purge")

    async def _act(self, request: Request, what: str) -> Response:
        table, pk = request.path_params["model"], path_id(request)
        if table not in soft_deletable_tables():
            raise HTTPException(status_code=404, detail=gettext("No such kind of record in the trash."))
        trash_page = request.url_for("admin:view-trash")
        try:
            uow = await request_uow(request)
            trash = Trash(uow)
            await (trash.restore if what == "restore" else trash.purge)(table, pk)
            await uow.commit()
        except (Conflict, ValidationFailed, NotFound) as exc:
            # The message comes back through the session, never the URL (a link could forge it).
            outcomes.refused(request, exc.message)
            return RedirectResponse(outcomes.back_to(request, trash_page), status_code=303)
        record = f"{model_name(table)} {pk}"
        if what == "restore":
            outcomes.succeeded(request, translated("%(record)s was restored.", record=record))
        else:
            outcomes.succeeded(
                request, translated("%(record)s was purged: it is gone for good.", record=record)
            )
        return RedirectResponse(outcomes.back_to(request, trash_page), status_code=303)


class AuditLogView(BaseView):
    """Who changed what: searchable, paged without OFFSET, exportable as CSV."""

    name = lazy_gettext("Audit log")
    icon = "fa-solid fa-clock-rotate-left"
    category = "Review"
    identity = "audit-log"
    required_permission: ClassVar[str] = "audit.view"

    def _filters(self, request: Request) -> AuditFilters:
        params = request.query_params
        since = query_date(request, "since")
        until = query_date(request, "until")
        action = params.get("action") or None
        if action and action not in AUDIT_ACTIONS:
            raise HTTPException(status_code=400, detail=gettext("Unknown action."))
        return AuditFilters(
            actor=(params.get("actor") or "").strip()[:150] or None,
            model=(params.get("model") or "").strip()[:64] or None,
            object_id=(params.get("object_id") or "").strip()[:64] or None,
            action=action,
            since=_day_start(since),
            until=_day_end(until),
            import_id=query_uuid(request, "import_id"),
        )

    # Each route has its own name. SQLAdmin links the menu to the identity of the view's
    # first exposed method in source order, so the page stays above the export.
    @expose("/audit-log", methods=["GET"], identity="audit-log")
    async def audit_log(self, request: Request) -> Response:
        filters = self._filters(request)
        before = query_id(request, "before")
        entries = await AuditLog(await request_uow(request)).search(
            filters, before_id=before, limit=PAGE_SIZE + 1
        )
        has_next = len(entries) > PAGE_SIZE
        entries = entries[:PAGE_SIZE]
        query = {k: v for k, v in request.query_params.items() if k != "before"}
        current = {
            name: request.query_params[name] for name in AUDIT_FILTERS if request.query_params.get(name)
        }
        context = {
            "entries": entries,
            "actions": AUDIT_ACTIONS,
            "models": soft_deletable_tables(),
            "filters": query,
            "next_before": entries[-1].id if has_next and entries else None,
            "export_url": request.url_for("admin:view-audit-log-export").include_query_params(**current),
        }
        return await self.templates.TemplateResponse(request, "custodian/audit_log.html", context)

    @expose("/audit-log/export", methods=["GET"], identity="audit-log-export")
    async def export(self, request: Request) -> Response:
        filters = self._filters(request)
        # Opened before the response starts: the rows are read from it while they are sent.
        audit_log = AuditLog(await request_uow(request))
        columns = [
            "id",
            "created_at",
            "actor_name",
            "action",
            "model",
            "object_id",
            "object_repr",
            "client_address",
            "import_id",
            "changes",
        ]

        async def rows() -> AsyncIterator[str]:
            yield csv_line(columns)
            async for entry in audit_log.stream(filters):
                values: list[Any] = [getattr(entry, column) for column in columns[:-1]]
                yield csv_line([*values, json.dumps(entry.changes, ensure_ascii=False, sort_keys=True)])

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
        )


class HistoryView(BaseView):
    """One record's timeline with its diffs, also after it was deleted."""

    name = lazy_gettext("History")
    identity = "history"

    def is_accessible(self, request: Request) -> bool:
        # The service decides per model: `audit.view`, or `<model>.view`.
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        return False

    @expose("/history/{model}/{pk}", methods=["GET"], identity="history")
    async def history(self, request: Request) -> Response:
        table, pk = request.path_params["model"], str(path_id(request))
        uow = await request_uow(request)
        entries = await AuditLog(uow).history(table, pk, include_children=True)
        own = [entry for entry in entries if entry.model == table and entry.action != REVERT_ACTION]
        # A record loaded in bulk (seed, fixtures) has no entries yet: its history is empty, not missing.
        label = own[-1].object_repr if own else f"{model_name(table, in_sentence=True)} {pk}"
        offered, revert_note = await Reverter(uow).offered(table, pk, entries)
        context = {
            "entries": entries,
            "model": table,
            "pk": pk,
            "label": label,
            "revertible": offered,
            "revert_note": revert_note,
            "links": await _detail_links(request, _related_of(entries)),
        }
        return await self.templates.TemplateResponse(request, "custodian/history.html", context)

    @expose("/history/{model}/{pk}/revert/{entry}", methods=["GET", "POST"], identity="history-revert")
    async def revert(self, request: Request) -> Response:
        """The diff a revert would make (GET) and the revert itself (POST, `<model>.change`)."""
        table, pk, entry_id = request.path_params["model"], str(path_id(request)), path_id(request, "entry")
        uow = await request_uow(request)
        reverter = Reverter(uow)
        if request.method == "POST":
            return await self._revert(request, reverter, table, pk, entry_id)
        plan = await reverter.plan(table, pk, entry_id)
        related = [r for change in plan.changes for r in (change.today_related, change.then_related) if r]
        context = {"plan": plan, "links": await _detail_links(request, related)}
        return await self.templates.TemplateResponse(request, "custodian/revert.html", context)

    async def _revert(
        self, request: Request, reverter: Reverter, table: str, pk: str, entry_id: int
    ) -> Response:
        version = (await request.form()).get("version")
        if not (isinstance(version, str) and version.isdigit() and len(version) < 12):
            raise HTTPException(
                status_code=400, detail=gettext("The form does not say which version it was opened.")
            )
        try:
            plan = await reverter.revert(table, pk, entry_id, expected_version=int(version))
            await reverter.uow.commit()
        except (Conflict, ValidationFailed) as exc:
            # Back to the confirmation page, which shows today's values beside the reason.
            outcomes.refused(request, exc.message)
            page = request.url_for("admin:view-history-revert", model=table, pk=pk, entry=entry_id)
            return RedirectResponse(str(page), status_code=303)
        record = f"{model_name(table)} “{plan.label}”"
        outcomes.succeeded(
            request,
            translated("%(record)s was reverted to the state of %(when)s.", record=record, when=plan.when),
        )
        history = request.url_for("admin:view-history", model=table, pk=pk)
        return RedirectResponse(str(history), status_code=303)


def _related_of(entries: Iterable[AuditRecord]) -> list[Related]:
    return [item for entry in entries for pair in entry.related.values() for item in pair if item is not None]


async def _detail_links(request: Request, related: Iterable[Related]) -> dict[tuple[str, int], str]:
    """(table, id) -> details URL of the related records this user may open (none for the trash)."""
    rows = [item.row for item in related if item.row is not None]
    view = next((view for view in admin_of(request).views if isinstance(view, RowControls)), None)
    if not rows or view is None:
        return {}
    links = await view.detail_links(request, rows)
    return {(table_of(model), int(pk)): url for (model, pk), url in links.items()}
