"""XLSX workbooks: the first worksheet, every cell as text, formulas as their text (never run).

The archive is inspected before openpyxl opens it, so a zip bomb named
.xlsx is refused from its directory alone. Row numbers are the sheet's.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, time, timedelta
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from backend.services.exchange.reading_rows import (
    BadFile,
    ImportLimits,
    Table,
    TableBuilder,
    clean_text,
    number_text,
    quoted,
)

MAX_ENTRIES = 10_000
MAX_RATIO = 200
# An XLSX is XML zipped, around a tenth of its unzipped size; what fits in the file limit may unzip larger.
EXPANSION = 8
MIN_EXPANDED_BYTES = 64 * 1024 * 1024
NOT_XLSX = "The file is not a valid XLSX workbook"
UNREADABLE = f"{NOT_XLSX}: open it in a spreadsheet, save it as .xlsx and upload it again."


def read_xlsx(data: bytes, limits: ImportLimits) -> Table:
    check_archive(data, limits)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # a broken workbook fails anywhere in openpyxl, with anything
        raise BadFile(UNREADABLE) from exc
    try:
        return _read_first_sheet(workbook, limits)
    except BadFile:
        raise
    except Exception as exc:  # read-only mode parses the sheet while its rows are read
        raise BadFile(UNREADABLE) from exc
    finally:
        workbook.close()


def check_archive(data: bytes, limits: ImportLimits) -> None:
    """Refuse a file that is not a zip, or that unzips to far more than it weighs (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise BadFile(f"{NOT_XLSX} (it is not a zip archive): save it as .xlsx and upload it again.") from exc
    if len(entries) > MAX_ENTRIES:
        raise BadFile(f"{NOT_XLSX}: it holds more than {MAX_ENTRIES:,} parts.")
    expanded_limit = max(EXPANSION * limits.max_bytes, MIN_EXPANDED_BYTES)
    if sum(entry.file_size for entry in entries) > expanded_limit:
        raise BadFile(
            f"The workbook expands to more than {expanded_limit // 2**20:,} MB when unzipped, more than an "
            f"import unpacks ({EXPANSION} × IMPORT_MAX_BYTES, at least {MIN_EXPANDED_BYTES // 2**20} MB): "
            "save it as CSV and upload that instead."
        )
    for entry in entries:
        if entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise BadFile(
                f"{NOT_XLSX}: its part {quoted(entry.filename)} expands more than {MAX_RATIO} times "
                "when unzipped, as a zip bomb does."
            )


def _read_first_sheet(workbook: Workbook, limits: ImportLimits) -> Table:
    if not workbook.worksheets:
        raise BadFile("The workbook has no worksheet: put the rows on its first sheet.")
    sheet = workbook.worksheets[0]
    notes = []
    if len(workbook.sheetnames) > 1:
        count = len(workbook.sheetnames)
        notes.append(f"The workbook has {count} sheets; only the first, {quoted(sheet.title)}, was read.")
    if isinstance(sheet, ReadOnlyWorksheet):
        # The size a sheet declares can be wrong (some writers never update it): rows are read to their end.
        sheet.reset_dimensions()
    builder = TableBuilder("xlsx", limits, notes=notes)
    # Missing rows come as empty ones, so counting gives the sheet's row numbers.
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        builder.add(number, [_text(value, number, index) for index, value in enumerate(values)])
    return builder.table()


def _text(value: Any, number: int, index: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    formula = getattr(value, "text", None)  # an array formula: its text, as any other formula
    if isinstance(formula, str):
        return clean_text(formula)
    raise BadFile(
        f"Row {number}, column {get_column_letter(index + 1)} holds a {type(value).__name__} that cannot "
        "be read as text: replace it with its value."
    )
