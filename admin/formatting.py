"""How every admin page writes a moment, an amount and a count: once, in the reader's language.

The database keeps UTC (backend/db/types.py `UTCDateTime`); a page that wrote
`2026-11-07 06:40:00.917474+00:00` in one place and `2026-11-07 06:40` in
another made people wonder which clock they read. So a moment is always in
UTC and says so: "2026-11-07 06:40:00 UTC" in English (the house format, sorts
as text), Babel's medium date and time in German ("07.11.2026, 06:40:00 UTC").
Amounts and counts take the language's separators ("1,234.50", "1.234,50").
Lists and details take them through SQLAdmin's `column_type_formatters`
(`LOCALISED_FORMATTERS`); templates through the `moment`, `number` and
`row_count` filters. Files (exports, the audit CSV) keep machine formats.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import NumberPattern, format_compact_decimal, parse_pattern

from admin.i18n import DEFAULT_LOCALE, active_locale, translated
from backend.services.dashboard import CountKind, RowCount

# The house format in English, as Babel spells it (`moment` writes it without Babel).
ENGLISH_MOMENT = "yyyy-MM-dd HH:mm:ss"
# An estimate is not worth more digits than this; German writes "1,2 Mio." from a million.
COMPACT_FROM = 1_000_000


def moment(value: datetime | None) -> str:
    """`value` in UTC, saying so; empty for None. A naive value is taken as UTC already."""
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    locale = active_locale()
    if locale == DEFAULT_LOCALE:
        # Babel's ENGLISH_MOMENT, written directly: its pattern machinery is 7 µs of every cell.
        at = aware.astimezone(UTC)
        return f"{at.year:04d}-{at.month:02d}-{at.day:02d} {at.hour:02d}:{at.minute:02d}:{at.second:02d} UTC"
    return f"{format_datetime(aware, 'medium', tzinfo=UTC, locale=locale)} UTC"


def day(value: date | str, *, short: bool = False) -> str:
    """A calendar day ("2026-11-07", "07.11.2026"); `short` leaves the year out ("11-07", "07.11.")."""
    value = date.fromisoformat(value) if isinstance(value, str) else value
    locale = active_locale()
    if locale == DEFAULT_LOCALE:
        return value.isoformat()[5:] if short else value.isoformat()
    return format_date(value, "dd.MM." if short else "medium", locale=locale)


def number(value: int | float | Decimal | None, places: int | None = None) -> str:
    """`value` with the language's separators; `places` fixes the decimals (2 for money)."""
    if value is None:
        return ""
    code = active_locale()
    if code == DEFAULT_LOCALE and places is not None and _exact_and_finite(value):
        # English "#,##0.00" is Python's own grouping and half-even rounding: the same text as Babel
        # for exact values, in a fifth of the time (a price column is 100 of them a page). Floats
        # keep Babel's path: it rounds their shortest repr, Python their binary value.
        return format(value, f",.{places}f")
    locale, pattern = _number_format(code, places)
    # What `format_decimal(value, format=..., locale=...)` does, without parsing the pattern again.
    written: str = pattern.apply(value, locale)
    return written


def _exact_and_finite(value: int | float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int)


@functools.cache
def _number_format(code: str, places: int | None) -> tuple[Locale, NumberPattern]:
    # Babel parses the locale code and the pattern on every call otherwise: half the cost of a price cell.
    locale = Locale.parse(code)
    if places is None:
        return locale, locale.decimal_formats[None]
    return locale, parse_pattern("#,##0" + ("." + "0" * places if places else ""))


def amount(value: Decimal) -> str:
    """A stored decimal (a price, a total) as the list and details pages show it."""
    return number(value, places=max(0, -int(value.as_tuple().exponent)) if value.is_finite() else None)


def row_count(count: RowCount) -> str:
    """A dashboard count: exact ("1,234"), at least ("1,234+") or about ("about 1.2M")."""
    if active_locale() == DEFAULT_LOCALE:
        return str(count)  # the backend's own English wording
    if count.kind is CountKind.CAPPED:
        return number(count.value) + "+"
    if count.kind is CountKind.ESTIMATE:
        shown = (
            format_compact_decimal(count.value, fraction_digits=1, locale=active_locale())
            if count.value >= COMPACT_FROM
            else number(count.value)
        )
        return translated("about %(count)s", count=shown)
    return number(count.value)


LOCALISED_FORMATTERS: dict[Any, Callable[[Any], Any]] = {datetime: moment, Decimal: amount}
