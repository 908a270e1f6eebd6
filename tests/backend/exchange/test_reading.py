"""Reading uploaded files: CSV, XLSX and JSON as tables of text, and every kind of file refused whole."""

from __future__ import annotations

import codecs
import gc
import io
import json
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as clock_time

import openpyxl
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from openpyxl.worksheet.formula import ArrayFormula

from backend.config import load_settings
from backend.errors import AppError, ValidationFailed
from backend.exports import csv_line, spreadsheet_safe
from backend.services.exchange.reading import (
    FORMATS,
    BadFile,
    ImportLimits,
    Table,
    detect_format,
    read_table,
)

MB = 2**20
LIMITS = ImportLimits(max_bytes=50 * MB, max_rows=1000, max_cell_chars=1000)
TAKEN = "CSV (UTF-8), XLSX and JSON"


def read(data: bytes, filename: str = "upload.csv", limits: ImportLimits = LIMITS, **kwargs: str) -> Table:
    return read_table(data, filename=filename, limits=limits, **kwargs)


def refusal(data: bytes, filename: str = "upload.csv", limits: ImportLimits = LIMITS) -> str:
    with pytest.raises(BadFile) as caught:
        read(data, filename, limits)
    return caught.value.message


def workbook(*rows: list[object], sheets: int = 1) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Products"
    for row in rows:
        sheet.append(row)
    for number in range(1, sheets):
        book.create_sheet(f"Sheet {number + 1}").append(["not", "read"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rezipped(data: bytes, change: Callable[[str, bytes], bytes]) -> bytes:
    """The workbook `data` with each part passed through `change(name, content)`."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            target.writestr(entry.filename, change(entry.filename, source.read(entry)))
    return buffer.getvalue()


# --- the contract ---


def test_limits_come_from_the_settings() -> None:
    settings = load_settings(import_max_bytes=2 * MB, import_max_rows=10, import_max_cell_chars=100)
    assert ImportLimits.from_settings(settings) == ImportLimits(
        max_bytes=2 * MB, max_rows=10, max_cell_chars=100
    )
    assert FORMATS == ("csv", "xlsx", "json")


def test_a_bad_file_is_refused_as_a_user_facing_error_not_as_field_problems() -> None:
    error = BadFile("Row 7 has 12 cells but the header names 10 columns.")
    assert isinstance(error, AppError)  # the admin shows it as a 400 page, the CLI as "Error: ..."
    assert not isinstance(error, ValidationFailed)
    assert error.message == str(error) == "Row 7 has 12 cells but the header names 10 columns."


# --- format ---


@pytest.mark.parametrize(
    ("filename", "expected"),
    [("products.csv", "csv"), ("PRODUCTS.CSV", "csv"), ("a.Xlsx", "xlsx"), ("dump.JSON", "json")],
)
def test_the_extension_names_the_format_in_any_case(filename: str, expected: str) -> None:
    assert detect_format(filename, b'[{"a": 1}]') == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04rest of a zip", "xlsx"),
        (b'[{"SKU": "A-1"}]', "json"),
        (b'  \r\n {"SKU": "A-1"}', "json"),
        (codecs.BOM_UTF8 + b'[{"SKU": "A-1"}]', "json"),
        (b"SKU,Name\nA-1,Lamp\n", "csv"),
        (b"SKU;Name\n", "csv"),
    ],
)
def test_without_a_known_extension_the_content_names_the_format(data: bytes, expected: str) -> None:
    assert detect_format("upload", data) == expected
    assert detect_format("products.txt", data) == expected


@pytest.mark.parametrize("filename", ["old.xls", "sheet.ods", "report.PDF", "photo.png", "macro.xlsm"])
def test_a_file_of_another_format_is_refused_by_its_extension(filename: str) -> None:
    with pytest.raises(BadFile) as caught:
        detect_format(filename, b"ID,Name\n1,x\n")
    extension = filename.rsplit(".", 1)[1].lower()
    assert caught.value.message == (
        f"A .{extension} file cannot be imported: imports take {TAKEN} files; "
        "save the data as one of those and upload it again."
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "an image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "an image"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100),
            "an Excel 97-2003 (.xls) or password-protected workbook",
        ),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "not text (it holds NUL bytes)"),
    ],
)
def test_a_binary_file_is_refused_by_its_content(data: bytes, kind: str) -> None:
    for filename in ("upload", "data.bin"):
        assert refusal(data, filename) == (
            f"The file is {kind}: imports take {TAKEN} files; "
            "save the data as one of those and upload it again."
        )


def test_a_binary_file_named_as_text_is_refused() -> None:
    assert refusal(b"%PDF-1.7\n", "products.csv").startswith("The file is a PDF document, not CSV text:")
    assert refusal(workbook(["ID"], [1]), "products.json").startswith(
        "The file is a zip archive (an XLSX workbook?), not JSON text:"
    )


def test_the_format_can_be_given_and_overrides_the_name() -> None:
    table = read(b'[{"SKU": "A-1"}]', "upload.csv", format="JSON")
    assert (table.format, table.headers, table.rows) == ("json", ["SKU"], [(1, ["A-1"])])
    with pytest.raises(BadFile, match="“xml” is not a format this import reads"):
        read(b"<a/>", "upload.xml", format="xml")


# --- size and emptiness ---


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read() -> None:
    # NUL bytes would be refused too, if the file were read at all.
    data = bytes(61 * MB)
    assert refusal(data, limits=ImportLimits(50 * MB, 1000, 1000)) == (
        "The file is 61 MB; the limit is 50 MB (IMPORT_MAX_BYTES)."
    )
    assert refusal(bytes(50 * MB + 1), limits=ImportLimits(50 * MB, 1000, 1000)) == (
        "The file is 50.1 MB; the limit is 50 MB (IMPORT_MAX_BYTES)."
    )
    assert refusal(b"ID\n" + b"1\n" * 1000, limits=ImportLimits(1024, 1000, 1000)) == (
        "The file is 2 KB; the limit is 1 KB (IMPORT_MAX_BYTES)."
    )


def test_a_file_at_the_byte_limit_is_read() -> None:
    data = b"ID\n" + b"1\n" * 10
    assert len(read(data, limits=ImportLimits(len(data), 1000, 1000)).rows) == 10


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "a.csv", "The file is empty."),
        (b"\r\n\n  \n,,\n", "a.csv", "The file is empty: it has no header row and no data."),
        (b"ID,SKU\n", "a.csv", "The file has a header row but no data rows."),
        (b"ID,SKU\n,\n\n", "a.csv", "The file has a header row but no data rows."),
        (b"[]", "a.json", "The file holds no rows. A JSON import is a list of objects, one per row."),
        (b"[{}, {}]", "a.json", "The file holds no rows. A JSON import is a list of objects, one per row."),
    ],
)
def test_a_file_without_rows_is_refused(data: bytes, filename: str, message: str) -> None:
    assert refusal(data, filename) == message


def test_a_workbook_without_rows_is_refused() -> None:
    assert refusal(workbook(), "a.xlsx") == "The file is empty: it has no header row and no data."
    assert refusal(workbook(["ID", "SKU"]), "a.xlsx") == "The file has a header row but no data rows."


# --- encoding ---


def test_utf8_is_read_with_or_without_a_byte_order_mark() -> None:
    for data in ("SKU,Name\nA-1,Café ☕\n".encode(), codecs.BOM_UTF8 + "SKU,Name\nA-1,Café ☕\n".encode()):
        table = read(data)
        assert (table.headers, table.rows, table.notes) == (["SKU", "Name"], [(2, ["A-1", "Café ☕"])], [])


def test_windows_1252_is_read_with_a_note() -> None:
    table = read("SKU;Name;Price\nA-1;Crème brûlée;€ 12,50\n".encode("cp1252"))
    assert table.rows == [(2, ["A-1", "Crème brûlée", "€ 12,50"])]
    assert table.notes == ["Read as Windows-1252: the file is not UTF-8."]
    table = read('[{"Name": "Crème"}]'.encode("cp1252"), "a.json")
    assert (table.rows, table.notes) == ([(1, ["Crème"])], ["Read as Windows-1252: the file is not UTF-8."])


@pytest.mark.parametrize(
    ("mark", "encoding", "name"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    ],
)
def test_utf16_and_utf32_are_refused(mark: bytes, encoding: str, name: str) -> None:
    data = mark + "SKU,Name\nA-1,Lamp\n".encode(encoding)
    assert refusal(data) == f"The file is {name} text: save it as CSV UTF-8 and upload it again."
    assert refusal(data, "a.json") == f"The file is {name} text: save it as UTF-8 and upload it again."


def test_utf16_without_a_byte_order_mark_is_refused_for_its_nul_bytes() -> None:
    assert refusal("SKU,Name\nA-1,Lamp\n".encode("utf-16-le")) == (
        "The file holds NUL bytes, so it is not UTF-8 text (UTF-16 perhaps, or not text): "
        "save it as CSV UTF-8 and upload it again."
    )


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
def test_bytes_that_windows_1252_does_not_define_are_refused(byte: int) -> None:
    data = b"SKU,Name\nA-1,Caf\xe9" + bytes([byte]) + b"\n"
    assert refusal(data) == (
        f"The file is neither UTF-8 nor Windows-1252 text (byte 0x{byte:02X} at position 17): "
        "save it as CSV UTF-8 and upload it again."
    )


def test_a_file_marked_utf8_that_is_not_is_refused() -> None:
    assert refusal(codecs.BOM_UTF8 + b"SKU\nCaf\xe9\n") == (
        "The file is marked as UTF-8 but is not valid UTF-8: save it as CSV UTF-8 and upload it again."
    )


# --- CSV ---


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"ID,Name,Price\n1,Lamp,12.50\n", ["1", "Lamp", "12.50"]),
        (b"ID;Name;Price\n1;Lamp;12,50\n", ["1", "Lamp", "12,50"]),  # Excel where "," is the decimal point
        (b"ID\tName\tPrice\n1\tLamp, red\t12.50\n", ["1", "Lamp, red", "12.50"]),
        (b'"ID;x",Name,Price\n1,Lamp,12.50\n', ["1", "Lamp", "12.50"]),  # a quoted ";" does not count
        (b"\n\nID;Name;Price\n1;Lamp;12,50\n", ["1", "Lamp", "12,50"]),  # the header, not a blank line
    ],
)
def test_the_delimiter_is_sniffed_from_the_header(data: bytes, expected: list[str]) -> None:
    (row,) = read(data).rows
    assert row[1] == expected


def test_a_single_column_uses_the_comma() -> None:
    assert read(b"Name\nLamp\n").rows == [(2, ["Lamp"])]
    assert refusal(b"Name\nLamp, red\n") == (
        "Row 2 has 2 cells but the header names 1 column: "
        "give every column a header, or remove the extra cells."
    )


def test_quoted_cells_keep_delimiters_quotes_and_line_breaks_and_rows_count_records() -> None:
    data = b'ID,Notes\r\n1,"first line\r\nsecond, line ""quoted"""\r\n2,plain\r\n'
    assert read(data).rows == [(2, ["1", 'first line\r\nsecond, line "quoted"']), (3, ["2", "plain"])]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_kind_of_line_ending_is_read(newline: bytes) -> None:
    data = newline.join([b"ID,Name", b"1,Lamp", b"2,Desk", b""])
    assert read(data).rows == [(2, ["1", "Lamp"]), (3, ["2", "Desk"])]


def test_cells_are_stripped_and_empty_cells_are_none() -> None:
    data = b'ID , Name ,Price\n 1 ,  Lamp\t,""\n2,, \n'
    table = read(data)
    assert table.headers == ["ID", "Name", "Price"]
    assert table.rows == [(2, ["1", "Lamp", None]), (3, ["2", None, None])]


def test_blank_rows_are_skipped_but_still_counted() -> None:
    data = b"ID,Name\n\n1,Lamp\n,\n  ,  \n2,Desk\n\n"
    assert read(data).rows == [(3, ["1", "Lamp"]), (6, ["2", "Desk"])]


def test_short_rows_are_padded_and_trailing_empty_cells_ignored() -> None:
    data = b"ID,Name,Price\n1\n2,Desk,3,,\n"
    assert read(data).rows == [(2, ["1", None, None]), (3, ["2", "Desk", "3"])]


def test_a_row_with_more_cells_than_headers_is_refused() -> None:
    data = b"A,B,C,D,E,F,G,H,I,J\n" + b"1,2,3,4,5,6,7,8,9,10\n" * 5 + b"1,2,3,4,5,6,7,8,9,10,11,12\n"
    assert refusal(data) == (
        "Row 7 has 12 cells but the header names 10 columns: "
        "give every column a header, or remove the extra cells."
    )


@pytest.mark.parametrize(
    ("data", "row"),
    [
        (b'ID,Name\n1,ok\n2,"closed"then text\n', 3),
        (b'ID,Name\n1,ok\n2,"never closed\n3,more\n', 3),
        (b'ID,Name\n1,"multi\nline"\n2,"broken"x\n', 3),
    ],
)
def test_malformed_quoting_is_refused_with_its_row(data: bytes, row: int) -> None:
    assert refusal(data) == (
        f"Row {row} has a quoted cell that is not closed, or text after its closing quote: "
        "put the whole cell in quotes and double every quote inside it."
    )


def test_a_quote_inside_an_unquoted_cell_is_text() -> None:
    assert read(b'ID,Name\n1,12" screen\n').rows == [(2, ["1", '12" screen'])]


def test_a_cell_over_the_limit_is_refused_with_its_row_column_and_sizes() -> None:
    data = b"ID,Description\n1,short\n2," + b"x" * 1001 + b"\n"
    assert refusal(data) == (
        "Row 3, column 2 (“Description”) has 1,001 characters; the limit is 1,000 (IMPORT_MAX_CELL_CHARS)."
    )
    assert refusal(b"I,Name\n1,x\n", limits=ImportLimits(MB, 10, 1)) == (
        "The header of column 2 has 4 characters; the limit is 1 (IMPORT_MAX_CELL_CHARS)."
    )


def test_cells_longer_than_the_csv_modules_own_limit_are_read() -> None:
    # The csv module refuses fields over 128 KiB unless told otherwise; the import's limit is what counts.
    cell = "y" * 200_000
    table = read(f"ID,Text\n1,{cell}\n".encode(), limits=ImportLimits(MB, 10, 300_000))
    assert table.rows == [(2, ["1", cell])]


def test_a_row_of_a_million_characters_is_refused_quickly_and_without_copies() -> None:
    data = b"ID,Name,Notes\n1,Lamp,ok\n2,Desk," + b"z" * 1_000_000 + b"\n3,Chair,ok\n"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = refusal(data, limits=ImportLimits(50 * MB, 1000, 65_536))
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == (
        "Row 3, column 3 (“Notes”) has 1,000,000 characters; the limit is 65,536 (IMPORT_MAX_CELL_CHARS)."
    )
    assert elapsed < 5  # linear work takes milliseconds; anything quadratic would take minutes
    assert peak < 16 * len(data)  # a handful of copies of the cell while it is parsed, no more


def test_more_rows_than_the_limit_are_refused_as_soon_as_one_too_many_is_seen() -> None:
    limits = ImportLimits(MB, max_rows=3, max_cell_chars=100)
    assert len(read(b"ID\n1\n2\n\n3\n", limits=limits).rows) == 3
    # The broken quote after the fourth row is never reached.
    data = b"ID\n1\n2\n3\n4\n" + b"5\n" * 1000 + b'"never closed\n'
    assert refusal(data, limits=limits) == (
        "The file has more than 3 rows; the limit is 3 (IMPORT_MAX_ROWS): split it into smaller files."
    )


# --- headers ---


def test_headers_are_kept_as_written_but_stripped() -> None:
    assert read(b" Unit price ,SKU\t,category_id\n1,A,2\n").headers == ["Unit price", "SKU", "category_id"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            b"SKU,Name, sku \n",
            "The header “sku” (column 3) repeats “SKU” (column 1), as headers are matched regardless of "
            "case, spaces and punctuation: keep only one of them.",
        ),
        (
            b"Unit price,unit_price\n",
            "The header “unit_price” (column 2) repeats “Unit price” (column 1), as headers are matched "
            "regardless of case, spaces and punctuation: keep only one of them.",
        ),
    ],
)
def test_a_header_repeated_in_another_spelling_is_refused(header: bytes, message: str) -> None:
    assert refusal(header + b"1,2,3\n") == message


