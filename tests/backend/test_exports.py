"""CSV cells a spreadsheet cannot run: the one neutralisation every export uses."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.exports import csv_line, is_invisible, restore_text, spreadsheet_safe, starts_formula

# Every character that spreadsheets take as a formula start, or NFKC folds onto one.
FORMULA_CHARS = sorted(
    {chr(c) for c in range(0x110000) if unicodedata.normalize("NFKC", chr(c))[:1] in set("=+-@\u2212")}
)
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",
    "\u2060",  # word joiner
    "\ufeff",  # BOM
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    "\u2028",  # line separator
    " ",
    "\n",
    "\x00",
    "\u3164",  # Hangul filler
    "\u0301",  # combining acute accent
]


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1+1",
        "-1",
        "@x",
        "\t=1",
        "\rfoo",
        "＝1+1",  # fullwidth
        "＋1+1",
        "－1",
        "＠x",
        "\u200b=1+1",  # zero-width space before =
        '\ufeff=HYPERLINK("http://x")',
        " =1+1",
        "\u00a0\u200b\u2060@SUM(A1)",
        "\n=1",
        "﹦1",  # small equals sign
        "⁼1",  # superscript equals sign
        "⁻1",  # superscript minus: NFKC gives U+2212
        "\u22121",  # minus sign
        "\u3164=1",
        "=\u03381+1",  # NFKC would compose this "=" into "≠"
    ],
)
def test_dangerous_text_is_prefixed_with_a_quote(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    ["plain", "a=b", "1+1", "email@example.com", "", " ", "\u200b", "—dash", "a'quote", " 'behind a space"],
)
def test_harmless_text_is_kept(value: str) -> None:
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("text", ["'already quoted", "'=1+1", "''", "'"])
def test_text_starting_with_a_quote_gets_another_so_an_import_can_tell_which_was_added(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text
    assert restore_text(spreadsheet_safe(text)) == text


@pytest.mark.parametrize(
    ("written", "restored"),
    [
        ("'=1+1", "=1+1"),
        ("'\u200b@x", "\u200b@x"),
        ("'\t=1", "\t=1"),
        ("''abc", "'abc"),
        ("'''", "''"),
        ("'abc", "'abc"),  # typed by a person before ordinary text: not a quote an export adds
        ("'", "'"),
        ("' abc", "' abc"),
        ("abc", "abc"),
        ("=1", "=1"),
        ("", ""),
    ],
)
def test_restore_takes_off_only_the_quote_an_export_adds(written: str, restored: str) -> None:
    assert restore_text(written) == restored


def test_numbers_stay_numbers_and_other_values_become_text() -> None:
    assert spreadsheet_safe(-5) == -5
    assert spreadsheet_safe(Decimal("-1.50")) == Decimal("-1.50")
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe(True) == "True"

    class Labelled:
        def __str__(self) -> str:
            return "=cmd()"

    assert spreadsheet_safe(Labelled()) == "'=cmd()"  # a related record's label is text too
    assert spreadsheet_safe(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02 00:00:00+00:00"


@given(
    prefix=st.lists(st.sampled_from(INVISIBLE), max_size=4).map("".join),
    start=st.sampled_from(FORMULA_CHARS),
    rest=st.text(max_size=20),
)
def test_any_formula_start_behind_invisible_characters_is_neutralised(
    prefix: str, start: str, rest: str
) -> None:
    value = prefix + start + rest
    assert spreadsheet_safe(value) == "'" + value
    (cell,) = next(csv.reader(io.StringIO(csv_line([value]))))
    assert cell.startswith("'")


@given(st.text(max_size=30))
def test_every_cell_reads_back_as_text_a_spreadsheet_will_not_run(text: str) -> None:
    safe = spreadsheet_safe(text)
    assert safe in (text, "'" + text)  # nothing but the quote is ever added
    assert not starts_formula(safe)
    for form in (safe, unicodedata.normalize("NFKC", safe)):
        significant = [c for c in form if not is_invisible(c)]
        assert not significant or significant[0] not in "=+-@\u2212"


def test_csv_line_neutralises_every_cell() -> None:
    line = csv_line(["=1", 3, None, "ok", "\u200b@x", "'q"])
    assert next(csv.reader(io.StringIO(line))) == ["'=1", "3", "", "ok", "'\u200b@x", "''q"]


@given(st.text(max_size=30))
def test_restore_gives_back_any_text_spreadsheet_safe_was_given(text: str) -> None:
    assert restore_text(spreadsheet_safe(text)) == text


@given(
    quotes=st.text(alphabet="'", max_size=3),
    prefix=st.lists(st.sampled_from(INVISIBLE), max_size=2).map("".join),
    start=st.sampled_from([*FORMULA_CHARS, "\t", "\r", "a", "1", " "]),
    rest=st.text(max_size=10),
)
def test_restore_gives_back_text_that_starts_with_quotes_or_formulas(
    quotes: str, prefix: str, start: str, rest: str
) -> None:
    # Random text seldom starts with a quote or a formula: these texts are built to.
    text = quotes + prefix + start + rest
    assert restore_text(spreadsheet_safe(text)) == text
