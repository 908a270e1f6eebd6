"""The rows of an uploaded file, whatever its format: header checks, cell checks, limits.

Each format's reader (`reading_csv`, `reading_xlsx`, `reading_json`) turns
its file into records of text cells and hands them to a `TableBuilder`, which
applies the rules every format shares, so a CSV and an XLSX file with the
same content are refused, or read, the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from openpyxl.utils import get_column_letter

from backend.errors import AppError
from backend.exports import restore_text
from backend.services.exchange.fields import LIST_SEPARATOR, header_key

if TYPE_CHECKING:
    from backend.config import Settings

Cell = str | list[str] | None  # text (None for an empty cell); a list only from JSON lists
# Longest header text quoted back in a message: enough to recognise it, not a screenful.
_QUOTED_HEADER_CHARS = 40
# Integral numbers with more digits than this keep their exponent ("1E+400"), rather than spelling out zeros.
_MAX_SPELLED_DIGITS = 100
# What PostgreSQL cannot store in text: NUL, and halves of UTF-16 surrogate pairs standing alone.
# JSON's \u escapes can spell them; XML cannot, but a workbook is checked too (cheap next to parsing it).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
NOT_A_LIST = "A JSON import is a list of objects, one per row."
# No model has this many fields; a wider file is refused before its rows are padded out to its width
# (a tiny file of many headers would otherwise cost memory as headers x rows).
MAX_COLUMNS = 1_000


def refuse_width(columns: int) -> None:
    """`BadFile` for a file with more columns (or JSON keys) than any model could take."""
    if columns > MAX_COLUMNS:
        raise BadFile(
            f"The file has {columns:,} columns; an import takes at most {MAX_COLUMNS:,}: "
            "keep only the columns of the records you import."
        )


class BadFile(AppError):
    """A file that cannot be imported at all; the message is one sentence saying what to change.

    An `AppError` rather than a `ValidationFailed`: it is about the whole file,
    not a field, and must not be mistaken for one row's validation problems.
    """


@dataclass(frozen=True)
class ImportLimits:
    """What one imported file may hold (IMPORT_MAX_BYTES, IMPORT_MAX_ROWS, IMPORT_MAX_CELL_CHARS)."""

    max_bytes: int
    max_rows: int
    max_cell_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(
            max_bytes=settings.import_max_bytes,
            max_rows=settings.import_max_rows,
            max_cell_chars=settings.import_max_cell_chars,
        )


@dataclass
class Table:
    """A file read: its headers, and its rows as text cells aligned to them."""

    format: str  # "csv" | "xlsx" | "json"
    headers: list[str]  # as written in the file (stripped)
    # (row number as a person counts it in the file, cells aligned to headers); blank rows left out
    rows: list[tuple[int, list[Cell]]]
    notes: list[str] = field(default_factory=list)  # e.g. "Read as Windows-1252: the file is not UTF-8."


def number_text(value: float | Decimal) -> str:
    """A number as its plain text: 12.0 -> "12", 12.5 -> "12.5", never a float's binary noise."""
    decimal = value if isinstance(value, Decimal) else Decimal(str(value))
    if (
        decimal.is_finite()
        and decimal == decimal.to_integral_value()
        and decimal.adjusted() < _MAX_SPELLED_DIGITS
    ):
        return str(int(decimal))
    return str(decimal)


def clean_text(text: str) -> str | None:
    """A spreadsheet cell's text (CSV, XLSX) as imported: without the quote an export put before
    text a spreadsheet would run (`restore_text`; the quote comes first, before any whitespace),
    then without surrounding whitespace; None when nothing is left."""
    if text[:1] == "'":
        text = restore_text(text)
    return text.strip() or None


