"""Keyset cursors (admin/keyset.py) without a database: what a URL may carry and what it may not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, SmallInteger, String
from sqlalchemy.types import TypeEngine
from starlette.exceptions import HTTPException

from admin.keyset import INVALID_LINK, MAX_TOKEN, Cursor, decode_cursor, encode_cursor, list_state
from backend.db.columns import enum_column
from backend.db.types import UTCDateTime
from backend.models import ProductStatus

STATE = list_state("name", "asc", "", 100)
STATUS = enum_column(ProductStatus, "product_status")


def _token(payload: str) -> str:
    """A cursor as someone might craft it: any JSON text, base64url without padding."""
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _refused(token: str, column_type: TypeEngine[Any]) -> None:
    with pytest.raises(HTTPException) as refused:
        decode_cursor(token, column_type=column_type)
    assert refused.value.status_code == 400
    assert refused.value.detail == INVALID_LINK


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        (Integer(), 2**31 - 1),
        (SmallInteger(), -(2**15)),
        (BigInteger(), 2**63 - 1),
        (String(120), "Ünïcode name, with ; & = and spaces"),
        (String(), ""),
        (Boolean(), False),
        (Float(), 2.5),
        (Numeric(10, 2), Decimal("12345678.90")),
        (Date(), date(2026, 2, 28)),
        (DateTime(timezone=True), datetime(2026, 1, 31, 9, 30, 0, 123456, tzinfo=UTC)),
        (UTCDateTime(), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (STATUS, ProductStatus.ARCHIVED),
    ],
)
def test_a_cursor_round_trips_with_its_value_typed_for_the_column(
    column_type: TypeEngine[Any], value: object
) -> None:
    token = encode_cursor(STATE, value, 42)
    assert "=" not in token and "/" not in token and "+" not in token  # travels in a URL as it is
    decoded = decode_cursor(token, column_type=column_type)
    assert decoded == Cursor(STATE, value, 42)
    assert type(decoded.value) is type(value)


def test_a_time_with_an_offset_comes_back_as_the_same_instant_in_utc() -> None:
    local = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_cursor(encode_cursor(STATE, local, 7), column_type=UTCDateTime())
    assert decoded.value == local and decoded.value.tzinfo == UTC and decoded.value.hour == 10


def test_a_cursor_knows_the_list_it_was_made_for() -> None:
    other = list_state("name", "desc", "", 100)
    assert other != STATE
    assert decode_cursor(encode_cursor(other, "a", 1), column_type=String(10)).state == other


def test_a_null_sort_value_cannot_be_encoded() -> None:
    with pytest.raises(TypeError):
        encode_cursor(STATE, None, 1)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!not-base64!!!",
        "%00",
        _token("not json"),
        _token("{}"),
        _token('"a string"'),
        _token("[]"),
        _token('["s", 1]'),
        _token('["s", 1, 2, 3]'),
        _token("[1, 1, 2]"),  # the state is not text
        _token('["s", 1, "2"]'),  # the id is not a number
        _token('["s", 1, 0]'),
        _token('["s", 1, -5]'),
        _token('["s", 1, true]'),
        _token('["s", 1, 1.5]'),
        _token(f'["s", 1, {2**63}]'),  # beyond BIGINT
        _token("[" * 100_000),  # deep nesting
        base64.urlsafe_b64encode(b'["s", 1, 1]\xff').decode(),  # not UTF-8
        "A" * (MAX_TOKEN + 1),
    ],
)
def test_a_garbage_cursor_is_a_400_with_a_sentence(token: str) -> None:
    _refused(token, Integer())


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        (Integer(), 2**31),
        (SmallInteger(), 2**15),
        (BigInteger(), 2**63),
        (Integer(), "1"),
        (Integer(), True),
        (Integer(), 1.0),
        (Boolean(), 1),
        (Boolean(), "true"),
        (String(5), "sixsix"),
        (String(5), 5),
        (Float(), "1.5"),
        (Float(), True),
        (Numeric(10, 2), "1.234"),  # more places than the column keeps
        (Numeric(4, 0), "123456"),
        (Numeric(10, 2), "1e5"),
        (Numeric(10, 2), 1.5),
        (Date(), "2026-02-30"),
        (Date(), "٢٠٢٦-01-01"),
        (DateTime(timezone=True), "yesterday"),
        (UTCDateTime(), 1700000000),
        (STATUS, "deleted"),
        (STATUS, None),
    ],
)
def test_a_tampered_value_of_the_wrong_type_or_range_is_refused(
    column_type: TypeEngine[Any], value: object
) -> None:
    _refused(_token(json.dumps([STATE, value, 1])), column_type)


def test_a_float_cursor_refuses_values_json_allows_but_sql_cannot_compare() -> None:
    for raw in ("NaN", "Infinity", "-Infinity"):
        _refused(_token(f'["{STATE}", {raw}, 1]'), Float())
