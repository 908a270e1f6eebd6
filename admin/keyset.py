"""Fast list pages: keyset pagination and a capped count.

A page is fetched with `WHERE (sort_key, id) > (last_sort_key, last_id)
ORDER BY sort_key, id LIMIT n`, which an index on (sort_key, id) serves in
the same time on page 1 and on page 10,000; there is no OFFSET. The total is
counted only up to a cap: a huge table shows "10,000+" instead of paying for
a full COUNT on every page view.

The cursor travels in the URL as `after=` or `before=` (the list's
fingerprint, the last value and the last id, base64-encoded JSON), with
SQLAdmin's `page=` carrying the page number only for the "Showing 501 to
600" label and the active page link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqladmin.pagination import PageControl, Pagination
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, SmallInteger, String
from sqlalchemy import Enum as Enum_
from sqlalchemy.types import TypeDecorator, TypeEngine
from starlette.datastructures import URL
from starlette.exceptions import HTTPException

from admin.formatting import number
from admin.i18n import translated
from backend.values import InvalidValue, is_id, parse_date, parse_datetime, parse_decimal

COUNT_CAP = 10_000
# Where in a list a URL points; a new search, filter, sort or page size drops them.
POSITION_PARAMS = ("after", "before", "page")


class CappedCount(int):
    """A row count that may have hit the cap ("10,000+"), or PostgreSQL's estimate of it ("about
    99,000"); written with the reader's separators."""

    capped: bool
    estimated: bool

    def __new__(cls, value: int, *, capped: bool, estimated: bool = False) -> CappedCount:
        count = super().__new__(cls, _two_digits(value) if estimated else value)
        count.capped = capped
        count.estimated = estimated
        return count

    def __str__(self) -> str:
        if self.estimated:
            return translated("about %(count)s", count=number(int(self)))
        return number(int(self)) + ("+" if self.capped else "")


def _two_digits(value: int) -> int:
    """An estimate said no more precisely than it is: 99,235 -> 99,000."""
    if value < 100:
        return value
    scale: int = 10 ** (len(str(value)) - 2)
    return round(value / scale) * scale


class ListChanged(Exception):
    """The cursor in the URL was made for another sort, search, filter or page size."""

    def __init__(self, first_page: URL) -> None:
        super().__init__(str(first_page))
        self.first_page = first_page


@dataclass(frozen=True)
class Cursor:
    state: str
    value: Any
    id: int


INVALID_LINK = "This page link is not valid; start from the first page."
MAX_TOKEN = 4096  # characters; a real cursor is well under 1,000
MAX_TEXT = 10_000  # characters of a text sort value when the column sets no length


def list_state(*parts: object) -> str:
    """A short fingerprint of what a list shows (sort, search, filters, page size).

    A cursor remembers the state it was made for: a link that changes any of
    them (a new search typed on page 3) starts again at the first page.
    """
    digest = hashlib.blake2s(repr(parts).encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


def encode_cursor(state: str, value: Any, id_: int) -> str:
    raw = json.dumps([state, _json_value(value), id_], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, column_type: TypeEngine[Any]) -> Cursor:
    """Parse a cursor from a URL, its value typed for `column_type`; anything malformed is a 400."""
    try:
        if len(token) > MAX_TOKEN:
            raise InvalidValue(INVALID_LINK)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        if not isinstance(decoded, list) or len(decoded) != 3:
            raise InvalidValue(INVALID_LINK)
        state, value, id_ = decoded
        if not isinstance(state, str) or not is_id(id_):
            raise InvalidValue(INVALID_LINK)
        return Cursor(state, typed_value(value, column_type), id_)
    except (ValueError, TypeError, RecursionError, binascii.Error) as exc:
        # InvalidValue, json.JSONDecodeError and UnicodeDecodeError are ValueErrors.
        raise HTTPException(status_code=400, detail=INVALID_LINK) from exc


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if value is None:
        raise TypeError("a keyset sort column cannot hold NULL")  # sortable columns are NOT NULL
    return value


def sort_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The SQL type that decides how a value is parsed: a TypeDecorator's `impl`."""
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return column_type


def typed_value(value: Any, column_type: TypeEngine[Any]) -> Any:
    """A cursor's JSON value as the column's Python type, bounded to what the column can hold."""
    base = sort_type(column_type)
    if isinstance(base, Boolean):
        return _accepted(value, isinstance(value, bool))
    if isinstance(base, Integer):
        bits = 16 if isinstance(base, SmallInteger) else 64 if isinstance(base, BigInteger) else 32
        limit = 2 ** (bits - 1)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        return _accepted(value, is_int and -limit <= value < limit)
    if isinstance(value, str) and isinstance(base, DateTime):
        return parse_datetime(value)
    if isinstance(value, str) and isinstance(base, Date):
        return parse_date(value)
    if isinstance(base, Float):
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(_accepted(value, is_number and math.isfinite(value)))
    if isinstance(value, str) and isinstance(base, Numeric):
        return parse_decimal(value, max_digits=base.precision or 38, decimal_places=base.scale or 0)
    if isinstance(value, str) and isinstance(base, Enum_):
        members = {member.value: member for member in base.enum_class or ()}
        return members[value] if value in members else _accepted(value, value in base.enums)
    if isinstance(value, str) and isinstance(base, String):
        return _accepted(value, len(value) <= (base.length or MAX_TEXT))
    raise InvalidValue(INVALID_LINK)


def _accepted(value: Any, ok: bool) -> Any:
    if not ok:
        raise InvalidValue(INVALID_LINK)
    return value


class KeysetPagination(Pagination):
    """SQLAdmin's Pagination, fed by keyset links, so SQLAdmin's list endpoint and template render it.

    `page` is the number the URL says (`?page=`), so the endpoint's check that
    the page it asked for is the page it got holds; the links are made here
    from the cursors, and `add_pagination_urls` has nothing left to add.
    """

    def __init__(
        self,
        *,
        rows: list[Any],
        page_size: int,
        count: CappedCount,
        page: int,
        url: URL,
        next_cursor: str | None,
        previous_cursor: str | None,
    ) -> None:
        position = (page - 1) * page_size
        shown = position + len(rows)
        super().__init__(rows=rows, page=page, page_size=page_size, count=max(count, shown))
        self.count = count if count >= shown else CappedCount(shown, capped=True)
        self.page = page  # Pagination clamps it to the count, which a page past the cap exceeds
        self.table: Any = None  # the <tbody> rows as HTML (KeysetListing.table_rows)
        self._next_cursor = next_cursor
        self._previous_cursor = previous_cursor
        base = url.remove_query_params(list(POSITION_PARAMS))
        controls = []
        if previous_cursor is not None and page > 2:
            controls.append(PageControl(number=1, url=str(base)))
        if previous_cursor is not None:
            controls.append(
                PageControl(
                    number=page - 1,
                    url=str(base.include_query_params(before=previous_cursor, page=page - 1))
                    if page > 2
                    else str(base),
                )
            )
        controls.append(PageControl(number=page, url=str(url)))
        if next_cursor is not None:
            controls.append(
                PageControl(
                    number=page + 1, url=str(base.include_query_params(after=next_cursor, page=page + 1))
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
        # The page-size menu links to this page at another size: its cursor no longer fits (ListChanged).
        return self
