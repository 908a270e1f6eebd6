"""Uploaded files as tables: how every import (admin, CLI, job) reads its file.

`read_table` returns a `Table`: the headers as written, then the rows as
text cells aligned to them, each numbered as a person counts rows in the
file (CSV and XLSX: the header is row 1, the first data row 2; JSON: items
from 1), and notes on anything read on a guess (an encoding, other sheets).
A file that cannot be imported is refused whole with a `BadFile`, whose
message says what to change: too large, empty, a format or encoding this
does not read, a broken structure, a cell too long or a row too wide.

The format comes from the file's extension, else from its content; each has
its module (`reading_csv`, `reading_xlsx`, `reading_json`), over the rules
they share (`reading_rows`).
"""

from __future__ import annotations

import codecs
import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

from backend.services.exchange.reading_csv import read_csv
from backend.services.exchange.reading_json import read_json
from backend.services.exchange.reading_rows import BadFile, Cell, ImportLimits, Table
from backend.services.exchange.reading_xlsx import read_xlsx

__all__ = ["FORMATS", "BadFile", "Cell", "ImportLimits", "Table", "detect_format", "read_table"]

FORMATS = ("csv", "xlsx", "json")
TAKEN = "imports take CSV (UTF-8), XLSX and JSON files; save the data as one of those and upload it again"
WINDOWS_1252_NOTE = "Read as Windows-1252: the file is not UTF-8."
ZIP_SIGNATURE = b"PK\x03\x04"
_OLD_EXCEL = "an Excel 97-2003 (.xls) or password-protected workbook"
_SIGNATURES = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", _OLD_EXCEL),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
)
# Formats people export spreadsheets and documents to that these readers do not take.
_REFUSED_EXTENSIONS = frozenset(
    {"xls", "xlsm", "xlsb", "ods", "numbers", "pdf", "doc", "docx", "odt", "rtf"}
    | {"png", "jpg", "jpeg", "gif", "webp", "heic", "bmp", "tif", "tiff", "svg", "zip", "gz"}
)
_WIDE_ENCODINGS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SNIFF_BYTES = 8192
_CHECK_BYTES = 2**20
_UNDEFINED_IN_WINDOWS_1252 = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def detect_format(filename: str, data: bytes) -> str:
    """The format of a file, "csv", "xlsx" or "json": by its extension, else by its content."""
    extension = PurePath(filename).suffix.lower().removeprefix(".")
    if extension in FORMATS:
        return extension
    if extension in _REFUSED_EXTENSIONS:
        raise BadFile(f"A .{extension} file cannot be imported: {TAKEN}.")
    if data.startswith(ZIP_SIGNATURE):
        return "xlsx"
    sample = data[:_SNIFF_BYTES]
    kind = _binary_kind(sample)
    if kind is None and b"\x00" in sample and not sample.startswith(tuple(bom for bom, _ in _WIDE_ENCODINGS)):
        kind = "not text (it holds NUL bytes)"
    if kind is not None:
        raise BadFile(f"The file is {kind}: {TAKEN}.")
    start = sample.removeprefix(codecs.BOM_UTF8).lstrip()
    return "json" if start[:1] in (b"[", b"{") else "csv"


def read_table(data: bytes, *, filename: str, limits: ImportLimits, format: str | None = None) -> Table:
    """The rows of an uploaded file; `BadFile` when it cannot be imported (see the module's docstring)."""
    if len(data) > limits.max_bytes:
        raise BadFile(
            f"The file is {_size(len(data), up=True)}; the limit is {_size(limits.max_bytes, up=False)} "
            "(IMPORT_MAX_BYTES)."
        )
    if not data:
        raise BadFile("The file is empty.")
    if format is None:
        format = detect_format(filename, data)
    elif format.lower() in FORMATS:
        format = format.lower()
    else:
        raise BadFile(f"“{format}” is not a format this import reads: {TAKEN}.")
    if format == "xlsx":
        if _binary_kind(data) == _OLD_EXCEL:
            raise BadFile(
                f"The file is {_OLD_EXCEL}: save it as .xlsx, without a password, and upload it again."
            )
        return read_xlsx(data, limits)
    kind = _binary_kind(data) or (
        "a zip archive (an XLSX workbook?)" if data.startswith(ZIP_SIGNATURE) else None
    )
    if kind is not None:
        raise BadFile(f"The file is {kind}, not {format.upper()} text: {TAKEN}.")
    encoding, notes = text_encoding(data, format)
    with _no_cycle_collection():
        if format == "csv":
            return read_csv(data, encoding, limits, notes=notes)
        return read_json(data.decode(encoding), limits, notes=notes)


def text_encoding(data: bytes, format: str) -> tuple[str, list[str]]:
    """How to decode a CSV or JSON file: UTF-8, else Windows-1252 (with a note saying so)."""
    advice = (
        "save it as CSV UTF-8 and upload it again"
        if format == "csv"
        else "save it as UTF-8 and upload it again"
    )
    for mark, encoding in _WIDE_ENCODINGS:
        if data.startswith(mark):
            raise BadFile(f"The file is {encoding} text: {advice}.")
    if b"\x00" in data:
        raise BadFile(
            f"The file holds NUL bytes, so it is not UTF-8 text (UTF-16 perhaps, or not text): {advice}."
        )
    if data.isascii():
        return "utf-8", []
    if data.startswith(codecs.BOM_UTF8):
        if not _is_utf8(data):
            raise BadFile(f"The file is marked as UTF-8 but is not valid UTF-8: {advice}.")
        return "utf-8-sig", []
    if _is_utf8(data):
        return "utf-8", []
    undefined = [position for position in map(data.find, _UNDEFINED_IN_WINDOWS_1252) if position >= 0]
    if undefined:
        position = min(undefined)
        raise BadFile(
            f"The file is neither UTF-8 nor Windows-1252 text (byte 0x{data[position]:02X} at position "
            f"{position:,}): {advice}."
        )
    return "cp1252", [WINDOWS_1252_NOTE]


def _is_utf8(data: bytes) -> bool:
    # In slices, so that checking a large file does not build its whole text.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHECK_BYTES):
            decoder.decode(view[start : start + _CHECK_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pauses Python's cycle collector while the rows of a text file are built.

    A table of many rows is many containers, which the collector walks again
    and again as they accumulate (all of them each time they grow by a
    quarter): that doubled the time to read a large CSV file, to find no
    cycle. Reference counting still frees everything else meanwhile. (A
    workbook is not read faster enough to matter: openpyxl's parsing is the
    cost there.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _binary_kind(data: bytes) -> str | None:
    return next((kind for signature, kind in _SIGNATURES if data.startswith(signature)), None)


def _size(size: int, *, up: bool) -> str:
    """A size in MB or KB to a tenth, rounded away from the limit it is compared with."""
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            tenths = (math.ceil if up else math.floor)(size * 10 / scale)
            return f"{tenths / 10:,g} {unit}"
    return f"{size:,} bytes"
