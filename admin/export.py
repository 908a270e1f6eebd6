"""A model view's export: the rows its list shows, as CSV, XLSX or JSON, masked for the signed-in actor.

SQLAdmin's export endpoint checks `can_export`, `check_can_export` (our
`<table>.export`) and that the format is one of `export_types` (404
otherwise), then asks `get_model_objects` for every row at once and hands
them to `export_data`. Loading a million ORM objects first is what this
avoids: `get_model_objects` returns nothing, and `export_data` streams the
list's rows through the exchange service (backend/services/exchange), which
reads plain column values, while the response is sent.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from sqlalchemy import ColumnElement
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from admin.keyset import POSITION_PARAMS
from admin.listing import KeysetListing
from admin.requests import request_uow
from backend.services.exchange.exporting import export_headers, export_rows, started
from backend.services.exchange.reading import FORMATS
from backend.services.exchange.writing import MEDIA_TYPES, encode, export_filename


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

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        """The current filtered list as a file, streamed: memory stays flat for any row count."""
        if request is None or export_type not in MEDIA_TYPES:
            raise HTTPException(status_code=404)
        listed = await self.filtered_statement(request, sort=False)
        criteria = () if listed.whereclause is None else (listed.whereclause,)
        uow = await request_uow(request)
        # The first rows are read before the response starts: a refused or failing read is an error page,
        # not a cut file.
        rows = await started(
            export_rows(uow, self.model, criteria=criteria, order_by=self.export_order(request))
        )
        filename = export_filename(self.model, export_type)
        return StreamingResponse(
            encode(export_type, export_headers(self.model, uow.actor), rows),
            media_type=MEDIA_TYPES[export_type],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