def test_headers_of_punctuation_only_may_repeat() -> None:
    assert read(b"#,ID,#\n,1,\n").headers == ["#", "ID", "#"]


def test_a_blank_header_over_values_is_refused() -> None:
    assert refusal(b"ID,,Name\n1,,Lamp\n2,oops,Desk\n") == (
        "Row 3 has a value in column 2, which has no header: name the column, or remove its values."
    )


def test_a_blank_header_over_an_empty_column_is_dropped() -> None:
    table = read(b"ID,,Name,,\n1,,Lamp,,\n2, ,Desk\n")
    assert table.headers == ["ID", "Name"]
    assert table.rows == [(2, ["1", "Lamp"]), (3, ["2", "Desk"])]


# --- text a spreadsheet would run ---


def test_the_quote_an_export_adds_is_taken_off_and_a_typed_one_kept() -> None:
    rows = [["=1+1", "'quoted", "'plain", "@SUM(A1)", " =1", "plain"]]
    data = (csv_line(["A", "B", "C", "D", "E", "F"]) + "".join(csv_line(row) for row in rows)).encode()
    data = data.replace(b"''plain", b"'plain")  # typed by a person: an export never writes it
    assert read(data).rows == [(2, ["=1+1", "'quoted", "'plain", "@SUM(A1)", "=1", "plain"])]


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
def test_any_text_an_export_writes_to_csv_reads_back_as_it_was(text: str) -> None:
    # The csv module drops the spaces before an unquoted cell: a cell that starts with spaces then a
    # quote comes back without them, and so without the quote an export would have added.
    assume(not (text[:1] == " " and text.lstrip(" ")[:1] == "'"))
    data = (csv_line(["ID", "Value"]) + csv_line(["1", text])).encode()
    assert read(data).rows == [(2, ["1", text.strip() or None])]


