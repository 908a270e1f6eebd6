"""Pages for auditors: the trash (with restore and purge), the audit log, and each record's history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from sqladmin import BaseView, expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from admin.auth import current_actor
from admin.views.base import csv_line
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.services.history import AuditFilters, AuditLog, Trash
from backend.services.registry import soft_deletable_tables

AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "restore",
    "purge",
    "login",
    "login_failed",
    "login_refused",
    "logout",
)
PAGE_SIZE = 50


def _database(view: BaseView) -> Database:
    database: Database = view._admin_ref.database  # type: ignore[attr-defined]  # set by CustodianAdmin
    return database


def _status_for(exc: AppError) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def _parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"{name} must be a date like 2026-01-31.") from exc


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise HTTPException(status_code=400, detail=f"{name} must be a whole number.")
    return int(value)


class TrashView(BaseView):
    """Deleted records of every model, with restore and purge."""

    name = "Trash"
    icon = "fa-solid fa-trash-can"
    category = "Review"
    identity = "trash"
    required_permission: ClassVar[str] = "trash.view"

    @expose("/trash", methods=["GET"], identity="trash")
    async def trash(self, request: Request) -> Response:
        model = request.query_params.get("model") or None
        deleted_by = request.query_params.get("user") or None
        days = _int_param(request, "days")
        page = _int_param(request, "page") or 1
        status_code, message = 200, request.query_params.get("message")
        async with unit_of_work(_database(self), current_actor(request)) as uow:
            trash = Trash(uow)
            try:
                items, has_next = await trash.list(
                    model=model, deleted_by=deleted_by, days=days, page=page, page_size=PAGE_SIZE
                )
            except AppError as exc:
                raise HTTPException(status_code=_status_for(exc), detail=exc.message) from exc
            models = trash.models()
        actor = current_actor(request)
        context = {
            "items": items,
            "models": models,
            "filters": {"model": model or "", "user": deleted_by or "", "days": days or ""},
            "page": page,
            "has_next": has_next,
            "message": message,
            "can_restore": {table for table in models if actor.has_perm(f"{table}.restore")},
            "can_purge": {table for table in models if actor.has_perm(f"{table}.purge")},
        }
        return await self.templates.TemplateResponse(
            request, "custodian/trash.html", context, status_code=status_code
        )

    @expose("/trash/{model}/{pk}/restore", methods=["POST"], identity="trash")
    async def restore(self, request: Request) -> Response:
        return await self._act(request, "restore")

    @expose("/trash/{model}/{pk}/purge", methods=["POST"], identity="trash")
    async def purge(self, request: Request) -> Response:
        return await self._act(request, "purge")

    async def _act(self, request: Request, what: str) -> Response:
        table, pk = request.path_params["model"], request.path_params["pk"]
        if table not in soft_deletable_tables() or not pk.isdigit():
            raise HTTPException(status_code=404)
        try:
            async with unit_of_work(_database(self), current_actor(request)) as uow:
                trash = Trash(uow)
                await (trash.restore if what == "restore" else trash.purge)(table, int(pk))
                await uow.commit()
        except (Conflict, ValidationFailed) as exc:
            url = request.url_for("admin:view-trash").include_query_params(message=exc.message)
            return RedirectResponse(url, status_code=303)
        except AppError as exc:
            raise HTTPException(status_code=_status_for(exc), detail=exc.message) from exc
        done = "Restored" if what == "restore" else "Purged"
        url = request.url_for("admin:view-trash").include_query_params(message=f"{done} {table} {pk}.")
        return RedirectResponse(url, status_code=303)


class AuditLogView(BaseView):
    """Who changed what: searchable, paged without OFFSET, exportable as CSV."""

    name = "Audit log"
    icon = "fa-solid fa-clock-rotate-left"
    category = "Review"
    identity = "audit-log"
    required_permission: ClassVar[str] = "audit.view"

    def _filters(self, request: Request) -> AuditFilters:
        params = request.query_params
        since = _parse_day(params.get("since"), "since")
        until = _parse_day(params.get("until"), "until")
        action = params.get("action") or None
        if action and action not in AUDIT_ACTIONS:
            raise HTTPException(status_code=400, detail=f"Unknown action: {action}")
        return AuditFilters(
            actor=(params.get("actor") or "").strip()[:150] or None,
            model=(params.get("model") or "").strip()[:64] or None,
            object_id=(params.get("object_id") or "").strip()[:64] or None,
            action=action,
            since=datetime.combine(since, datetime.min.time(), UTC) if since else None,
            until=datetime.combine(until, datetime.min.time(), UTC) + timedelta(days=1) if until else None,
        )

    @expose("/audit-log", methods=["GET"], identity="audit-log")
    async def audit_log(self, request: Request) -> Response:
        filters = self._filters(request)
        before = _int_param(request, "before")
        async with unit_of_work(_database(self), current_actor(request)) as uow:
            entries = await AuditLog(uow).search(filters, before_id=before, limit=PAGE_SIZE + 1)
        has_next = len(entries) > PAGE_SIZE
        entries = entries[:PAGE_SIZE]
        query = {k: v for k, v in request.query_params.items() if k != "before"}
        context = {
            "entries": entries,
            "actions": AUDIT_ACTIONS,
            "models": soft_deletable_tables(),
            "filters": query,
            "next_before": entries[-1].id if has_next and entries else None,
            "export_query": "&".join(f"{k}={v}" for k, v in query.items()),
        }
        return await self.templates.TemplateResponse(request, "custodian/audit_log.html", context)

    @expose("/audit-log/export", methods=["GET"], identity="audit-log")
    async def export(self, request: Request) -> Response:
        filters = self._filters(request)
        database, actor = _database(self), current_actor(request)
        columns = [
            "id",
            "created_at",
            "actor_name",
            "action",
            "model",
            "object_id",
            "object_repr",
            "client_address",
            "changes",
        ]

        async def rows() -> AsyncIterator[str]:
            yield csv_line(columns)
            async with unit_of_work(database, actor) as uow:
                async for entry in AuditLog(uow).stream(filters):
                    values: list[Any] = [getattr(entry, column) for column in columns[:-1]]
                    yield csv_line([*values, json.dumps(entry.changes, ensure_ascii=False, sort_keys=True)])

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
        )


class HistoryView(BaseView):
    """One record's timeline with its diffs, also after it was deleted."""

    name = "History"
    identity = "history"

    def is_accessible(self, request: Request) -> bool:
        # The service decides per model: `audit.view`, or `<model>.view`.
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        return False

    @expose("/history/{model}/{pk}", methods=["GET"], identity="history")
    async def history(self, request: Request) -> Response:
        table, pk = request.path_params["model"], request.path_params["pk"]
        try:
            async with unit_of_work(_database(self), current_actor(request)) as uow:
                entries = await AuditLog(uow).history(table, pk, include_children=True)
        except AppError as exc:
            raise HTTPException(status_code=_status_for(exc), detail=exc.message) from exc
        own = [entry for entry in entries if entry.model == table]
        context = {"entries": entries, "model": table, "pk": pk, "label": own[-1].object_repr}
        return await self.templates.TemplateResponse(request, "custodian/history.html", context)
