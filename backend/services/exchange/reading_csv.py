"""CSV files: the delimiter, the records, quoting mistakes.

Row numbers count records, as a spreadsheet shows the file: the header is
row 1, and a record whose quoted cell spans several lines is still one row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from backend.exports import restore_text
from backend.services.exchange.reading_rows import BadFile, ImportLimits, Table, TableBuilder

# The comma; the semicolon Excel writes where the comma is a decimal separator; tab. On a tie, in this order.
DELIMITERS = (",", ";", "\t")
# The csv module refuses fields over 128 KiB by default. Cell size is checked against the import's own
# limit afterwards, with a message naming the cell; the file's size bounds every field meanwhile.
_NO_FIELD_LIMIT = 2**31 - 1
_SNIFF_BYTES = 64 * 1024
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_QUOTED = re.compile(r'"[^"]*"')


def read_csv(data: bytes, encoding: str, limits: ImportLimits, *, notes: Sequence[str] = ()) -> Table:
    """The table in `data`, read as `encoding` (`reading.text_encoding` chose it)."""
    csv.field_size_limit(_NO_FIELD_LIMIT)
    # Decoded bytes hold no NUL (refused before) and no lone surrogate: no character search needed.
    builder = TableBuilder("csv", limits, notes=notes, check_characters=False)
    delimiter = sniff_delimiter(data[:_SNIFF_BYTES].decode(encoding, errors="ignore"))
    # Text an export quoted starts with "'" (the same byte in every encoding read): most files have none.
    quoted_cells = b"'" in data
    number = 0
    # Decoded a slice at a time as the records are read: the file's whole text is never held.
    with io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="") as lines:
        # strict: a stray quote is an error rather than a cell that swallows the rest of the file.
        reader = csv.reader(lines, delimiter=delimiter, strict=True, skipinitialspace=True)
        try:
            for number, record in enumerate(reader, start=1):
                # `clean_text`, spelled out: this runs for every cell of the file.
                if quoted_cells:
                    record = [restore_text(cell) if cell[:1] == "'" else cell for cell in record]
                builder.add(number, [cell or None for cell in map(str.strip, record)])
        except csv.Error as exc:
            raise BadFile(
                f"Row {number + 1} has a quoted cell that is not closed, or text after its closing quote: "
                "put the whole cell in quotes and double every quote inside it."
            ) from exc
    return builder.table()


def sniff_delimiter(text: str) -> str:
    """The delimiter the header line (the first that is not blank) uses most, quoted parts aside;
    a comma when it has none."""
    header = next((line for line in _LINE_BREAK.split(text) if line.strip()), "")
    unquoted = _QUOTED.sub("", header)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","