def test_formulas_in_a_workbook_are_read_as_their_text_and_exported_text_is_restored() -> None:
    data = workbook(
        ["A", "B", "C"],
        [2, "=A2*2", spreadsheet_safe('=HYPERLINK("x")')],
        [3, "'typed", "''x"],
        [4, ArrayFormula("B4:B4", "=SUM(A2:A3*2)"), None],
    )
    assert read(data, "a.xlsx").rows == [
        (2, ["2", "=A2*2", '=HYPERLINK("x")']),
        (3, ["3", "'typed", "'x"]),
        (4, ["4", "=SUM(A2:A3*2)", None]),
    ]


def test_json_text_is_never_restored() -> None:
    assert read(b'[{"A": "\'=1", "B": "\'\'x"}]', "a.json").rows == [(1, ["'=1", "''x"])]


# --- XLSX ---


def test_a_workbook_is_read_as_text_with_the_sheets_row_numbers() -> None:
    data = workbook(
        ["ID", "Price", "Ratio", "Active", "Created", "Day", "At", "Name"],
        [1, 12.0, 0.1, True, datetime(2026, 1, 2, 3, 4, 5), date(2026, 1, 2), clock_time(9, 30), "  Lamp "],
        [],
        [2, 19.99, 1e-3, False, None, None, None, None],
        # A spreadsheet number is a float: a long whole number keeps its 17 significant digits.
        [3, 12345678901234567890, 2.5e15, None, None, None, None, "x"],
    )
    table = read(data, "products.xlsx")
    assert table.format == "xlsx"
    assert table.headers == ["ID", "Price", "Ratio", "Active", "Created", "Day", "At", "Name"]
    assert table.rows == [
        (2, ["1", "12", "0.1", "true", "2026-01-02T03:04:05", "2026-01-02T00:00:00", "09:30:00", "Lamp"]),
        (4, ["2", "19.99", "0.001", "false", None, None, None, None]),
        (5, ["3", "12345678901234570000", "2500000000000000", None, None, None, None, "x"]),
    ]
    assert table.notes == []


