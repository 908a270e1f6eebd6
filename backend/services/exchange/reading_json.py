"""JSON files: a list of objects, one per row, as an export writes them.

The headers are the objects' keys in the order they first appear; an object
without a key has an empty cell there. Row numbers count the list's items
from 1. Text is taken as it is: a JSON export never quotes formulas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NoReturn

from backend.services.exchange.reading_rows import (
    NOT_A_LIST,
    BadFile,
    Cell,
    ImportLimits,
    Table,
    TableBuilder,
    number_text,
    quoted,
    refuse_width,
)

_CELL_VALUES = "a cell holds text, a number, true or false, or a list of those"
# NUL and lone surrogates reach decoded JSON text only through \u escapes: files without one skip the search.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def read_json(text: str, limits: ImportLimits, *, notes: Sequence[str] = ()) -> Table:
    try:
        # Integers stay text and fractions exact decimals: nothing is rounded, no huge number is built.
        document = json.loads(text, parse_int=str, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadFile(
            f"The file is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError as exc:
        raise BadFile(f"The file nests lists or objects too deeply. {NOT_A_LIST}") from exc
    if not isinstance(document, list):
        raise BadFile(NOT_A_LIST)
    keys: dict[str, None] = {}
    for number, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            raise BadFile(f"Item {number} is not an object. {NOT_A_LIST}")
        for key in item:
            if key not in keys:
                keys[key] = None
                refuse_width(len(keys))
    check_characters = _UNSTORABLE_ESCAPE.search(text) is not None
    builder = TableBuilder("json", limits, notes=notes, check_characters=check_characters)
    builder.set_headers(0, [key.strip() or None for key in keys])
    for number, item in enumerate(document, start=1):
        # Text first: most values are, and a file of many rows is read here value by value.
        cells = [
            (value.strip() or None) if type(value) is str else _cell(value, number, key)
            for key, value in zip(keys, map(item.get, keys), strict=True)
        ]
        builder.add(number, cells)
    return builder.table()


def _cell(value: Any, number: int, key: str) -> Cell:
    if isinstance(value, list):
        if any(isinstance(part, dict | list) for part in value):
            what = "a list with an object or a list in it"
            raise BadFile(f"Item {number}, key {quoted(key)} holds {what}: {_CELL_VALUES}.")
        texts = [_scalar(part, number, key) for part in value]
        return [part for part in texts if part] or None
    return _scalar(value, number, key)


def _scalar(value: Any, number: int, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return number_text(value)
    raise BadFile(f"Item {number}, key {quoted(key)} holds an object: {_CELL_VALUES}.")


def _refuse_constant(name: str) -> NoReturn:
    raise BadFile(f"The file holds {name}, which is not a JSON number: write the value in quotes, as text.")
