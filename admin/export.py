"""A model view's CSV export: the rows its list shows, masked for the signed-in actor, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import selectinload
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import StreamingResponse

from admin.auth import current_actor
from admin.keyset import POSITION_PARAMS
from admin.listing import KeysetListing
from backend.exports import csv_line
from backend.services import masking


class CsvExport(KeysetListing):
    """`export_url` for the list page's button, `export_csv` for the route, `export_value` per cell."""

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
        if column in self._relation_names:
            related = value if isinstance(value, list | tuple) else [] if value is None else [value]
            return ", ".join(masking.label_for(current_actor(request), item) for item in related)
        if isinstance(value, Enum):
            value = value.value
        return masking.shown(current_actor(request), masking.table_of(self.model), column, value)

    async def export_csv(self, request: Request) -> StreamingResponse:
        """The current filtered list as CSV, streamed: memory stays flat for any row count."""
        secrets = masking.secret_fields(self.model)
        columns = [name for name in self.get_export_columns() if name not in secrets]
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
