"""A CSV export that PostgreSQL writes: each row's CSV line computed in the query.

Writing a million rows' cells in Python (fetch each value, turn it into
text, check it for formulas, quote it) is what held the CSV export to about
50,000 rows/s. Here the database does all of it: the query selects, per row,
its finished CSV line and whether any of its cells needs the formula check
(a cell that is neither empty nor starts with an ASCII letter or digit).
Python joins the lines and runs the full check (`writing.spreadsheet_text`,
the one rule) only on the rows so flagged, which are rare in real data.

The text must be exactly the Python path's (`fields.cell_text`,
`fields.join_keys`, `csv.writer`'s minimal quoting and "\\r\\n" line ends):
tests/backend/exchange/test_csv_sql.py compares the two byte for byte on
hostile values. A column whose text the database cannot give the same way
(a number of more than six decimal places, which Python writes with an
exponent; a time without a date) makes the export plan's CSV statement None (exporting.py),
and the export takes the Python path.
"""

from __future__ import annotations

import csv
import io
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Enum,
    Integer,
    Numeric,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from backend.services.exchange.fields import LIST_SEPARATOR, cell_text
from backend.services.exchange.writing import spreadsheet_text

LINE_END = "\r\n"  # csv.writer's default, which the Python path writes
_ASCII_RANGES = ((48, 57), (65, 90), (97, 122))  # 0-9, A-Z, a-z: text no spreadsheet takes for a formula
_CSV_SPECIAL = '[",\\r\\n]'  # what csv.writer quotes a cell for (regular expression, as PostgreSQL reads it)
_KEY_SPECIAL = '[,"]'  # what fields.join_keys quotes a key for
_PYTHON_CSV_SPECIAL = re.compile('[",\r\n]')
_PLAIN_STARTS = frozenset(string.ascii_letters + string.digits)
MAX_DECIMAL_PLACES = 6  # beyond this Python's str(Decimal) may use an exponent; numeric::text never does


@dataclass(frozen=True)
class SqlCell:
    """A cell's text in SQL, and what its values can be, so the database checks only what it must."""

    text: ColumnElement[str]
    quoted: bool = True  # may hold a comma, a double quote or a line break (csv.writer quotes it)
    checked: bool = True  # may start with something else than an ASCII letter or digit (formula rule)

    @classmethod
    def of_values(cls, text: ColumnElement[str], values: Sequence[str]) -> SqlCell:
        """A cell that only ever holds one of `values` (an enum's, the mask)."""
        return cls(
            text,
            quoted=any(_PYTHON_CSV_SPECIAL.search(value) for value in values),
            checked=any(value and value[0] not in _PLAIN_STARTS for value in values),
        )


def cell_text_sql(column: Any) -> SqlCell | None:
    """SQL giving the text `fields.cell_text` gives for the column's values (NULL for None), or None."""
    kind = column.type
    if isinstance(kind, Enum):
        values = [cell_text(member) for member in kind.enum_class or ()]
        if kind.enum_class is None or list(kind.enums) != values:
            return None
        return SqlCell.of_values(cast(column, Text), [str(value) for value in values])
    if isinstance(kind, Boolean):
        text = case((column.is_(True), literal("true")), (column.is_(False), literal("false")))
        return SqlCell.of_values(text, ["true", "false"])
    if isinstance(kind, Integer):
        return SqlCell(cast(column, Text), quoted=False)  # "-5" starts a formula: still checked
    if isinstance(kind, Numeric):
        if not kind.asdecimal or kind.scale is None or kind.scale > MAX_DECIMAL_PLACES:
            return None
        return SqlCell(cast(column, Text), quoted=False)
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        impl = kind if isinstance(kind, DateTime) else kind.impl
        if not impl.timezone:
            return None
        return SqlCell(_isoformat_utc(column), quoted=False, checked=False)  # digits first, always
    if isinstance(kind, Date):
        day = _finite_or(column, func.to_char(column, "YYYY-MM-DD"), "9999-12-31", "0001-01-01")
        return SqlCell(day, quoted=False, checked=False)
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return None
    return SqlCell(column) if python_type is str else None


def _isoformat_utc(column: Any) -> ColumnElement[str]:
    """`datetime.isoformat()` of an aware UTC value: microseconds only when there are any; PostgreSQL's
    infinities as asyncpg reads them (`datetime.max` and `datetime.min`)."""
    utc = func.timezone("UTC", column)
    fraction = case(
        (func.mod(cast(func.extract("microseconds", column), Integer), 1_000_000) == 0, literal("")),
        else_=func.to_char(utc, ".US"),
    )
    finite = func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS') + fraction + literal("+00:00")
    return _finite_or(column, finite, "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+00:00")


def _finite_or(column: Any, finite: ColumnElement[str], latest: str, earliest: str) -> ColumnElement[str]:
    return case(
        (column.is_(None), null()),
        (func.isfinite(column), finite),
        (column > func.now(), literal(latest)),
        else_=literal(earliest),
    )


def joined_keys_sql(key: ColumnElement[Any]) -> ColumnElement[str]:
    """One related record's key as `fields.join_keys` writes it inside a cell (quoted if it must be)."""
    text = cast(key, Text)
    return case(
        (text.regexp_match(_KEY_SPECIAL), literal('"') + func.replace(text, '"', '""') + literal('"')),
        else_=text,
    )


def key_list_sql(key: ColumnElement[Any]) -> ColumnElement[str]:
    """The aggregate joining a row's related keys in key order, as `fields.join_keys` does."""
    return func.string_agg(joined_keys_sql(key), aggregate_order_by(literal(LIST_SEPARATOR), key))


def csv_line_columns(
    columns: Sequence[ColumnElement[str]], cells: Sequence[SqlCell]
) -> tuple[ColumnElement[str], ColumnElement[list[str | None]]]:
    """(line, cells to check) over the cells' texts `columns`: the row as a CSV line, and, for the rare
    row with a cell that needs the formula check, all its cells as an array (NULL for the others).

    Each cell is quoted and checked only when its `SqlCell` says it may need it.
    The flagged row's cells come as they are, not re-read from its line: a cell
    can be longer than the csv module reads in one field.
    """
    quoted = [
        _csv_cell(column) if cell.quoted else func.coalesce(column, literal(""))
        for column, cell in zip(columns, cells, strict=True)
    ]
    line: ColumnElement[str] = quoted[0]
    for text in quoted[1:]:
        line = line + literal(",") + text
    needs_check = [_not_plain(column) for column, cell in zip(columns, cells, strict=True) if cell.checked]
    flagged = func.coalesce(or_(false(), *needs_check), false())
    to_check = case((flagged, postgresql.array([cast(column, Text) for column in columns])), else_=null())
    return line, to_check


def _csv_cell(text: ColumnElement[str]) -> ColumnElement[str]:
    return case(
        (text.regexp_match(_CSV_SPECIAL), literal('"') + func.replace(text, '"', '""') + literal('"')),
        else_=func.coalesce(text, literal("")),
    )


def _not_plain(text: ColumnElement[str]) -> ColumnElement[bool]:
    first = func.ascii(text)
    plain = or_(*(first.between(low, high) for low, high in _ASCII_RANGES))
    return and_(text != "", ~plain)


def checked_line(cells: Sequence[str | None]) -> str:
    """A flagged row's CSV line, every cell through the formula rule (`writing.spreadsheet_text`)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_text(cell) for cell in cells])  # quoted as the Python path does
    return buffer.getvalue().removesuffix(LINE_END)
