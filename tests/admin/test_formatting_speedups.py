"""admin/formatting.py writes what Babel writes, without Babel's per-call parsing: byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from babel.numbers import format_decimal

from admin import i18n
from admin.formatting import ENGLISH_MOMENT, amount, moment, number

NUMBERS: list[int | float | Decimal] = [
    0,
    1,
    -1,
    7,
    999,
    1000,
    -1234,
    1_234_567,
    10**20,
    -(10**15),
    0.0,
    -0.0,
    0.5,
    1.5,
    2.5,
    2.675,
    -2.675,
    0.1 + 0.2,
    1234.5678,
    -1234.5,
    1e-7,
    1e16,
    123456789.987654,
    Decimal("0"),
    Decimal("-0"),
    Decimal("-0.00"),
    Decimal("0.005"),
    Decimal("0.015"),
    Decimal("1234.50"),
    Decimal("1234.5"),
    Decimal("-1234567.891"),
    Decimal("1E+3"),
    Decimal("1.23456789"),
    Decimal("12345678901234567890.12"),
    Decimal("99999999.995"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
]
PLACES = [None, 0, 1, 2, 3]


@pytest.fixture(params=["en", "de"])
def speaking(request: pytest.FixtureRequest) -> Iterator[str]:
    i18n.switch_to(request.param)
    try:
        yield request.param
    finally:
        i18n.switch_to("en")


def _babel_pattern(places: int | None) -> str | None:
    return "#,##0" + ("." + "0" * places if places else "") if places is not None else None


def test_number_writes_what_format_decimal_writes(speaking: str) -> None:
    for places in PLACES:
        for value in NUMBERS:
            expected = format_decimal(value, format=_babel_pattern(places), locale=speaking)
            assert number(value, places) == expected, (value, places)
            assert number(value, places=places) == expected, (value, places)
        assert number(None, places) == ""


def test_the_languages_do_not_share_a_cached_format() -> None:
    i18n.switch_to("de")
    try:
        german = number(Decimal("1234.50"), 2)
    finally:
        i18n.switch_to("en")
    assert (german, number(Decimal("1234.50"), 2)) == ("1.234,50", "1,234.50")
    assert (number(1234.5), number(1234.5, 0), number(1234.5, 2)) == ("1,234.5", "1,234", "1,234.50")


def test_amount_keeps_the_stored_places(speaking: str) -> None:
    for text in (
        "0",
        "0.00",
        "-0.00",
        "1234.5",
        "1234.50",
        "-1234567.891",
        "1E+3",
        "0.10",
        "12345678901234.1200",
    ):
        value = Decimal(text)
        places = max(0, -int(value.as_tuple().exponent))
        assert amount(value) == format_decimal(value, format=_babel_pattern(places), locale=speaking), text
    for value in (Decimal("Infinity"), Decimal("-Infinity")):
        assert amount(value) == format_decimal(value, locale=speaking)


MOMENTS = [
    datetime(2026, 11, 7, 6, 40, 0, 917_474, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5),  # naive: UTC already
    datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 3, 1, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-8))),  # the next day in UTC
    datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo("America/New_York")),
]


def test_an_english_moment_is_what_babel_writes() -> None:
    for value in MOMENTS:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        expected = f"{format_datetime(aware, ENGLISH_MOMENT, tzinfo=UTC, locale='en')} UTC"
        assert moment(value) == expected, value
    assert moment(None) == ""


def test_a_german_moment_is_babels_medium_format() -> None:
    i18n.switch_to("de")
    try:
        for value in MOMENTS:
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            assert moment(value) == f"{format_datetime(aware, 'medium', tzinfo=UTC, locale='de')} UTC"
        assert moment(MOMENTS[0]) == "07.11.2026, 06:40:00 UTC"
    finally:
        i18n.switch_to("en")
