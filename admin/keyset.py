"""Fast list pages: keyset pagination and a capped count.

A page is fetched with `WHERE (sort_key, id) > (last_sort_key, last_id)
ORDER BY sort_key, id LIMIT n`, which an index on (sort_key, id) serves in
the same time on page 1 and on page 10,000; there is no OFFSET. The total is
counted only up to a cap: a huge table shows "10,000+" instead of paying for
a full COUNT on every page view.

The cursor travels in the URL as `after=` or `before=` (the sort name, the
last value and the last id, base64-encoded JSON), with `pos=` carrying the
position only for the "Showing 501 to 600" label.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from sqladmin.pagination import PageControl, Pagination
from starlette.datastructures import URL
from starlette.exceptions import HTTPException

COUNT_CAP = 10_000


class CappedCount(int):
    """A row count that may have hit the cap; shows as "10,000+" when it did."""

    capped: bool

    def __new__(cls, value: int, *, capped: bool) -> CappedCount:
        count = super().__new__(cls, value)
        count.capped = capped
        return count

    def __str__(self) -> str:
        return f"{int(self):,}+" if self.capped else f"{int(self):,}"


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any
    id: int


def encode_cursor(sort: str, value: Any, id_: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, Enum):
        value = value.value
    raw = json.dumps([sort, value, id_], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, sort: str, python_type: type) -> Cursor:
    """Parse a cursor from a URL; a malformed one, or one for another sort, is a 400."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor_sort, value, id_ = json.loads(raw)
        if cursor_sort != sort or not isinstance(id_, int):
            raise ValueError("cursor for another sort order")
        return Cursor(sort, _typed(value, python_type), id_)
    except (ValueError, TypeError, binascii.Error, InvalidOperation, json.JSONDecodeError) as exc:
        raise HTTPException(
            status_code=400, detail="This page link is no longer valid; start from the first page."
        ) from exc


def _typed(value: Any, python_type: type) -> Any:
    if value is None:
        raise ValueError("empty cursor value")
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(str(value))
    if python_type is int:
        return int(value)
    return str(value)


class KeysetPagination(Pagination):
    """SQLAdmin's Pagination, fed by keyset links, so the stock list template renders it."""

    def __init__(
        self,
        *,
        rows: list[Any],
        page_size: int,
        count: CappedCount,
        position: int,
        url: URL,
        next_cursor: str | None,
        previous_cursor: str | None,
    ) -> None:
        page = position // page_size + 1
        super().__init__(rows=rows, page=page, page_size=page_size, count=max(count, position + len(rows)))
        self.count = (
            count if count >= position + len(rows) else CappedCount(position + len(rows), capped=True)
        )
        self.page = page
        self.table: Any = None  # the <tbody> rows as HTML (ServiceModelView.table_rows)
        self._next_cursor = next_cursor
        self._previous_cursor = previous_cursor
        base = url.remove_query_params(["after", "before", "pos", "page"])
        controls = []
        if previous_cursor is not None and page > 2:
            controls.append(PageControl(number=1, url=str(base)))
        if previous_cursor is not None:
            previous_position = max(0, position - page_size)
            controls.append(
                PageControl(
                    number=page - 1,
                    url=str(base.include_query_params(before=previous_cursor, pos=previous_position))
                    if previous_position
                    else str(base),
                )
            )
        controls.append(PageControl(number=page, url=str(url)))
        if next_cursor is not None:
            controls.append(
                PageControl(
                    number=page + 1,
                    url=str(base.include_query_params(after=next_cursor, pos=position + page_size)),
                )
            )
        self.page_controls = controls

    @property
    def has_previous(self) -> bool:
        return self._previous_cursor is not None

    @property
    def has_next(self) -> bool:
        return self._next_cursor is not None

    def add_pagination_urls(self, base_url: URL) -> None:
        """Links are made in the constructor from the cursors."""

    def resize(self, page_size: int) -> Pagination:
        return self
