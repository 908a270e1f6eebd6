"""Exported rows as a file: CSV, XLSX or JSON, streamed as bytes.

Every format holds the same cells (`exporting.export_rows`), so any of them
imports back unchanged. CSV and XLSX are opened by spreadsheets: each text
cell goes through `backend.exports.spreadsheet_safe`, so a cell that could
start a formula is shown as text, never run. JSON is read by programs: its
cells are written as they are, and several references stay a list.

CSV and JSON are written one chunk per batch of rows as the rows arrive; an
XLSX file is a zip that is only complete at its end, so it is built in a
temporary file (openpyxl's write-only mode keeps memory flat) and then sent.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import string
import tempfile
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

from openpyxl import Workbook

from backend.exports import spreadsheet_safe
from backend.services.exchange.fields import join_keys
from backend.services.exchange.reading import FORMATS
from backend.services.exchange.reading_rows import Cell  # one cell type for files in and out

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
CHUNK_ROWS = 2000  # rows encoded together into one chunk of bytes
FILE_CHUNK_BYTES = 1 << 20  # how much of a finished XLSX file is sent at a time
XLSX_ROWS_BETWEEN_PAUSES = 200
_PLAIN_STARTS = frozenset(string.ascii_letters + string.digits)
# Characters XML 1.0 cannot hold, which openpyxl refuses in a cell (controls other than tab and newlines).
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def export_filename(model: type[Any], format: str) -> str:
    """The download's file name: the model's table and the format, e.g. "product.csv"."""
    return f"{model.__tablename__}.{format}"


async def encode(
    format: str, headers: Sequence[str], rows: AsyncIterator[list[Cell]]
) -> AsyncIterator[bytes]:
    """`headers` then `rows` as a file of `format` ("csv", "xlsx" or "json"), in chunks of bytes."""
    if format == "csv":
        chunks = _csv(headers, rows)
    elif format == "xlsx":
        chunks = _xlsx(headers, rows)
    elif format == "json":
        chunks = _json(headers, rows)
    else:
        raise ValueError(f"Cannot write {format!r} files: use one of {', '.join(FORMATS)}.")
    async for chunk in chunks:
        yield chunk


def spreadsheet_text(cell: Cell) -> str:
    """A cell as a spreadsheet must get it: references joined, nothing it could run as a formula."""
    if cell is None:
        return ""
    text = join_keys(cell) if isinstance(cell, list) else cell
    # Most cells are empty or start with a plain letter or digit, which no spreadsheet takes for a
    # formula (nor does NFKC turn it into one); the full check costs microseconds a cell, too much
    # for a million rows.
    if not text or text[0] in _PLAIN_STARTS:
        return text
    return str(spreadsheet_safe(text))


def csv_header(headers: Sequence[str]) -> bytes:
    """A CSV file's first line. No byte order mark: files round-trip through tools that would keep it
    in the first header."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_text(header) for header in headers])
    return buffer.getvalue().encode()


async def _csv(headers: Sequence[str], rows: AsyncIterator[list[Cell]]) -> AsyncIterator[bytes]:
    yield csv_header(headers)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    pending: list[list[str]] = []
    plain = _PLAIN_STARTS
    async for row in rows:
        # `spreadsheet_text`'s common cases inline (empty, or plain text): a call per cell would cost a
        # million-row export seconds.
        texts = [
            "" if not cell else cell if type(cell) is str and cell[0] in plain else spreadsheet_text(cell)
            for cell in row
        ]
        pending.append(texts)
        if len(pending) >= CHUNK_ROWS:
            writer.writerows(pending)
            pending.clear()
            yield _drain(buffer)
    if pending:
        writer.writerows(pending)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


async def _json(headers: Sequence[str], rows: AsyncIterator[list[Cell]]) -> AsyncIterator[bytes]:
    yield b"["
    separator = "\n"
    pending: list[str] = []
    async for row in rows:
        pending.append(separator + json.dumps(dict(zip(headers, row, strict=True)), ensure_ascii=False))
        separator = ",\n"
        if len(pending) >= CHUNK_ROWS:
            yield "".join(pending).encode()
            pending.clear()
    pending.append("\n]\n")
    yield "".join(pending).encode()


async def _xlsx(headers: Sequence[str], rows: AsyncIterator[list[Cell]]) -> AsyncIterator[bytes]:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Export")
    saving = False
    try:
        sheet.append([_xlsx_text(header) for header in headers])
        count = 0
        async for row in rows:
            sheet.append([_xlsx_text(cell) for cell in row])
            count += 1
            if count % XLSX_ROWS_BETWEEN_PAUSES == 0:
                await asyncio.sleep(0)  # openpyxl is slow (~0.2 ms a row): let other requests in
        # Zipping a large sheet takes seconds: in a thread, which also owns the file (see `_saved`).
        saving = True
        file = await asyncio.to_thread(_saved, workbook)
    finally:
        if not saving:
            # openpyxl deletes its own temporary file of rows only when the workbook is saved:
            # an export stopped half-way (a closed download, a failed query) is saved to nowhere.
            await asyncio.to_thread(workbook.save, os.devnull)
    with file:
        while chunk := await asyncio.to_thread(file.read, FILE_CHUNK_BYTES):
            yield chunk


def _saved(workbook: Workbook) -> IO[bytes]:
    """`workbook` saved into an anonymous temporary file (gone once closed), read from its start.

    Made and filled in the same thread: should the download stop meanwhile, the
    save still completes and the file is dropped, never closed under the writer.
    """
    file = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    try:
        workbook.save(file)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


def _xlsx_text(cell: Cell) -> str:
    """A cell's text for openpyxl, which stores a string as text unless it starts with "=" (neutralised
    away here) and refuses the control characters XML cannot hold (shown as U+FFFD instead)."""
    return _NOT_IN_XML.sub("\ufffd", spreadsheet_text(cell))
