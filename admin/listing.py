"""A model view's list page: filtered, searched, sorted, paged by keyset, its table rows built in Python.

`KeysetListing.list` is SQLAdmin's public `ModelView.list`, so SQLAdmin's own
list endpoint serves the page: it checks access, calls `list`, and compares
the page number it returns with `?page=` (here the number of the page a
cursor points at, a label only). A cursor made for another list raises
`ListChanged`, which admin/errors.py answers with a redirect to page 1.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from markupsafe import Markup, escape
from sqladmin import expose
from sqladmin.filters import get_column_obj
from sqlalchemy import Row, Select, false, func, literal, or_, select, tuple_
from sqlalchemy.orm import joinedload, selectinload
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin.auth import current_actor
from admin.columns import CellFormatter, html_text, related_items
from admin.controls import RowControls, url_parts_for_rows
from admin.filters import ChoiceFilter, DateRangeFilter, LiveForeignKeyFilter, filter_value, parameter_names
from admin.i18n import gettext, translated
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
from admin.params import query_int
from admin.relations import MaskedAjaxLoader
from admin.requests import request_uow
from backend.db.counting import count_up_to, estimate_rows
from backend.services import masking
from backend.values import BIGINT_MAX

# request.state: the filters' lookups this request has run (`filter_lookups`).
_LOOKUPS = "custodian_filter_lookups"
FACET_CAP = 1_000  # a facet shows "1,000+" beyond: a count never scans more of a huge table
SEARCH_COUNT_CAP = 1_000  # beyond, a search shows PostgreSQL's estimate, or "1,000+" (see `_count`)
_ICON_VIEW = '<span class="me-1"><i class="fa-solid fa-eye"></i></span>'
_ICON_EDIT = '<span class="me-1"><i class="fa-solid fa-pen-to-square"></i></span>'
_ICON_DELETE = '<span class="me-1"><i class="fa-solid fa-trash"></i></span>'


@dataclass(frozen=True)
class Chip:
    """An active filter (or the search term) above the list, and the list without it."""

    title: str
    label: str
    remove_url: URL


class KeysetListing(RowControls):
    """The list page's query, its keyset pages and its `<tbody>`."""

    # Counts beside a choice filter's values (`facet_counts`); declared per view.
    show_facets: ClassVar[bool] = False

    async def filtered_statement(
        self, request: Request, *, sort: bool = True, without: str | None = None
    ) -> Select[Any]:
        """The list's query with the request's filters (but the one named `without`), search and
        (optionally) sort, unpaginated."""
        stmt = self.list_query(request)
        for list_filter in self.get_filters():
            if list_filter.parameter_name == without:
                continue
            value = filter_value(list_filter, request.query_params)
            if value is not None and not getattr(list_filter, "has_operator", False):
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
        columns = [getattr(self.model, name) for name in self.columns.searchable]
        # false() first: a view without searchable columns finds nothing rather than erroring.
        return stmt.where(or_(false(), *(column.ilike(pattern, escape="\\") for column in columns)))

    def keyset_sort(self, request: Request) -> tuple[str, bool]:
        """The (column, descending) the list is sorted by: only sortable, indexed columns."""
        sort_by = request.query_params.get("sortBy")
        if sort_by:
            if sort_by not in self.columns.sortable:
                detail = gettext("The list cannot be sorted by that column.")
                raise HTTPException(status_code=400, detail=detail)
            direction = request.query_params.get("sort") or "asc"
            if direction not in ("asc", "desc"):
                raise HTTPException(status_code=400, detail=gettext("sort must be asc or desc."))
            return sort_by, direction == "desc"
        return self.columns.default_sort

    def first_page_url(self, request: Request) -> URL:
        """This list as the request shows it (sort, search, filters, page size), from its first page."""
        return request.url.remove_query_params(list(POSITION_PARAMS))

    def list_state(self, request: Request) -> str:
        """What the list shows (sort, search, filters, page size), as a cursor remembers it."""
        filters = tuple(filter_value(f, request.query_params) or "" for f in self.get_filters())
        search = request.query_params.get("search", "")
        return list_state(self.identity, self.keyset_sort(request), search, filters, self._page_size(request))

    async def active_filters(self, request: Request) -> builtins.list[Chip]:
        """A chip per chosen filter and for the search term, each linking to this list without it.

        The lookups a chip's label comes from are the ones the sidebar shows
        (`filter_lookups`): no statement more than the page already runs.
        """
        first_page = self.first_page_url(request)
        chips: builtins.list[Chip] = []
        for list_filter in self.get_filters():
            value = filter_value(list_filter, request.query_params)
            if value is None or getattr(list_filter, "has_operator", False):
                continue
            if isinstance(list_filter, DateRangeFilter):
                label = list_filter.label(value)
            else:
                labels = dict(await self.filter_lookups(request, list_filter))
                label = labels.get(value, value)
            remove = first_page.remove_query_params(list(parameter_names(list_filter)))
            chips.append(Chip(str(list_filter.title), str(label), remove))
        search = request.query_params.get("search", "")
        if search:
            chips.append(Chip("Search", search, first_page.remove_query_params("search")))
        return chips

    def search_placeholder(self) -> str:
        """The searched columns' labels, in the request's language (SQLAdmin's shows them as declared)."""
        return ", ".join(self.columns.label(name) for name in self.columns.searchable)

    def clear_filters_url(self, request: Request) -> URL:
        """This list with no filter and no search (sort and page size kept), from its first page."""
        names = [name for f in self.get_filters() for name in parameter_names(f)]
        return self.first_page_url(request).remove_query_params([*names, "search"])

    async def filter_lookups(self, request: Request, list_filter: Any) -> builtins.list[tuple[str, str]]:
        """`list_filter.lookups`, run once per request (the chips and the sidebar both show them)."""
        cache: dict[str, builtins.list[tuple[str, str]]] | None = getattr(request.state, _LOOKUPS, None)
        if cache is None:
            cache = {}
            setattr(request.state, _LOOKUPS, cache)
        if list_filter.parameter_name not in cache:
            cache[list_filter.parameter_name] = await list_filter.lookups(
                request, self.model, self.rows_of(request)
            )
        return cache[list_filter.parameter_name]

    async def facet_counts(self, request: Request, list_filter: Any) -> dict[str, CappedCount]:
        """How many rows each of a choice filter's values would list, counted up to `FACET_CAP`.

        Only when the view declares `show_facets` (off by default: each count
        is a scan a huge table pays on every page view). The counts are of the
        list as it is filtered and searched now, this filter left out, as
        Django's facets; all values are counted in one statement.
        """
        if not self.show_facets or not isinstance(list_filter, ChoiceFilter):
            return {}
        base = await self.filtered_statement(request, sort=False, without=list_filter.parameter_name)
        column = get_column_obj(list_filter.column, self.model)
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        keys = [str(key) for key, _label in list_filter.values]
        counts = [
            select(func.count())
            .select_from(
                base.with_only_columns(pk).where(column == key).order_by(None).limit(FACET_CAP + 1).subquery()
            )
            .scalar_subquery()
            for key in keys
        ]
        session = (await request_uow(request)).session
        row = (await session.execute(select(*counts))).one()
        return {
            key: CappedCount(min(int(n), FACET_CAP), capped=int(n) > FACET_CAP)
            for key, n in zip(keys, row, strict=True)
        }

    def filter_lookup_url(self, request: Request) -> URL:
        return URL(str(request.url_for(f"admin:view-{self.identity}-filter_lookup")))

    @expose("/filter/lookup", methods=["GET"])
    async def filter_lookup(self, request: Request) -> Response:
        """The live related rows matching `?term=` for the relationship filter `?filter=`, as JSON.

        The forms' lookup (SQLAdmin's ajax loader, labels masked for the
        actor), allowed to whoever may list this model and view the related
        one. The sidebar's script links each result to the list with it chosen.
        """
        if not self.has_permission(request, "list"):
            raise HTTPException(status_code=403)
        name, term = request.query_params.get("filter", ""), request.query_params.get("term", "")
        searchable = (f for f in self.get_filters() if isinstance(f, LiveForeignKeyFilter))
        found = next((f for f in searchable if f.parameter_name == name), None)
        if found is None:
            detail = gettext("There is no such relationship filter on this list.")
            raise HTTPException(status_code=400, detail=detail)
        if not term.strip():
            raise HTTPException(status_code=400, detail=gettext("Type some text to search for."))
        related = f"{masking.table_of(found.foreign_model)}.view"
        if not current_actor(request).has_perm(related):
            detail = translated(
                "You need the permission %(codename)s to search these records.", codename=related
            )
            raise HTTPException(status_code=403, detail=detail)
        loader = self._filter_loader(found)
        matches = await loader.get_list(request, term[:200])
        return JSONResponse({"results": [loader.format(match) for match in matches]})

    def _filter_loader(self, list_filter: LiveForeignKeyFilter) -> MaskedAjaxLoader:
        loaders: dict[str, MaskedAjaxLoader] = self.__dict__.setdefault("_filter_loaders", {})
        if list_filter.parameter_name not in loaders:
            target = list_filter.foreign_model
            display = get_column_obj(list_filter.foreign_display_field, target)

            def live(request: Request, term: str) -> Any:
                return target.deleted_at.is_(None)

            loaders[list_filter.parameter_name] = MaskedAjaxLoader(
                list_filter.parameter_name,
                target,
                self,
                fields=list_filter.search_fields,
                order_by=display.key,
                where=live,
                limit=20,
            )
        return loaders[list_filter.parameter_name]

    def rows_of(self, request: Request) -> Callable[[Select[Any]], Awaitable[Sequence[Row[Any]]]]:
        """A statement -> its rows, read in the request's unit of work (what a filter's `lookups` runs)."""

        async def run(stmt: Select[Any]) -> Sequence[Row[Any]]:
            session = (await request_uow(request)).session
            rows: Sequence[Row[Any]] = (await session.execute(stmt)).all()
            return rows

        return run

    async def list(self, request: Request) -> KeysetPagination:
        """One page of the list: filtered, searched, sorted, fetched by cursor, counted up to a cap.

        Three statements whatever the page size or depth, in the request's unit
        of work: the rows (many-to-one columns joined in), one per to-many
        column, and the capped count, which a first page that is not full
        answers by itself (a rare search, a narrow filter: one statement less).
        Raises `ListChanged` when the cursor was made for another sort, search,
        filter or page size: such a list starts at its first page.
        """
        page_size = self._page_size(request)
        sort_name, descending = self.keyset_sort(request)
        sort_column = getattr(self.model, sort_name)
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        # Only labels the page ("Showing 501 to 600"); without a cursor the list is at its first page.
        page = query_int(request, "page", default=1, minimum=1, maximum=BIGINT_MAX)
        after = request.query_params.get("after") or None
        before = None if after else request.query_params.get("before") or None
        cursor = (
            decode_cursor(after or before or "", column_type=sort_column.type) if after or before else None
        )
        state = self.list_state(request)
        if cursor is not None and cursor.state != state:
            raise ListChanged(self.first_page_url(request))
        base = await self.filtered_statement(request, sort=False)
        session = (await request_uow(request)).session

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
        stmt = stmt.order_by(*ordering).limit(page_size + 1).options(*self._list_loaders())
        rows = list((await session.scalars(stmt)).unique().all())
        more = len(rows) > page_size
        counted = await self._count(
            session,
            base,
            pk,
            searching=bool(request.query_params.get("search")),
            first_page_rows=None if cursor is not None or more else len(rows),
        )
        rows = rows[:page_size]
        if backwards:
            rows.reverse()

        has_previous = (after is not None) or (backwards and more)
        has_next = (not backwards and more) or backwards
        pagination = KeysetPagination(
            rows=rows,
            page_size=page_size,
            count=counted,
            page=page if cursor is not None else 1,
            url=request.url,
            next_cursor=encode_cursor(state, getattr(rows[-1], sort_name), rows[-1].id)
            if has_next and rows
            else None,
            previous_cursor=encode_cursor(state, getattr(rows[0], sort_name), rows[0].id)
            if has_previous and rows
            else None,
        )
        pagination.table = await self.table_rows(rows, request)
        return pagination

    async def _count(
        self, session: Any, base: Select[Any], pk: Any, *, searching: bool, first_page_rows: int | None
    ) -> CappedCount:
        """The list's rows counted up to the cap. A first page that is not full counts itself. A
        search asks PostgreSQL's planner first: counting even up to a cap reads every row until
        the cap's worth of matches, a hundred thousand rows for a word in one row of a hundred,
        so beyond SEARCH_COUNT_CAP it shows the estimate ("about 99,000") and counts nothing."""
        if first_page_rows is not None:
            return CappedCount(first_page_rows, capped=False)
        if searching:
            estimate = await estimate_rows(session, base, key=pk)
            if estimate is not None and estimate > SEARCH_COUNT_CAP:
                return CappedCount(estimate, capped=False, estimated=True)
        cap = SEARCH_COUNT_CAP if searching else COUNT_CAP
        total = await count_up_to(session, base, key=pk, cap=cap + 1)
        return CappedCount(min(total, cap), capped=total > cap)

    async def table_rows(self, rows: Sequence[Any], request: Request) -> Markup:
        """The list's `<tbody>` rows as HTML, built in one pass in Python.

        SQLAdmin's template awaits each cell, permission check and URL (and
        Jinja's async rendering yields every fragment through five levels of
        template inheritance). A control is shown only where it works: the
        per-row checks are asked through `allowed_rows`, and a related record
        is a link only when its details page would open. Every value is
        escaped as markupsafe escapes it. What is the same on every row (the
        controls' markup and words, the URLs around the id) is written once
        per page, escaped once: escaping is character by character, so the
        parts escaped apart are the whole escaped at once.
        """
        details_head, details_tail = url_parts_for_rows(request, "admin:details", identity=self.identity)
        edit_head, edit_tail = url_parts_for_rows(request, "admin:edit", identity=self.identity)
        delete_url = str(request.url_for("admin:delete", identity=self.identity))
        query = f"?{request.url.query}" if request.url.query else ""
        can_view = await self.allowed_rows(request, rows, "details")
        can_edit = await self.allowed_rows(request, rows, "edit")
        can_delete = await self.allowed_rows(request, rows, "delete")
        links = await self._related_links(request, rows)
        name = escape(self.name)
        # The controls' words, in the request's language: looked up once per page, not per row.
        select, view, edit, delete = (
            escape(gettext(word)) for word in ("Select item", "View", "Edit", "Delete")
        )
        # Each control's markup before and after the row's id.
        row_start = '<tr><td><input type="hidden" value="'
        checkbox = (
            '"><input class="form-check-input m-0 align-middle select-box" type="checkbox" '
            f'aria-label="{select}"></td><td class="text-end">'
        )
        view_start = f'<a href="{escape(details_head)}'
        view_end = f'{escape(details_tail)}" aria-label="{view}" title="{view}">{_ICON_VIEW}</a>'
        edit_start = f'<a href="{escape(edit_head)}'
        edit_end = f'{escape(edit_tail + query)}" aria-label="{edit}" title="{edit}">{_ICON_EDIT}</a>'
        delete_start = f'<a href="#" data-name="{name}" data-pk="'
        delete_middle = f'" data-url="{escape(delete_url + "?pks=")}'
        delete_end = (
            '" data-bs-toggle="modal" data-bs-target="#modal-delete" '
            f'aria-label="{delete}"><span title="{delete}">{_ICON_DELETE}</span></a>'
        )
        cells = self._cell_writers(request, links)
        cells_start, cells_end = ("</td><td>", "</td></tr>") if cells else ("</td>", "</tr>")
        parts: list[str] = []
        for row, viewable, editable, deletable in zip(rows, can_view, can_edit, can_delete, strict=True):
            pk, url_pk = _id_texts(row.id)
            parts.append(row_start + pk + checkbox)
            if viewable:
                parts.append(view_start + url_pk + view_end)
            if editable:
                parts.append(edit_start + url_pk + edit_end)
            if deletable:
                parts.append(delete_start + pk + delete_middle + url_pk + delete_end)
            parts.append(cells_start + "</td><td>".join([cell(row) for cell in cells]) + cells_end)
        return Markup("".join(parts))  # noqa: S704 - every value above is escaped

    async def _related_links(self, request: Request, rows: Sequence[Any]) -> dict[tuple[type, Any], str]:
        """The details links of the related records the listed columns show, each record asked once."""
        related: dict[tuple[type, Any], Any] = {}
        linked = [column for column in self.columns.listed_relations() if self.links_related(column)]
        for row in rows:
            for column in linked:
                for item in related_items(getattr(row, column, None)):
                    related.setdefault((type(item), item.id), item)
        return await self.detail_links(request, builtins.list(related.values()))

    def _cell_writers(
        self, request: Request, links: Mapping[tuple[type, Any], str]
    ) -> builtins.list[Callable[[Any], str]]:
        """One function per listed column writing its cell's HTML for a row: what a column needs
        (its formatter, whether it holds related records, whether they link, the actor) is looked up
        once per page, not once per cell; a related record shown on many rows is written once."""
        columns = self.columns
        actor = current_actor(request)

        def formatted(column: str, formatter: CellFormatter) -> Callable[[Any], str]:
            function = formatter.function
            if formatter.takes_request:
                return lambda row: html_text(function(row, column, request))
            return lambda row: html_text(function(row, column))

        def related(column: str, linked: bool) -> Callable[[Any], str]:
            written: dict[tuple[type, Any], str] = {}  # a record shown on many rows is written once

            def shown(item: Any) -> str:
                key = (type(item), item.id)
                html = written.get(key)
                if html is None:
                    url = links.get(key) if linked else None
                    text = html_text(masking.label_for(actor, item))
                    html = written[key] = f'<a href="{html_text(url)}">{text}</a>' if url else text
                return html

            def cell(row: Any) -> str:
                return "<br>".join([shown(item) for item in related_items(getattr(row, column, None))])

            return cell

        def plain(column: str) -> Callable[[Any], str]:
            cell_html = columns.cell_html
            return lambda row: cell_html(getattr(row, column, None))

        writers: builtins.list[Callable[[Any], str]] = []
        for column in columns.list:
            formatter = columns.list_formatters.get(column)
            if formatter is not None:
                writers.append(formatted(column, formatter))
            elif columns.is_relation(column):
                writers.append(related(column, self.links_related(column)))
            else:
                writers.append(plain(column))
        return writers

    def _page_size(self, request: Request) -> int:
        """`?pageSize=`, at most the largest size offered."""
        size = query_int(request, "pageSize", default=int(self.page_size), minimum=1, maximum=BIGINT_MAX)
        return min(size, max(self.page_size_options))

    def _list_loaders(self) -> builtins.list[Any]:
        """Many-to-one columns joined into the row query; collections loaded in one more query each."""
        loaders = []
        for name in self.columns.listed_relations():
            relation = getattr(self.model, name)
            loaders.append(selectinload(relation) if relation.property.uselist else joinedload(relation))
        return loaders


def _id_texts(value: Any) -> tuple[str, str]:
    """A row's id as its attributes show it, and as its URLs do (escaped once more, as the URL is)."""
    if type(value) is int:
        text = str(value)  # digits and a sign: nothing to escape
        return text, text
    shown = str(escape(str(value)))
    return shown, str(escape(shown))
