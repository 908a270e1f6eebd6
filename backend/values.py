"""One parser for the numbers, ids, dates and times that arrive as text (URLs, forms, CLI options).

Python's own parsers accept more than a person means by a number:
`str.isdigit()` is true for "²" and "١٢", and `int()` takes Arabic-Indic
digits, "1_000", a sign and surrounding whitespace. A value that passes such
a check then fails deeper (a 500) or overflows a BIGINT column. Everything
here accepts ASCII digits only, bounds the result to what the column can
hold, and raises `InvalidValue` with a sentence for a person otherwise.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

BIGINT_MAX = 2**63 - 1
ID_MAX = BIGINT_MAX
# Longest decimal text of a BIGINT: 19 digits. Longer text is refused before `int()` sees it.
_MAX_DIGITS = 19
_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)


class InvalidValue(ValueError):
    """A value that is not what its field takes; `str(exc)` is a sentence for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyValues(InvalidValue):
    """More values than one request may name."""


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits 0-9, nothing else."""
    return _DIGITS.fullmatch(text) is not None


def parse_int(text: str, *, minimum: int, maximum: int, name: str = "The value") -> int:
    """A whole number written in ASCII digits (an optional leading "-" when `minimum` < 0).

    Raises `InvalidValue` for anything else, or for a number outside `minimum`..`maximum`.
    """
    digits = text[1:] if text.startswith("-") and minimum < 0 else text
    if not is_digits(digits) or len(digits.lstrip("0")) > _MAX_DIGITS:
        raise InvalidValue(f"{name} must be a whole number from {minimum} to {maximum}.")
    significant = digits.lstrip("0") or "0"  # long runs of zeros would trip int()'s length limit
    value = -int(significant) if digits is not text else int(significant)
    if not minimum <= value <= maximum:
        raise InvalidValue(f"{name} must be a whole number from {minimum} to {maximum}.")
    return value


def parse_id(text: str, *, name: str = "The id") -> int:
    """A record id: 1 to 2**63-1 (the BIGINT range), in ASCII digits."""
    return parse_int(text, minimum=1, maximum=ID_MAX, name=name)


def is_id(value: object) -> bool:
    """True for an int (not a bool) a BIGINT id column can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX


def is_id_text(text: str) -> bool:
    """True when `parse_id` would accept `text`."""
    try:
        parse_id(text)
    except InvalidValue:
        return False
    return True


def as_id(value: object, *, name: str = "The id") -> int:
    """An id given as an int or as text; `InvalidValue` for anything else."""
    if is_id(value):
        return value  # type: ignore[return-value]  # is_id checked it is an int
    if isinstance(value, str):
        return parse_id(value, name=name)
    raise InvalidValue(f"{name} must be a whole number from 1 to {ID_MAX}.")


def parse_id_list(text: str, *, name: str = "The ids", limit: int = 1000) -> list[int]:
    """Comma-separated ids ("1,2,3"), each as `parse_id`; empty items are skipped, repeats dropped."""
    items = [item for item in text.split(",") if item]
    if len(items) > limit:
        raise TooManyValues(f"Select at most {limit} records at once.")
    ids: list[int] = []
    for item in items:
        value = parse_id(item, name=name)
        if value not in ids:
            ids.append(value)
    return ids


def parse_decimal(text: str, *, max_digits: int, decimal_places: int, name: str = "The amount") -> Decimal:
    """A decimal number in ASCII digits ("-12.50") that fits NUMERIC(max_digits, decimal_places).

    No exponent, no NaN or Infinity, no more digits than the column holds.
    """
    message = f"{name} must be a number with at most {max_digits - decimal_places} digits before the point"
    message += f" and {decimal_places} after it." if decimal_places else " and none after it."
    unsigned = text[1:] if text.startswith("-") else text
    whole, point, fraction = unsigned.partition(".")
    if not is_digits(whole) or (point and not is_digits(fraction)):
        raise InvalidValue(message)
    whole = whole.lstrip("0")
    fraction = fraction.rstrip("0")
    if len(whole) > max_digits - decimal_places or len(fraction) > decimal_places:
        raise InvalidValue(message)
    return Decimal(text)


def parse_date(text: str, *, name: str = "The date") -> date:
    """A calendar date written YYYY-MM-DD (years 1 to 9999)."""
    if _DATE.fullmatch(text) is None:
        raise InvalidValue(f"{name} must be a date like 2026-01-31.")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidValue(f"{name} must be a date like 2026-01-31.") from exc


def parse_datetime(text: str, *, name: str = "The time") -> datetime:
    """An ISO 8601 date and time in ASCII digits, as a timezone-aware UTC datetime.

    A time without an offset is taken as UTC. Times whose UTC value falls
    outside years 1..9999 are refused.
    """
    message = f"{name} must be a date and time like 2026-01-31T09:30:00+00:00."
    if _DATETIME.fullmatch(text) is None:
        raise InvalidValue(message)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidValue(message) from exc
