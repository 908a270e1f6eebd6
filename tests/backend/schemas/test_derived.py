"""Input schemas derived from the columns: each column's limits become a field message, not a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from backend.errors import ValidationFailed
from backend.models import Category, Order, Product, Tag
from backend.schemas.base import NUL_MESSAGE, Input
from backend.schemas.derived import REQUIRED_MESSAGE, create_schema_for, update_schema_for
from backend.services.base import validate

ID_MESSAGE = "Category id must be a whole number from 1 to 9223372036854775807."


def errors_of(schema: type[Input], data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, data)
    return caught.value.errors


def test_fields_follow_the_columns_and_leave_managed_ones_out() -> None:
    create, update = create_schema_for(Product), update_schema_for(Product)
    assert issubclass(create, Input) and issubclass(update, Input)
    assert (create.__name__, update.__name__) == ("ProductCreate", "ProductUpdate")
    assert list(create.model_fields) == [
        "sku",
        "name",
        "description",
        "price",
        "stock",
        "status",
        "category_id",
    ]
    assert [name for name, field in create.model_fields.items() if field.is_required()] == [
        "sku",
        "name",
        "price",
        "category_id",
    ]
    assert not any(field.is_required() for field in update.model_fields.values())
    assert create_schema_for(Product) is create  # built once
    assert errors_of(create, {"id": 1, "version": 2, "deleted_at": None}) == {
        "sku": ["Field required"],
        "name": ["Field required"],
        "price": ["Field required"],
        "category_id": ["Field required"],
        "id": ["This field is not accepted."],
        "version": ["This field is not accepted."],
        "deleted_at": ["This field is not accepted."],
    }


def test_each_column_limit_is_a_field_message() -> None:
    data = {
        "sku": "S" * 65,  # String(64)
        "name": "   ",  # NOT NULL without default: not blank, once trimmed
        "description": None,  # NOT NULL, even with a default
        "price": Decimal("123456789012.5"),  # Numeric(12, 2)
        "stock": 2**31,  # Integer
        "status": "sold",  # enum
        "category_id": 0,  # a foreign key: an id
    }
    assert errors_of(create_schema_for(Product), data) == {
        "sku": ["String should have at most 64 characters"],
        "name": ["String should have at least 1 character"],
        "description": [REQUIRED_MESSAGE],
        "price": ["Decimal input should have no more than 12 digits in total"],
        "stock": ["Input should be less than or equal to 2147483647"],
        "status": ["Input should be 'draft', 'active' or 'archived'"],
        "category_id": [ID_MESSAGE],
    }


def test_text_from_forms_takes_ascii_digits_only() -> None:
    data = {"sku": "S1", "name": "N", "price": "1.005", "stock": "1_000", "category_id": "١٢"}
    assert errors_of(create_schema_for(Product), data) == {
        "price": ["Price must be a number with at most 10 digits before the point and 2 after it."],
        "stock": ["Stock must be a whole number from -2147483648 to 2147483647."],
        "category_id": [ID_MESSAGE],
    }
    parsed = validate(
        create_schema_for(Product), {**data, "price": " 12.50 ", "stock": "7", "category_id": "12"}
    )
    assert (parsed.price, parsed.stock, parsed.category_id) == (Decimal("12.50"), 7, 12)  # type: ignore[attr-defined]


def test_nul_and_naive_times_are_refused_and_text_is_trimmed() -> None:
    assert errors_of(create_schema_for(Tag), {"name": "a\x00b"}) == {"name": [NUL_MESSAGE]}
    assert validate(create_schema_for(Tag), {"name": "  spring  "}).model_dump() == {"name": "spring"}
    naive = datetime(2026, 1, 31, 9, 30)  # no tzinfo: what is refused
    errors = errors_of(update_schema_for(Order), {"placed_at": naive})
    assert errors == {"placed_at": ["Input should have timezone info"]}


def test_update_takes_only_what_is_given_and_null_only_where_the_column_allows_it() -> None:
    update = update_schema_for(Category)
    assert validate(update, {"name": "Shoes"}).model_dump(exclude_unset=True) == {"name": "Shoes"}
    assert validate(update, {"parent_id": None}).model_dump(exclude_unset=True) == {"parent_id": None}
    assert errors_of(update, {"name": None, "slug": "x" * 141}) == {
        "name": [REQUIRED_MESSAGE],
        "slug": ["String should have at most 140 characters"],
    }


def test_a_column_the_database_fills_is_left_to_its_default_unless_given() -> None:
    create = create_schema_for(Order)
    assert "placed_at" not in validate(create, {"customer_id": 1}).model_dump()
    when = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert validate(create, {"customer_id": 1, "placed_at": when}).model_dump()["placed_at"] == when
    assert validate(create, {"customer_id": 1}).model_dump()["total"] == Decimal("0.00")  # a plain default
