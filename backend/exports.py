"""CSV cells that a spreadsheet shows as text, never runs: shared by every export (admin and CLI)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

# What a spreadsheet takes as the start of a formula (after NFKC: fullwidth and small forms
# fold onto these), and U+2212, the minus sign NFKC leaves alone (superscript minus becomes it).
FORMULA_STARTS = frozenset("=+-@\u2212")
# Dangerous as the very first character even before text: cell separators for some importers.
SEPARATOR_STARTS = ("\t", "\r")
# Characters a reader does not see, so they cannot be trusted to keep a formula from running:
# separators, controls, format characters (zero-width space, BOM, bidi marks), unassigned and
# private-use code points, combining marks, and the blank letters that render as nothing.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Mc"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(char: str) -> bool:
    return char.isspace() or char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def starts_formula(text: str) -> bool:
    """Whether a spreadsheet could read `text` as a formula (or split it into cells)."""
    if text.startswith(SEPARATOR_STARTS):
        return True
    # Both forms: NFKC folds lookalikes onto "=", but also composes "=" + U+0338 into "≠".
    return any(_first_visible(form) in FORMULA_STARTS for form in (text, unicodedata.normalize("NFKC", text)))


def _first_visible(text: str) -> str:
    return next((char for char in text if not is_invisible(char)), "")


def spreadsheet_safe(value: Any) -> Any:
    """A cell value a spreadsheet shows as it is (CSV injection).

    Numbers stay numbers; anything else becomes text, and text that could
    start a formula (`=`, `+`, `-`, `@`, their fullwidth and other lookalike
    forms, also behind invisible characters, or a leading tab or carriage
    return) is prefixed with a quote, which spreadsheets take as "this is text".
    Text that starts with a quote itself gets one too, so that an import can
    tell the two apart and give back the text exactly (`restore_text`).
    """
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if _needs_quote(text) else text


def restore_text(text: str) -> str:
    """The text `spreadsheet_safe` was given: the quote it added is taken off, any other kept.

    `restore_text(spreadsheet_safe(text)) == text` for every text, and a quote
    a person typed before ordinary text ("'abc") stays.
    """
    return text[1:] if text.startswith("'") and _needs_quote(text[1:]) else text


def _needs_quote(text: str) -> bool:
    return text.startswith("'") or starts_formula(text)


def csv_line(values: Iterable[Any]) -> str:
    """One CSV record, every cell made spreadsheet-safe."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_safe(value) for value in values])
    return buffer.getvalue()
