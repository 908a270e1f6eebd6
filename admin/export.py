"""A model view's export: the rows its list shows, as CSV, XLSX or JSON, masked for the signed-in actor.

SQLAdmin's export endpoint checks `can_export`, `check_can_export` (our
`<table>.export`) and that the format is one of `export_types` (404
otherwise), then asks `get_model_objects` for every row at once and hands
them to `export_data`. Loading a million ORM objects first is what this
avoids: `get_model_objects` returns nothing, and `export_data` streams the
list's rows through the exchange service (backend/services/exchange), which
reads plain column values, while the response is sent.

On PostgreSQL a list of more than `JOB_THRESHOLD_ROWS` rows is exported by a
job instead (backend/jobs): the route answers with the job's page, which
shows its progress and then offers the file. The job carries the list's
state as an `ExportQuery` (`export_query_of`), so its file holds the rows
the streamed export would, in the same order.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from sqlalchemy import BinaryExpression, BindParameter, Column, ColumnElement, inspect, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from admin.controls import database_of
from admin.csrf import navigation_problem
from admin.filters import filter_value
from admin.formatting import number
from admin.i18n import translated
from admin.job_submit import submit_job
from admin.keyset import POSITION_PARAMS
from admin.listing import KeysetListing
from admin.requests import request_uow
from backend.config import Settings
from backend.db.counting import count_up_to
from backend.jobs.export_query import query_text
from backend.jobs.service import runs_as_job
from backend.services import masking
from backend.services.exchange.exporting import export_file
from backend.services.exchange.reading import FORMATS
from backend.services.exchange.writing import MEDIA_TYPES, export_filename

logger = logging.getLogger(__name__)


class FileExport(KeysetListing):
    """`export_url` for the list page's export menu, `export_data` for SQLAdmin's export route."""

    export_types: ClassVar[list[str]] = list(FORMATS)

    def export_url(self, request: Request, export_type: str = "csv") -> URL:
        """The export of exactly the rows the list shows (same search, filters and sort) as `export_type`."""
        url = URL(str(request.url_for("admin:export", identity=self.identity, export_type=export_type)))
        kept = [
            (k, v) for k, v in request.query_params.multi_items() if k not in (*POSITION_PARAMS, "pageSize")
        ]
        return url.replace(query=urlencode(kept))

    def export_order(self, request: Request) -> list[ColumnElement[Any]]:
        """The list's own order (`keyset_sort`), id breaking ties, so the file lists rows as the pages do."""
        sort_name, descending = self.keyset_sort(request)
        columns = [getattr(self.model, sort_name), self.model.id]  # type: ignore[attr-defined]
        return [column.desc() for column in columns] if descending else columns

    async def get_model_objects(self, request: Request, limit: int | None = 0) -> list[Any]:
        """Nothing: `export_data` reads the rows itself, as they are sent (see the module's docstring)."""
        return []

    async def export_data(  # type: ignore[override]  # SQLAdmin's route returns any response it is given
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> Response:
        """The current filtered list as a file, streamed (memory stays flat for any row count), or,
        on PostgreSQL above the job threshold, as a job: a 303 to the job's page."""
        if request is None or export_type not in MEDIA_TYPES:
            raise HTTPException(status_code=404)
        listed = await self.filtered_statement(request, sort=False)
        uow = await request_uow(request)
        if not uow.settings.is_sqlite:
            key = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
            rows = await count_up_to(uow.session, listed, key=key, cap=uow.settings.job_threshold_rows + 1)
            # A job is a write a GET starts: only from this site's own pages, never a cross-site link
            # (csrf.navigation_problem); such a request gets the file streamed, which writes nothing.
            if runs_as_job(database_of(request), rows) and navigation_problem(request) is None:
                params = await export_query_of(self, request)
                if params is not None:
                    # The count's read transaction ends here: the job is written in units of its own
                    # (see JobService), and a worker may take it before this response is sent.
                    await uow.rollback()
                    return await self._submit_export(request, uow.settings, export_type, params)
        criteria = () if listed.whereclause is None else (listed.whereclause,)
        # The first rows are read before the response starts: a refused or failing read is an error page,
        # not a cut file.
        chunks = await export_file(
            uow, self.model, export_type, criteria=criteria, order_by=self.export_order(request)
        )
        filename = export_filename(self.model, export_type)
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[export_type],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def _submit_export(
        self, request: Request, settings: Settings, export_type: str, params: dict[str, Any]
    ) -> Response:
        threshold = settings.job_threshold_rows
        return await submit_job(
            request,
            kind="export",
            table=masking.table_of(self.model),
            format=export_type,
            params=params,
            message=translated(
                "This list has more than %(count)s rows, so it is exported by a job: this page "
                "shows its progress, then the file to download. You can leave; it stays under My jobs.",
                count=number(threshold),
            ),
        )


async def export_query_of(view: FileExport, request: Request) -> dict[str, Any] | None:
    """The list's filters, search and sort as an export job's params (`ExportQuery`).

    Each filter is asked for its own clause on a bare statement, so the job
    compares the same column with the same value (a date range's start as the
    list computed it now, a related record by id, a date range's midnights);
    a clause other than "column = value", "column >= time" or "column < time"
    cannot travel to a worker, and None says so (the export is then
    streamed). Validation happens at submit.
    """
    model = view.model
    key = model.id  # type: ignore[attr-defined]  # every model here has IdMixin
    params: dict[str, Any] = {}
    chosen: dict[tuple[str, str], Any] = {}
    for list_filter in view.get_filters():
        value = filter_value(list_filter, request.query_params)
        if value is None or getattr(list_filter, "has_operator", False):
            continue  # as `filtered_statement` skips it
        filtered = await list_filter.get_filtered_query(select(key), value, model)  # type: ignore[call-arg]
        for clause in _conditions(filtered.whereclause):
            found = _comparison(model, clause)
            if found is None:
                logger.warning("%s: filter %s cannot run in a job", view.identity, list_filter.parameter_name)
                return None
            kind, name, value = found
            held = chosen.get((kind, name))
            if held is not None and kind == "equals" and held != value:
                return None  # two filters asking one column for two values: rare, and streamed
            if held is not None and kind != "equals":
                # Two bounds on one column (a quick range and a from/to): the narrower holds both.
                value = max(held, value) if kind == "since" else min(held, value)
            chosen[(kind, name)] = value
            params.setdefault(kind, {})[name] = query_text(value)
    term = request.query_params.get("search")
    if term:
        params["search"] = {"term": term, "fields": list(view.columns.searchable)}
    sort_name, descending = view.keyset_sort(request)
    params["order_by"] = [f"-{sort_name}" if descending else sort_name]
    return params


_KINDS = {operators.eq: "equals", operators.ge: "since", operators.lt: "until"}


def _conditions(clause: ColumnElement[Any] | None) -> list[ColumnElement[Any]]:
    if clause is None:
        return []
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        return [part for inner in clause.clauses for part in _conditions(inner)]
    return [clause]


def _comparison(model: type[Any], clause: ColumnElement[Any]) -> tuple[str, str, Any] | None:
    """("equals", "since" or "until", column name, value) for "column op value" on `model`'s table."""
    if not isinstance(clause, BinaryExpression) or clause.operator not in _KINDS:
        return None
    column, value = clause.left, clause.right
    if not isinstance(column, Column) or column.table is not model.__table__:
        return None
    if not isinstance(value, BindParameter) or value.value is None:
        return None
    kind = _KINDS[clause.operator]
    # A bound travels as a time (`ExportQuery` parses it so): a DATE column's day bound is streamed instead.
    if kind in ("since", "until") and not isinstance(value.value, datetime):
        return None
    name = inspect(model).get_property_by_column(column).key
    return kind, name, value.value