class TableBuilder:
    """Collects a file's header and rows, refusing the file at the first thing that cannot be imported.

    `add` takes every record of the file in order, cells already cleaned
    (`clean_text`, or stripped in JSON); the first record that is not blank is the header.
    Messages name a place as a person finds it in the file: "Row 7, column C"
    in a workbook, "Row 7, column 3" in CSV, "Item 7, key “Price”" in JSON.
    `check_characters=False` skips the search for characters that cannot be
    stored, for a reader that knows its file holds none.
    """

    def __init__(
        self, format: str, limits: ImportLimits, *, notes: Sequence[str] = (), check_characters: bool = True
    ) -> None:
        self.format = format
        self.limits = limits
        self.notes = list(notes)
        self.headers: list[str | None] | None = None
        self.rows: list[tuple[int, list[Cell]]] = []
        self._width = 0
        self._unnamed: list[int] = []  # columns under a blank header: allowed while they stay empty
        self._kept: list[int] = []
        self._text_cells = format != "json"  # only JSON has lists
        self._check_characters = check_characters
        self._plain_text = self._text_cells and not check_characters

    def add(self, number: int, cells: list[Cell]) -> None:
        if not any(cells):
            return  # a blank record: skipped, though it still counts in the row numbers
        if self.headers is None:
            self.set_headers(number, cells)
            return
        if len(self.rows) >= self.limits.max_rows:
            raise BadFile(
                f"The file has more than {self.limits.max_rows:,} rows; the limit is "
                f"{self.limits.max_rows:,} (IMPORT_MAX_ROWS): split it into smaller files."
            )
        if self._plain_text:
            # The whole check of a CSV row, inlined: it runs for every row of a large file.
            if max(map(len, filter(None, cells))) > self.limits.max_cell_chars:
                self._refuse_cell(number, cells, header=False)
        else:
            self._check_cells(number, cells, header=False)
        if len(cells) != self._width or self._unnamed:
            cells = self._fit(number, cells)
        self.rows.append((number, cells))

    def table(self) -> Table:
        if self.format == "json" and not self.rows:
            raise BadFile(f"The file holds no rows. {NOT_A_LIST}")
        if self.headers is None:
            raise BadFile("The file is empty: it has no header row and no data.")
        if not self.rows:
            raise BadFile("The file has a header row but no data rows.")
        headers = [header for header in self.headers if header is not None]
        return Table(self.format, headers, self.rows, self.notes)

    def set_headers(self, number: int, cells: list[Cell]) -> None:
        """Take `cells` as the header (`add` does so with the first record that is not blank)."""
        refuse_width(len(cells))
        self._check_cells(number, cells, header=True)
        headers = [cell if isinstance(cell, str) else None for cell in cells]
        # A sheet's trailing blank headers are formatting; a blank JSON key is written on purpose.
        while self.format != "json" and headers and headers[-1] is None:
            headers.pop()
        seen: dict[str, int] = {}
        for index, header in enumerate(headers):
            key = header_key(header) if header is not None else ""
            if not key:
                # A header of punctuation only ("#") cannot collide with a field: the import ignores it.
                continue
            if key in seen:
                first = seen[key]
                if self.format == "json":
                    raise BadFile(
                        f"The key {quoted(header)} repeats {quoted(headers[first])} (keys are matched "
                        "regardless of case, spaces and punctuation): keep only one of them."
                    )
                raise BadFile(
                    f"The header {quoted(header)} ({self._column_name(index)}) repeats "
                    f"{quoted(headers[first])} ({self._column_name(first)}), as headers are matched "
                    "regardless of case, spaces and punctuation: keep only one of them."
                )
            seen[key] = index
        self.headers = headers
        self._width = len(headers)
        self._unnamed = [index for index, header in enumerate(headers) if header is None]
        self._kept = [index for index, header in enumerate(headers) if header is not None]

    def _check_cells(self, number: int, cells: list[Cell], *, header: bool) -> None:
        # Runs for every row of a large file: a few C calls in the common case, and the cell by cell
        # search for the rare row that fails.
        if self._text_cells:
            texts: list[str] = list(filter(None, cells))  # type: ignore[arg-type]
        else:
            texts = [LIST_SEPARATOR.join(cell) if isinstance(cell, list) else cell for cell in cells if cell]
        too_long = max(map(len, texts), default=0) > self.limits.max_cell_chars
        if too_long or (self._check_characters and _UNSTORABLE.search("".join(texts))):
            self._refuse_cell(number, cells, header=header)

    def _refuse_cell(self, number: int, cells: list[Cell], *, header: bool) -> None:
        limit = self.limits.max_cell_chars
        for index, cell in enumerate(cells):
            text = LIST_SEPARATOR.join(cell) if isinstance(cell, list) else cell or ""
            place = self._header_place(index) if header else self._place(number, index)
            if len(text) > limit:
                raise BadFile(
                    f"{place} has {len(text):,} characters; the limit is {limit:,} (IMPORT_MAX_CELL_CHARS)."
                )
            found = _UNSTORABLE.search(text)
            if found:
                what = (
                    "a NUL character"
                    if found.group() == "\x00"
                    else f"the invalid character {found.group()!a}"
                )
                raise BadFile(f"{place} holds {what}, which cannot be stored: remove it and try again.")

    def _fit(self, number: int, cells: list[Cell]) -> list[Cell]:
        """`cells` aligned to the named columns: padded, or refused when a value has no header."""
        width = self._width
        if len(cells) > width:
            used = max(index for index, cell in enumerate(cells) if cell) + 1
            if used > width:
                raise BadFile(
                    f"Row {number} has {used} cells but the header names {_columns(width)}: "
                    "give every column a header, or remove the extra cells."
                )
            cells = cells[:width]
        elif len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        for index in self._unnamed:
            if cells[index]:
                raise BadFile(self._unnamed_message(number, index))
        return [cells[index] for index in self._kept] if self._unnamed else cells

    def _unnamed_message(self, number: int, index: int) -> str:
        if self.format == "json":
            return f"Item {number} has a value under a blank key: name the key, or remove its values."
        return (
            f"Row {number} has a value in {self._column_name(index)}, which has no header: "
            "name the column, or remove its values."
        )

    def _header_place(self, index: int) -> str:
        return "A key" if self.format == "json" else f"The header of {self._column_name(index)}"

    def _place(self, number: int, index: int) -> str:
        return f"{'Item' if self.format == 'json' else 'Row'} {number}, {self._column_name(index)}"

    def _column_name(self, index: int) -> str:
        header = self.headers[index] if self.headers is not None and index < len(self.headers) else None
        if self.format == "json":
            return f"key {quoted(header)}"
        column = get_column_letter(index + 1) if self.format == "xlsx" else str(index + 1)
        return f"column {column} ({quoted(header)})" if header is not None else f"column {column}"


def quoted(header: str | None) -> str:
    text = header or ""
    if len(text) > _QUOTED_HEADER_CHARS:
        text = text[: _QUOTED_HEADER_CHARS - 1] + "…"
    return f"“{text}”"


def _columns(count: int) -> str:
    return "1 column" if count == 1 else f"{count} columns"
