"""Values from a request's URL or form, through the one parser in `backend.values`.

A malformed query parameter is a 400 with a sentence saying what is wrong; an
id in the path or in an id list that cannot name a record is a 404. No view
parses numbers, ids or dates on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request

from backend.values import InvalidValue, TooManyValues, parse_date, parse_id, parse_id_list, parse_int

NOT_FOUND = "No such record."
T = TypeVar("T")
# A UUID as the app writes it (str(uuid.uuid4())); `uuid.UUID` alone would also take braces, a
# "urn:uuid:" prefix, no hyphens, and non-ASCII digits.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """The whole number in `?name=`, `default` when absent or empty; 400 when malformed or out of range."""
    value = query_optional_int(request, name, minimum=minimum, maximum=maximum)
    return default if value is None else value


def query_optional_int(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    """Like `query_int`, but None when the parameter is absent or empty."""
    return _query_value(
        request, name, lambda raw: parse_int(raw, minimum=minimum, maximum=maximum, name=name)
    )


def query_id(request: Request, name: str) -> int | None:
    """A record id in `?name=` (e.g. `before=` or a filter), None when absent; 400 when malformed."""
    return _query_value(request, name, lambda raw: parse_id(raw, name=name))


def query_date(request: Request, name: str) -> date | None:
    """A YYYY-MM-DD date in `?name=`, None when absent or empty; 400 when malformed."""
    return _query_value(request, name, lambda raw: parse_date(raw, name=name))


def query_uuid(request: Request, name: str) -> str | None:
    """A UUID in `?name=` (an import id), lower-cased; None when absent or empty; 400 when malformed."""
    return _query_value(request, name, lambda raw: _parse_uuid(raw, name=name))


def _parse_uuid(text: str, *, name: str) -> str:
    """`text` as a lower-case UUID; `InvalidValue` unless it is one, written with ASCII hex and hyphens."""
    if _UUID.fullmatch(text) is None:
        raise InvalidValue(f"{name} must be an id like 1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d.")
    return text.lower()


def _query_value(request: Request, name: str, parse: Callable[[str], T]) -> T | None:
    """`parse` applied to `?name=`; None when absent or empty, 400 with the parser's sentence when refused.

    The sentence names the parameter, never the text: a link could put anything there.
    """
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse(raw)
    except InvalidValue as exc:
        raise HTTPException(status_code=400, detail=exc.message) from exc


def id_or_404(text: str) -> int:
    """An id that names a record (from a path or an id list); 404 when it cannot be one."""
    try:
        return parse_id(text)
    except InvalidValue as exc:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from exc


def path_id(request: Request, name: str = "pk") -> int:
    """The record id in the path; 404 when it cannot name a record."""
    return id_or_404(str(request.path_params.get(name, "")))


def query_ids(request: Request, name: str = "pks") -> list[int]:
    """The ids in `?pks=1,2,3`: 400 when none are given, 404 when one cannot name a record."""
    raw = request.query_params.get(name, "")
    try:
        ids = parse_id_list(raw)
    except TooManyValues as exc:
        raise HTTPException(status_code=400, detail=exc.message) from exc
    except InvalidValue as exc:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from exc
    if not ids:
        raise HTTPException(status_code=400, detail="Select at least one record.")
    return ids