def test_only_the_first_sheet_is_read_with_a_note() -> None:
    table = read(workbook(["ID"], [1], sheets=3), "a.xlsx")
    assert table.rows == [(2, ["1"])]
    assert table.notes == ["The workbook has 3 sheets; only the first, “Products”, was read."]


def test_a_workbook_is_read_past_the_size_it_declares() -> None:
    data = workbook(["ID", "Name", "Price"], [1, "Lamp", 3], [2, "Desk", 4])

    def shrink(name: str, content: bytes) -> bytes:
        return content.replace(b'<dimension ref="A1:C3" />', b'<dimension ref="A1:A1" />')

    shrunk = rezipped(data, shrink)
    with zipfile.ZipFile(io.BytesIO(shrunk)) as archive:
        assert b'<dimension ref="A1:A1" />' in archive.read("xl/worksheets/sheet1.xml")
    assert read(shrunk, "a.xlsx").rows == [(2, ["1", "Lamp", "3"]), (3, ["2", "Desk", "4"])]


def test_workbook_rows_follow_the_shared_rules() -> None:
    assert refusal(workbook(["ID", "Name"], [1, "Lamp", "extra"]), "a.xlsx") == (
        "Row 2 has 3 cells but the header names 2 columns: "
        "give every column a header, or remove the extra cells."
    )
    assert refusal(workbook(["ID", None, "Name"], [1, "x", "Lamp"]), "a.xlsx") == (
        "Row 2 has a value in column B, which has no header: name the column, or remove its values."
    )
    assert refusal(workbook(["ID", "Notes"], [1, "n" * 1001]), "a.xlsx") == (
        "Row 2, column B (“Notes”) has 1,001 characters; the limit is 1,000 (IMPORT_MAX_CELL_CHARS)."
    )
    limits = ImportLimits(MB, max_rows=2, max_cell_chars=100)
    assert refusal(workbook(["ID"], [1], [2], [3]), "a.xlsx", limits) == (
        "The file has more than 2 rows; the limit is 2 (IMPORT_MAX_ROWS): split it into smaller files."
    )


