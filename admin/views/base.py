"""The bases every admin model view inherits from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode

from markupsafe import Markup, escape
from sqladmin import ModelView
from sqlalchemy import Select, false, func, literal, or_, select, tuple_
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, joinedload, selectinload
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from wtforms import Form

from admin.auth import current_actor
from admin.filters import ALL
from admin.forms import VERSION_FIELD, CustodianFormConverter, missing_version, untouched_fields
from admin.keyset import (
    COUNT_CAP,
    POSITION_PARAMS,
    CappedCount,
    KeysetPagination,
    ListChanged,
    decode_cursor,
    encode_cursor,
    list_state,
)
from admin.labels import default_labels
from admin.params import id_or_404, query_int
from admin.relations import masked_ajax_loaders, relation_labels
from backend.db.uow import unit_of_work
from backend.exports import csv_line
from backend.services import masking
from backend.services.base import CrudService
from backend.values import BIGINT_MAX

if TYPE_CHECKING:
    from backend.db.session import Database


class CustodianModelView(ModelView):
    """A `ModelView` that answers 404, not 500, for an id that cannot exist.

    Stock SQLAdmin converts the id in the URL with the primary key's Python
    type and lets the `ValueError` escape (`/admin/user/details/abc` -> 500).
    Every column gets a readable label ("Placed at") unless the view names one.
    """

    def __init__(self) -> None:
        # Before SQLAdmin's __init__, which builds the list, details and form labels from `column_labels`.
        mapper: Any = sa_inspect(self.model)
        names = [str(attribute.key) for attribute in mapper.attrs]
        type(self).column_labels = default_labels(names, type(self).column_labels)
        super().__init__()
        # Related records are labelled through the masking rule (admin/relations.py). SQLAdmin builds
        # its ajax loaders itself, with no hook to choose their class: its private dict is replaced.
        self._form_ajax_refs = masked_ajax_loaders(self)

    async def get_list_value(self, obj: Any, prop: str, request: Request | None = None) -> tuple[Any, Any]:
        value, shown = await super().get_list_value(obj, prop, request)
        if prop in self._relation_names and prop not in self._list_formatters:
            shown = relation_labels(request, value)
        return value, shown

    async def get_detail_value(self, obj: Any, prop: str, request: Request | None = None) -> tuple[Any, Any]:
        """SQLAdmin's (value, shown value), a related record shown by the label its actor may see."""
        value, shown = await super().get_detail_value(obj, prop, request)
        if prop in self._relation_names and prop not in self._detail_formatters:
            shown = relation_labels(request, value)
        return value, shown

    def parse_identifier(self, identifier: Any) -> Any:
        """The primary key value for an id from a URL; 404 when it cannot be one.

        Every model here has one BIGINT id (IdMixin), parsed by `backend.values`.
        """
        return id_or_404(str(identifier))

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
    export_types: ClassVar[list[str]] = ["csv"]  # the formats `CustodianAdmin.export` writes
    # Fields that show the record's current value (enums, nullable booleans, text).
    form_converter = CustodianFormConverter

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
            # The list's own order, id breaking ties, so an export lists rows as the pages do.
            sort_name, descending = self.keyset_sort(request)
            sort_column, pk = getattr(self.model, sort_name), self.model.id  # type: ignore[attr-defined]
            stmt = stmt.order_by(*((sort_column.desc(), pk.desc()) if descending else (sort_column, pk)))
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
                raise HTTPException(status_code=400, detail="The list cannot be sorted by that column.")
            direction = request.query_params.get("sort") or "asc"
            if direction not in ("asc", "desc"):
                raise HTTPException(status_code=400, detail="sort must be asc or desc.")
            return sort_by, direction == "desc"
        default = self._get_default_sort()
        return (self._get_prop_name(default[0][0]), bool(default[0][1])) if default else ("id", True)

    def first_page_url(self, request: Request) -> URL:
        """This list as the request shows it (sort, search, filters, page size), from its first page."""
        return request.url.remove_query_params(list(POSITION_PARAMS))

    def export_url(self, request: Request) -> URL:
        """The CSV export of exactly the rows the list shows: same search, filters and sort."""
        url = URL(str(request.url_for("admin:export", identity=self.identity, export_type="csv")))
        kept = [
            (k, v) for k, v in request.query_params.multi_items() if k not in (*POSITION_PARAMS, "pageSize")
        ]
        return url.replace(query=urlencode(kept))

    def list_state(self, request: Request) -> str:
        """What the list shows (sort, search, filters, page size), as a cursor remembers it."""
        filters = tuple(
            "" if value == ALL else value
            for value in (request.query_params.get(f.parameter_name, "") for f in self.get_filters())
        )
        search = request.query_params.get("search", "")
        return list_state(self.identity, self.keyset_sort(request), search, filters, self._page_size(request))

    async def keyset_list(self, request: Request) -> KeysetPagination:
        """One page of the list: filtered, searched, sorted, fetched by cursor, counted up to a cap.

        Three statements whatever the page size or depth: the capped count, the
        rows (many-to-one columns joined in), and one per to-many column.
        Raises `ListChanged` when the cursor was made for another sort, search,
        filter or page size: such a list starts at its first page.
        """
        page_size = self._page_size(request)
        sort_name, descending = self.keyset_sort(request)
        sort_column = getattr(self.model, sort_name)
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        position = query_int(request, "pos", default=0, minimum=0, maximum=BIGINT_MAX)
        after = request.query_params.get("after") or None
        before = None if after else request.query_params.get("before") or None
        cursor = (
            decode_cursor(after or before or "", column_type=sort_column.type) if after or before else None
        )
        state = self.list_state(request)
        if cursor is not None and cursor.state != state:
            raise ListChanged(self.first_page_url(request))
        base = await self.filtered_statement(request, sort=False)

        capped = base.with_only_columns(pk).order_by(None).limit(COUNT_CAP + 1).subquery()
        count = await self._run_arbitrary_query(select(func.count()).select_from(capped))
        total = int(count[0][0])
        counted = CappedCount(min(total, COUNT_CAP), capped=total > COUNT_CAP)

        backwards = before is not None
        stmt = base
        key = tuple_(sort_column, pk)
        if cursor is not None:
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

        table = await self.table_rows(rows, request)
        has_previous = (after is not None) or (backwards and more)
        has_next = (not backwards and more) or backwards
        pagination = KeysetPagination(
            rows=rows,
            page_size=page_size,
            count=counted,
            # The position only labels the page ("Showing 11 to 20"); pages start at multiples of the size.
            position=position - position % page_size if cursor is not None else 0,
            url=request.url,
            next_cursor=encode_cursor(state, getattr(rows[-1], sort_name), rows[-1].id)
            if has_next and rows
            else None,
            previous_cursor=encode_cursor(state, getattr(rows[0], sort_name), rows[0].id)
            if has_previous and rows
            else None,
        )
        pagination.table = table
        return pagination

    async def table_rows(self, rows: Sequence[Any], request: Request) -> Markup:
        """The list's `<tbody>` rows as HTML, built in one pass in Python.

        SQLAdmin's template awaits each cell, permission check and URL (and
        Jinja's async rendering yields every fragment through five levels of
        template inheritance). A control is shown only where it works: the
        per-row checks are asked through `allowed_rows`, and a related record
        is a link only when its details page would open. Every value is
        escaped with markupsafe.
        """
        base = f"{self._admin_ref.base_url.rstrip('/')}/{self.identity}"
        query = f"?{request.url.query}" if request.url.query else ""
        can_view = await self.allowed_rows(request, rows, "details")
        can_edit = await self.allowed_rows(request, rows, "edit")
        can_delete = await self.allowed_rows(request, rows, "delete")
        links = await self._related_links(request, rows)
        name = escape(self.name)
        parts: list[str] = []
        for index, row in enumerate(rows):
            pk = escape(str(row.id))
            parts.append(
                f'<tr><td><input type="hidden" value="{pk}"><input class="form-check-input m-0 align-middle '
                f'select-box" type="checkbox" aria-label="Select item"></td><td class="text-end">'
            )
            if can_view[index]:
                parts.append(f'<a href="{base}/details/{pk}" aria-label="View" title="View">{_ICON_VIEW}</a>')
            if can_edit[index]:
                edit_url = f"{base}/edit/{pk}{escape(query)}"
                parts.append(f'<a href="{edit_url}" aria-label="Edit" title="Edit">{_ICON_EDIT}</a>')
            if can_delete[index]:
                parts.append(
                    f'<a href="#" data-name="{name}" data-pk="{pk}" data-url="{base}/delete?pks={pk}" '
                    'data-bs-toggle="modal" data-bs-target="#modal-delete" '
                    f'aria-label="Delete">{_ICON_DELETE}</a>'
                )
            parts.append("</td>")
            for column in self._list_prop_names:
                parts.append(f"<td>{self._cell_html(row, column, request, links)}</td>")
            parts.append("</tr>")
        return Markup("".join(parts))  # noqa: S704 - every value above is escaped

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
        if getattr(type(self), hook) is getattr(ServiceModelView, hook):
            return [await check(request, rows[0]) is True] * len(rows)
        return [await check(request, row) is True for row in rows]

    async def detail_links(self, request: Request, objs: Sequence[Any]) -> dict[tuple[str, Any], str]:
        """Details URLs of the records (of any model) this user may open; a record not in it is shown as text.

        A record in the trash has no details page, and a model the user may
        not view has none for them either: neither is ever a link.
        """
        views = {view.identity: view for view in self._admin_ref.views if isinstance(view, ServiceModelView)}
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

    async def _related_links(self, request: Request, rows: Sequence[Any]) -> dict[tuple[str, Any], str]:
        related: list[Any] = []
        for row in rows:
            for column in self._list_relation_names:
                related.extend(_as_list(getattr(row, column, None)))
        return await self.detail_links(request, related)

    def _cell_html(
        self, row: Any, column: str, request: Request, links: Mapping[tuple[str, Any], str]
    ) -> str:
        value = getattr(row, column, None)
        formatter = self._list_formatters.get(column)
        if formatter is not None:
            accepts_request = self._list_formatter_accepts_request.get(column, False)
            return str(escape(self._call_formatter(formatter, row, column, request, accepts_request)))
        if column in self._relation_names:
            cells = []
            actor = current_actor(request)
            for item in _as_list(value):
                url = links.get((self._identity_for_object(item), item.id))
                text = escape(masking.label_for(actor, item))
                cells.append(f'<a href="{url}">{text}</a>' if url else str(text))
            return "<br>".join(cells)
        return str(escape(self._default_formatter(value.value if isinstance(value, Enum) else value)))

    def _page_size(self, request: Request) -> int:
        """`?pageSize=`, at most the largest size offered."""
        size = query_int(request, "pageSize", default=int(self.page_size), minimum=1, maximum=BIGINT_MAX)
        return min(size, max(self.page_size_options))

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
        """One cell of the export, masked as the signed-in actor must see it; override to reformat."""
        value = getattr(obj, column, None)
        if column in self._relation_names:
            related = value if isinstance(value, list | tuple) else [] if value is None else [value]
            return ", ".join(masking.label_for(current_actor(request), item) for item in related)
        if isinstance(value, Enum):
            value = value.value
        return masking.shown(current_actor(request), masking.table_of(self.model), column, value)

    async def export_csv(self, request: Request) -> StreamingResponse:
        """The current filtered list as CSV, streamed: memory stays flat for any row count."""
        secrets = masking.secret_fields(self.model)
        columns = [name for name in self._export_prop_names if name not in secrets]
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
        """Form data -> the service's update input.

        Text fields the user left as shown are not in `data` (see `edited_values`):
        leave them out of the input too, so they keep their stored values.
        """
        return dict(data)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            obj = await self.service(uow).create(self.create_input(data))
            await uow.commit()
        return obj

    async def edited_values(self, form: Form, obj: Any) -> dict[str, Any]:
        """The edit form's data without the text fields sent back as they were shown for `obj`.

        `update_input` gets only what the user may have changed; a field it
        does not get keeps its stored value.
        """
        shown = type(form)(data=await self.get_form_data_for_edit(obj))
        untouched = untouched_fields(form, shown)
        return {name: value for name, value in form.data.items() if name not in untouched}

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Save an edit through the service, from the version the form was opened at (`data["_version"]`).

        Raises `Conflict` when that version is missing or is not the record's
        current one; the service's UPDATE matches on it, so of two saves from
        one version only the first is written.
        """
        expected = data.pop(VERSION_FIELD, None)
        if expected is None and hasattr(self.model, "version"):
            raise missing_version(self.name.lower())
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


Formatters = dict[
    str | InstrumentedAttribute[Any], Callable[[Any, Any], Any] | Callable[[Any, Any, Request], Any]
]


def masked_formatters(model: Any) -> Formatters:
    """List or details formatters that show each personal or secret field of `model`
    as the signed-in actor may see it (backend.services.masking)."""
    table = masking.table_of(model)

    def shown(obj: Any, attribute: Any, request: Request) -> Any:
        name = attribute if isinstance(attribute, str) else attribute.key
        return masking.shown(current_actor(request), table, name, getattr(obj, name, None))

    return {field: shown for field in sorted(masking.sensitive_fields(table))}


def _as_list(value: Any) -> list[Any]:
    """A relationship's value as a list: to-many as it is, to-one as one item or none."""
    if isinstance(value, list | tuple):
        return list(value)
    return [] if value is None else [value]


RowAction = Literal["details", "edit", "delete"]
# A row control -> (the view's flag that switches it off, the per-object hook the route asks).
_ROW_CHECKS: dict[str, tuple[str, str]] = {
    "details": ("can_view_details", "check_can_view_details"),
    "edit": ("can_edit", "check_can_edit"),
    "delete": ("can_delete", "check_can_delete"),
}

_ICON_VIEW = '<span class="me-1"><i class="fa-solid fa-eye"></i></span>'
_ICON_EDIT = '<span class="me-1"><i class="fa-solid fa-pen-to-square"></i></span>'
_ICON_DELETE = '<span title="Delete"><span class="me-1"><i class="fa-solid fa-trash"></i></span></span>'
