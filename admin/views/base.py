"""The bases every admin model view inherits from."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from markupsafe import Markup, escape
from sqladmin import ModelView
from sqladmin.helpers import object_identifier_values
from sqlalchemy import Select, false, func, literal, or_, select, tuple_
from sqlalchemy.orm import joinedload, selectinload
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from admin.auth import current_actor
from admin.keyset import COUNT_CAP, CappedCount, KeysetPagination, decode_cursor, encode_cursor
from backend.db.uow import unit_of_work
from backend.services.base import CrudService

if TYPE_CHECKING:
    from backend.db.session import Database


class CustodianModelView(ModelView):
    """A `ModelView` that answers 404, not 500, for an id that cannot exist.

    Stock SQLAdmin converts the id in the URL with the primary key's Python
    type and lets the `ValueError` escape (`/admin/user/details/abc` -> 500).
    """

    def parse_identifier(self, identifier: Any) -> Any:
        """The primary key value for an id from a URL; 404 when it cannot be one."""
        try:
            values = object_identifier_values(str(identifier), self.model)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise HTTPException(status_code=404, detail="No such record.") from exc
        if any(isinstance(value, int) and not -(2**63) <= value < 2**63 for value in values):
            raise HTTPException(status_code=404, detail="No such record.")  # beyond BIGINT: cannot exist
        return values[0] if len(values) == 1 else values

    def details_query(self, request: Request) -> Select[Any]:
        self.parse_identifier(request.path_params["pk"])
        return super().details_query(request)

    def form_edit_query(self, request: Request) -> Select[Any]:
        self.parse_identifier(request.path_params["pk"])
        return super().form_edit_query(request)

    async def get_object_for_delete(self, value: Any) -> Any:
        self.parse_identifier(value)
        return await super().get_object_for_delete(value)


class ServiceModelView(CustodianModelView):
    """A view whose writes go through a `CrudService`, as the signed-in actor.

    Reads (list, details, edit form) are SQLAdmin's own queries, shaped here:
    soft-deleted rows never appear. Creates, edits and deletes call the
    service, so validation, permissions and (soft) delete are the same as in
    the CLI. A delete is refused when the row is not visible to the user.
    """

    service: ClassVar[type[CrudService[Any, Any, Any]]]
    # `@action` slug -> the permission action it needs, e.g. {"set-status": "change"}.
    action_permissions: ClassVar[dict[str, str]] = {}
    can_import = False

    # Reads -------------------------------------------------------------------

    def _hide_deleted(self, stmt: Select[Any]) -> Select[Any]:
        deleted_at = getattr(self.model, "deleted_at", None)
        return stmt if deleted_at is None else stmt.where(deleted_at.is_(None))

    def list_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().list_query(request))

    def details_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().details_query(request))

    def form_edit_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().form_edit_query(request))

    async def get_object_for_delete(self, value: Any) -> Any:
        # Stock SQLAdmin loads the row to delete without the view's scoping.
        self.parse_identifier(value)
        rows = await self._run_query(self._hide_deleted(self._stmt_by_identifier(str(value))))
        return rows[0] if rows else None

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        # Stock SQLAdmin lets a delete through when the row it loaded is None.
        return model is not None and await super().check_can_delete(request, model)

    async def filtered_statement(self, request: Request, *, sort: bool = True) -> Select[Any]:
        """The list's query with the request's filters, search and (optionally) sort, unpaginated."""
        stmt = self.list_query(request)
        for list_filter in self.get_filters():
            value = request.query_params.get(list_filter.parameter_name)
            if value and not getattr(list_filter, "has_operator", False):
                # Operator filters are not offered by these views.
                stmt = await list_filter.get_filtered_query(stmt, value, self.model)  # type: ignore[call-arg]
        if sort:
            stmt = self.sort_query(stmt, request)
        search = request.query_params.get("search")
        if search:
            stmt = self.search_query(stmt=stmt, term=search)
        return stmt

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        """Substring search on the searchable columns, as plain `ILIKE` so a trigram index serves it.

        (Stock SQLAdmin casts each column first, which no index matches.)
        """
        pattern = "%" + term[:200].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = [getattr(self.model, name) for name in self._search_fields]
        # false() first: a view without searchable columns finds nothing rather than erroring.
        return stmt.where(or_(false(), *(column.ilike(pattern, escape="\\") for column in columns)))

    # Fast list --------------------------------------------------------------

    def keyset_sort(self, request: Request) -> tuple[str, bool]:
        """The (column, descending) the list is sorted by: only sortable, indexed columns."""
        sort_by = request.query_params.get("sortBy")
        if sort_by:
            if sort_by not in self._sort_fields:
                raise HTTPException(status_code=400, detail="Invalid sortBy parameter")
            return sort_by, request.query_params.get("sort", "asc") == "desc"
        default = self._get_default_sort()
        return (self._get_prop_name(default[0][0]), bool(default[0][1])) if default else ("id", True)

    async def keyset_list(self, request: Request) -> KeysetPagination:
        """One page of the list: filtered, searched, sorted, fetched by cursor, counted up to a cap.

        Three statements whatever the page size or depth: the capped count, the
        rows (many-to-one columns joined in), and one per to-many column.
        """
        page_size = self._page_size(request)
        sort_name, descending = self.keyset_sort(request)
        sort_column = getattr(self.model, sort_name)
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        python_type = _python_type(sort_column)
        base = await self.filtered_statement(request, sort=False)

        capped = base.with_only_columns(pk).order_by(None).limit(COUNT_CAP + 1).subquery()
        count = await self._run_arbitrary_query(select(func.count()).select_from(capped))
        total = int(count[0][0])
        counted = CappedCount(min(total, COUNT_CAP), capped=total > COUNT_CAP)

        after, before = request.query_params.get("after"), request.query_params.get("before")
        backwards = before is not None and after is None
        stmt = base
        key = tuple_(sort_column, pk)
        if after or before:
            cursor = decode_cursor(after or before or "", sort=sort_name, python_type=python_type)
            bound = tuple_(literal(cursor.value, sort_column.type), literal(cursor.id, pk.type))
            forward_is_greater = not descending
            go_greater = forward_is_greater != backwards
            stmt = stmt.where(key > bound if go_greater else key < bound)
        ascending = (not descending) != backwards
        ordering = (sort_column.asc(), pk.asc()) if ascending else (sort_column.desc(), pk.desc())
        stmt = stmt.order_by(*ordering).limit(page_size + 1)
        stmt = stmt.options(*self._list_loaders())
        rows = list(await self._run_query(stmt))
        more = len(rows) > page_size
        rows = rows[:page_size]
        if backwards:
            rows.reverse()

        table = self.table_rows(rows, request)
        position = _position(request.query_params.get("pos"))
        has_previous = (after is not None) or (backwards and more)
        has_next = (not backwards and more) or backwards
        pagination = KeysetPagination(
            rows=rows,
            page_size=page_size,
            count=counted,
            position=position if (after or before) else 0,
            url=request.url,
            next_cursor=encode_cursor(sort_name, getattr(rows[-1], sort_name), rows[-1].id)
            if has_next and rows
            else None,
            previous_cursor=encode_cursor(sort_name, getattr(rows[0], sort_name), rows[0].id)
            if has_previous and rows
            else None,
        )
        pagination.table = table
        return pagination

    def table_rows(self, rows: Sequence[Any], request: Request) -> Markup:
        """The list's `<tbody>` rows as HTML, built in one pass in Python.

        SQLAdmin's template awaits each cell, permission check and URL (and
        Jinja's async rendering yields every fragment through five levels of
        template inheritance). The permissions here are per model, so they are
        asked once; every value is escaped with markupsafe.
        """
        base = f"{self._admin_ref.base_url.rstrip('/')}/{self.identity}"
        query = f"?{request.url.query}" if request.url.query else ""
        can_view = self.can_view_details and self.has_permission(request, "details")
        can_edit = self.can_edit and self.has_permission(request, "edit")
        can_delete = self._can_delete_any(request)
        name = escape(self.name)
        parts: list[str] = []
        for row in rows:
            pk = escape(str(row.id))
            parts.append(
                f'<tr><td><input type="hidden" value="{pk}"><input class="form-check-input m-0 align-middle '
                f'select-box" type="checkbox" aria-label="Select item"></td><td class="text-end">'
            )
            if can_view:
                parts.append(f'<a href="{base}/details/{pk}" aria-label="View" title="View">{_ICON_VIEW}</a>')
            if can_edit:
                edit_url = f"{base}/edit/{pk}{escape(query)}"
                parts.append(f'<a href="{edit_url}" aria-label="Edit" title="Edit">{_ICON_EDIT}</a>')
            if can_delete:
                parts.append(
                    f'<a href="#" data-name="{name}" data-pk="{pk}" data-url="{base}/delete?pks={pk}" '
                    'data-bs-toggle="modal" data-bs-target="#modal-delete" '
                    f'aria-label="Delete">{_ICON_DELETE}</a>'
                )
            parts.append("</td>")
            for column in self._list_prop_names:
                parts.append(f"<td>{self._cell_html(row, column, request)}</td>")
            parts.append("</tr>")
        return Markup("".join(parts))  # noqa: S704 - every value above is escaped

    def _cell_html(self, row: Any, column: str, request: Request) -> str:
        value = getattr(row, column, None)
        formatter = self._list_formatters.get(column)
        if formatter is not None:
            accepts_request = self._list_formatter_accepts_request.get(column, False)
            return str(escape(self._call_formatter(formatter, row, column, request, accepts_request)))
        if column in self._relation_names:
            related = value if isinstance(value, list | tuple) else ([value] if value is not None else [])
            base = self._admin_ref.base_url.rstrip("/")
            return "<br>".join(
                f'<a href="{base}/{self._identity_for_object(item)}/details/{escape(str(item.id))}">'
                f"{escape(str(item))}</a>"
                for item in related
            )
        return str(escape(self._default_formatter(value.value if isinstance(value, Enum) else value)))

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get("pageSize")
        if not raw:
            return int(self.page_size)
        if not raw.isdigit() or int(raw) < 1:
            raise HTTPException(status_code=400, detail="Invalid page or pageSize parameter")
        return min(int(raw), max(self.page_size_options))

    def _list_loaders(self) -> list[Any]:
        """Many-to-one columns joined into the row query; collections loaded in one more query each."""
        loaders = []
        for relation in self._list_relations:
            prop = relation.property
            loaders.append(selectinload(relation) if prop.uselist else joinedload(relation))
        return loaders

    # Writes -------------------------------------------------------------------

    # Export -------------------------------------------------------------------

    def export_value(self, obj: Any, column: str, request: Request) -> Any:
        """One cell of the export; override to mask or reformat a column."""
        value = getattr(obj, column, None)
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        if isinstance(value, Enum):
            return value.value
        return value

    async def export_csv(self, request: Request) -> StreamingResponse:
        """The current filtered list as CSV, streamed: memory stays flat for any row count."""
        columns = [name for name in self._export_prop_names if name not in _secret_fields(self.model)]
        stmt = await self.filtered_statement(request)
        relations = [name for name in columns if name in self._relation_names]
        stmt = stmt.options(*(selectinload(getattr(self.model, name)) for name in relations))

        async def rows() -> AsyncIterator[str]:
            yield csv_line(columns)
            async with self.session_maker() as session:
                result = await session.stream_scalars(stmt.execution_options(yield_per=500))
                async for obj in result:
                    yield csv_line(self.export_value(obj, column, request) for column in columns)

        filename = f"{self.identity}.csv"
        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    # Writes -------------------------------------------------------------------

    def database(self) -> Database:
        database: Database = self._admin_ref.database  # type: ignore[attr-defined]  # set by CustodianAdmin
        return database

    def create_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's create input. Override to rename or convert fields."""
        return dict(data)

    def update_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's update input."""
        return dict(data)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            obj = await self.service(uow).create(self.create_input(data))
            await uow.commit()
        return obj

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        expected = data.pop("_version", None)
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            obj = await self.service(uow).update(
                self.parse_identifier(pk), self.update_input(data), expected_version=expected
            )
            await uow.commit()
        return obj

    async def delete_model(self, request: Request, pk: Any) -> None:
        await self.delete_models(request, [pk])

    async def delete_models(self, request: Request, pks: list[Any]) -> None:
        """Delete all of `pks` in one transaction: all of them, or none."""
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            service = self.service(uow)
            for pk in pks:
                await service.delete(self.parse_identifier(pk))
            await uow.commit()


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Neutralise text a spreadsheet would run as a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if value is None else spreadsheet_safe(value) for value in values])
    return buffer.getvalue()


def _secret_fields(model: Any) -> Sequence[str]:
    return tuple(getattr(model, "__secret_fields__", ()))


_ICON_VIEW = '<span class="me-1"><i class="fa-solid fa-eye"></i></span>'
_ICON_EDIT = '<span class="me-1"><i class="fa-solid fa-pen-to-square"></i></span>'
_ICON_DELETE = '<span title="Delete"><span class="me-1"><i class="fa-solid fa-trash"></i></span></span>'


def _python_type(column: Any) -> type:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    if issubclass(python_type, Enum):
        return str
    return python_type if python_type in (int, Decimal, datetime, str) else str


def _position(raw: str | None) -> int:
    if raw and raw.isdigit() and len(raw) < 12:
        return int(raw)
    return 0