def test_a_file_named_xlsx_that_is_not_a_zip_is_refused() -> None:
    assert refusal(b"ID,Name\n1,Lamp\n", "a.xlsx") == (
        "The file is not a valid XLSX workbook (it is not a zip archive): "
        "save it as .xlsx and upload it again."
    )
    assert refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "a.xlsx") == (
        "The file is an Excel 97-2003 (.xls) or password-protected workbook: save it as .xlsx, "
        "without a password, and upload it again."
    )


def test_a_zip_bomb_named_xlsx_is_refused_from_its_directory() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            spaces = b" " * (16 * MB)
            for _ in range(300 // 16 + 1):  # 300 MB of spaces, a few hundred KB zipped
                sheet.write(spaces)
    data = buffer.getvalue()
    assert len(data) < MB
    assert refusal(data, "a.xlsx", ImportLimits(50 * MB, 1000, 1000)) == (
        "The file is not a valid XLSX workbook: its part “xl/worksheets/sheet1.xml” "
        "expands more than 200 times when unzipped, as a zip bomb does."
    )


def test_a_workbook_that_unzips_too_large_is_refused() -> None:
    # Its directory claims 100 MB; the size an entry declares is all that unzipping would ever produce.
    data = bytearray(workbook(["ID"], [1]))
    directory = data.find(b"PK\x01\x02")
    while directory >= 0:
        struct.pack_into("<I", data, directory + 24, 100 * MB)  # the entry's uncompressed size
        directory = data.find(b"PK\x01\x02", directory + 4)
    assert refusal(bytes(data), "a.xlsx", ImportLimits(MB, 1000, 1000)) == (
        "The workbook expands to more than 64 MB when unzipped, more than an import unpacks "
        "(8 × IMPORT_MAX_BYTES, at least 64 MB): save it as CSV and upload that instead."
    )


def test_a_zip_of_too_many_parts_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(10_001):
            archive.writestr(f"part{number}", b"")
    assert refusal(buffer.getvalue(), "a.xlsx") == (
        "The file is not a valid XLSX workbook: it holds more than 10,000 parts."
    )


UNREADABLE = (
    "The file is not a valid XLSX workbook: open it in a spreadsheet, save it as .xlsx and upload it again."
)


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", b"application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", b"<office:document-content/>")
    assert refusal(buffer.getvalue(), "a.xlsx") == UNREADABLE


@pytest.mark.parametrize(
    "part", ["[Content_Types].xml", "xl/workbook.xml", "xl/styles.xml", "xl/worksheets/sheet1.xml"]
)
def test_a_workbook_with_a_broken_part_is_refused(part: str) -> None:
    data = workbook(["ID", "Name"], *[[number, "Lamp"] for number in range(100)])

    def truncate(name: str, content: bytes) -> bytes:
        return content[: len(content) // 2] if name == part else content

    assert len(read(rezipped(data, lambda name, content: content), "a.xlsx").rows) == 100
    assert refusal(rezipped(data, truncate), "a.xlsx") == UNREADABLE


# --- JSON ---


def test_json_as_an_export_writes_it() -> None:
    data = json.dumps(
        [
            {"ID": "1", "SKU": "A-1", "Tags": ["x", "y"]},
            {"ID": "2", "SKU": "A-2", "Tags": [], "Category": "lamps"},
            {"SKU": "A-3"},
        ]
    ).encode()
    table = read(data, "products.json")
    assert table.format == "json"
    assert table.headers == ["ID", "SKU", "Tags", "Category"]
    assert table.rows == [
        (1, ["1", "A-1", ["x", "y"], None]),
        (2, ["2", "A-2", None, "lamps"]),
        (3, [None, "A-3", None, None]),
    ]


def test_json_values_become_text() -> None:
    data = (
        b'[{"Int": 12, "Whole": 12.0, "Price": 12.50, "Tiny": 0.1, "Huge": 1e400, "Yes": true, "No": false,'
        b' "Null": null, "Text": "  Lamp  ", "Empty": "", "List": [" a ", 1, 2.5, true, null, ""]},'
        b' {"Int": 123456789012345678901234567890}]'
    )
    assert read(data, "a.json").rows == [
        (
            1,
            [
                "12",
                "12",
                "12.50",
                "0.1",
                "1E+400",
                "true",
                "false",
                None,
                "Lamp",
                None,
                ["a", "1", "2.5", "true"],
            ],
        ),
        (2, ["123456789012345678901234567890", None, None, None, None, None, None, None, None, None, None]),
    ]


def test_json_items_that_are_blank_are_skipped_but_counted() -> None:
    assert read(b'[{"A": null}, {"A": "x"}, {}, {"A": " "}, {"A": "y"}]', "a.json").rows == [
        (2, ["x"]),
        (5, ["y"]),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"SKU": "A-1"}', "A JSON import is a list of objects, one per row."),
        (b"42", "A JSON import is a list of objects, one per row."),
        (b'"text"', "A JSON import is a list of objects, one per row."),
        (
            b'[{"SKU": "A-1"}, ["A-2"]]',
            "Item 2 is not an object. A JSON import is a list of objects, one per row.",
        ),
        (
            b'[{"SKU": "A-1"}, {"SKU": "A-2", "Category": {"slug": "lamps"}}]',
            "Item 2, key “Category” holds an object: "
            "a cell holds text, a number, true or false, or a list of those.",
        ),
        (
            b'[{"Tags": [{"name": "x"}]}]',
            "Item 1, key “Tags” holds a list with an object or a list in it: a cell holds text, a number, "
            "true or false, or a list of those.",
        ),
        (
            b'[{"Tags": [["x"]]}]',
            "Item 1, key “Tags” holds a list with an object or a list in it: a cell holds text, a number, "
            "true or false, or a list of those.",
        ),
        (
            b'[{"SKU": "A-1",}]',
            "The file is not valid JSON: Expecting property name enclosed in double quotes "
            "(line 1, column 16).",
        ),
        (
            b'[\n{"SKU": "A-1"}\n{"SKU": "A-2"}]',
            "The file is not valid JSON: Expecting ',' delimiter (line 3, column 1).",
        ),
        (
            b'[{"Price": NaN}]',
            "The file holds NaN, which is not a JSON number: write the value in quotes, as text.",
        ),
        (
            b'[{"Price": -Infinity}]',
            "The file holds -Infinity, which is not a JSON number: write the value in quotes, as text.",
        ),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "The file nests lists or objects too deeply. A JSON import is a list of objects, one per row.",
        ),
        (
            b'[{"SKU": "A-1"}, {"sku": "A-2"}]',
            "The key “sku” repeats “SKU” (keys are matched regardless of case, spaces and punctuation): "
            "keep only one of them.",
        ),
        (b'[{"": "x"}]', "Item 1 has a value under a blank key: name the key, or remove its values."),
    ],
)
def test_json_that_is_not_a_list_of_flat_objects_is_refused(data: bytes, message: str) -> None:
    assert refusal(data, "a.json") == message


