"""A model view's CSV export: the rows its list shows, masked for the signed-in actor, streamed.

SQLAdmin's export endpoint checks `can_export`, `check_can_export` (our
`<table>.export`) and the format, then asks `get_model_objects` for every row
at once and hands them to `export_data`. Loading a million rows first is what
this avoids: `get_model_objects` returns nothing, and `export_data` streams
the list's rows from the request's unit of work while the response is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import urlencode

from sqlalchemy.orm import selectinload
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from admin.auth import current_actor
from admin.columns import related_items
from admin.keyset import POSITION_PARAMS
from admin.listing import KeysetListing
from admin.requests import request_uow
from backend.exports import csv_line
from backend.services import masking

STREAM_BATCH = 500  # rows fetched from the database at a time


class CsvExport(KeysetListing):
    """`export_url` for the list page's button, `export_data` for the route, `export_value` per cell."""

    export_types: ClassVar[list[str]] = ["csv"]  # the only format `export_data` writes

    def export_url(self, request: Request) -> URL:
        """The CSV export of exactly the rows the list shows: same search, filters and sort."""
        url = URL(str(request.url_for("admin:export", identity=self.identity, export_type="csv")))
        kept = [
            (k, v) for k, v in request.query_params.multi_items() if k not in (*POSITION_PARAMS, "pageSize")
        ]
        return url.replace(query=urlencode(kept))

    def export_value(self, obj: Any, column: str, request: Request) -> Any:
        """One cell of the export, masked as the signed-in actor must see it; override to reformat."""
        value = getattr(obj, column, None)
        if self.columns.is_relation(column):
            return ", ".join(masking.label_for(current_actor(request), item) for item in related_items(value))
        if isinstance(value, Enum):
            value = value.value
        return masking.shown(current_actor(request), masking.table_of(self.model), column, value)

    async def get_model_objects(self, request: Request, limit: int | None = 0) -> list[Any]:
        """Nothing: `export_data` reads the rows itself, as they are sent (see the module's docstring)."""
        return []

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        """The current filtered list as CSV, streamed: memory stays flat for any row count."""
        if request is None or export_type != "csv":
            raise HTTPException(status_code=404)
        secrets = masking.secret_fields(self.model)
        columns = [name for name in self.columns.export if name not in secrets]
        stmt = await self.filtered_statement(request)
        relations = [name for name in columns if self.columns.is_relation(name)]
        stmt = stmt.options(*(selectinload(getattr(self.model, name)) for name in relations))
        # Opened before the response starts, so a refused or failing read is an error page, not a cut stream.
        uow = await request_uow(request)

        async def rows() -> AsyncIterator[str]:
            yield csv_line(columns)
            result = await uow.session.stream_scalars(stmt.execution_options(yield_per=STREAM_BATCH))
            async for obj in result:
                yield csv_line(self.export_value(obj, column, request) for column in columns)

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{self.identity}.csv"'},
        )