def test_json_blank_keys_over_no_values_are_dropped() -> None:
    table = read(b'[{"": null, "SKU": "A-1", " ": ""}]', "a.json")
    assert (table.headers, table.rows) == (["SKU"], [(1, ["A-1"])])


# --- characters a database cannot store ---


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'[{"SKU": "A-1", "Name": "Lamp\\u0000"}]',
            "Item 1, key “Name” holds a NUL character, which cannot be stored: remove it and try again.",
        ),
        (
            b'[{"SKU": "A-1", "Tags": ["ok", "\\u0000"]}]',
            "Item 1, key “Tags” holds a NUL character, which cannot be stored: remove it and try again.",
        ),
        (
            b'[{"SKU": "A-1", "Name": "half \\ud83d pair"}]',
            "Item 1, key “Name” holds the invalid character '\\ud83d', which cannot be stored: "
            "remove it and try again.",
        ),
        (
            b'[{"SKU\\u0000": "A-1"}]',
            "A key holds a NUL character, which cannot be stored: remove it and try again.",
        ),
    ],
)
def test_nul_and_lone_surrogates_are_refused(data: bytes, message: str) -> None:
    assert refusal(data, "a.json") == message


def test_a_whole_surrogate_pair_is_a_character_like_any_other() -> None:
    assert read(b'[{"Name": "Lamp \\ud83d\\udca1"}]', "a.json").rows == [(1, ["Lamp 💡"])]


def test_nul_bytes_in_csv_are_refused_before_reading() -> None:
    assert refusal(b"ID,Name\n1,La\x00mp\n").startswith("The file holds NUL bytes")


def test_reading_leaves_the_cycle_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    read(b"ID\n1\n")
    assert gc.isenabled()
    refusal(b'ID\n"open\n')
    assert gc.isenabled()
    gc.disable()
    try:
        read(b"ID\n1\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("wide.csv", (",".join(f"h{i}" for i in range(1_001)) + "\n" + "x\n" * 10).encode()),
        ("wide.json", json.dumps([{f"k{i}": "x"} for i in range(1_001)]).encode()),
    ],
)
def test_a_file_wider_than_any_model_is_refused_before_its_rows_are_padded(name: str, data: bytes) -> None:
    with pytest.raises(BadFile, match="1,001 columns; an import takes at most 1,000"):
        read_table(data, filename=name, limits=LIMITS)
