"""The batch work of an import gives what the row-at-a-time rules give (exchange/importing.py, new_rows.py,
references.py, audit.inserted_row_entries): cells split the same, references named by key resolve to the
same records with the same messages, a unique value is asked of the database unless the key lookup just
did, and the rules that check changed rows find their related records without a query per row."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.db.audit import _jsonable_for, jsonable
from backend.db.uow import UnitOfWork
from backend.errors import ValidationFailed
from backend.models import Category, Product
from backend.models.catalog import ProductStatus
from backend.schemas.derived import create_schema_for
from backend.services.catalog import ProductService
from backend.services.exchange.fields import split_keys
from backend.services.exchange.importing import _split, preview_import
from backend.services.orders import OrderService
from backend.services.references import dump_all
from tests.backend.services.test_importing import PRODUCT_HEADERS, catalog, table
from tests.factories import make_category, make_product, unique


@pytest.mark.parametrize(
    "cell", ["a", "a, b", " a ,b\t,, c \n", ",", "", " ", "new, sale, ", "a,,b", "x y, z"]
)
def test_an_unquoted_cell_splits_as_split_keys_splits_it(cell: str) -> None:
    assert _split(cell) == [key.strip() for key in split_keys(cell) if key.strip()]


def test_quoted_cells_and_json_lists_still_split_as_before() -> None:
    assert _split('"Red, blue", green') == ["Red, blue", "green"]
    assert _split([" a ", "", "b"]) == ["a", "b"]
    assert _split(None) == []


class _Size(enum.Enum):
    SMALL = 1


@pytest.mark.parametrize(
    "value",
    [
        "text",
        7,
        1.5,
        True,
        Decimal("12.50"),
        uuid.UUID(int=5),
        datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        date(2026, 1, 2),
        ProductStatus.ACTIVE,
        _Size.SMALL,
        [Decimal("1.5"), "x"],
        object,
    ],
)
def test_an_audit_value_converted_by_its_type_is_what_jsonable_gives(value: Any) -> None:
    assert _jsonable_for(type(value))(value) == jsonable(value)


def test_a_batch_of_inputs_dumps_as_each_dumps() -> None:
    derived = create_schema_for(Category)  # a derived schema leaves database defaults out of its dump
    inputs = [
        derived.model_validate({"name": "A", "slug": "a"}),
        derived.model_validate({"name": "B", "slug": "b"}),
    ]
    assert dump_all(inputs) == [item.model_dump() for item in inputs]
    service_input = ProductService.create_schema.model_validate(
        {"sku": "S", "name": "N", "price": "1", "category_id": 1}
    )
    mixed = [*inputs, service_input]
    assert dump_all(mixed) == [item.model_dump() for item in mixed]
    assert dump_all([]) == []


async def test_a_category_in_the_trash_named_by_a_new_row_is_refused_as_a_form_refuses_it(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    gone = await make_category(session, slug=unique("gone-"))
    gone.deleted_at = gone.created_at
    await session.flush()
    rows = table(PRODUCT_HEADERS, [unique("N-"), "Lamp", "1", "1", "active", gone.slug, ""])

    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert report.rows[0].status == "error"
    assert report.rows[0].errors == {"Category": [f"Category {gone.id} does not exist."]}


async def test_a_key_the_schema_trims_is_still_checked_against_the_records(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    """The row's key as written (" SKU") matches no record, but the SKU it stores does: the unique check
    asks the database for what is stored, not only for what the key lookup already asked."""
    category, *_ = await catalog(session)
    product = await make_product(session, category_id=category.id)
    rows = table(PRODUCT_HEADERS, [f" {product.sku}", "Lamp", "1", "1", "active", category.slug, ""])

    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert report.rows[0].status == "error", report.rows
    assert report.rows[0].errors == {"SKU": [f"A product with the SKU {product.sku} already exists."]}


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_changed_rows_find_the_records_they_name_without_a_query_each(
    system_uow: UnitOfWork, session: AsyncSession, engine: AsyncEngine
) -> None:
    category, red, _blue, _product = await catalog(session)
    other = await make_category(session, slug=unique("other-"))
    products = [await make_product(session, category_id=category.id) for _ in range(6)]
    # Plain values: a preview rolls back, which expires the records.
    cells = [[p.sku, p.name, str(p.price), str(p.stock), "active", other.slug, red.name] for p in products]
    slugs = (category.slug, other.slug)
    session.expunge_all()  # nothing held: what the rules need, the import loads

    async def preview(count: int) -> int:
        rows = table(PRODUCT_HEADERS, *cells[:count])
        with statements(engine) as seen:
            report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")
        assert [row.status for row in report.rows] == ["changed"] * count, report.rows
        assert report.rows[0].changes["Category"] == slugs
        return sum(statement.startswith("SELECT") for statement in seen)  # the flush UPDATEs each row

    assert await preview(2) == await preview(6)  # no read per row


def test_a_batch_parses_as_each_item_parses(system_uow: UnitOfWork) -> None:
    service = ProductService(system_uow)
    good = {"sku": "S-1", "name": " Lamp ", "price": "1.50", "category_id": 3, "tag_ids": [2, 1]}
    bad = {"sku": "bad sku", "name": "", "price": "-1", "category_id": 3}
    extra = {"sku": "S-2", "name": "N", "price": "1", "category_id": 3, "colour": "red"}

    assert service.parse_create_many([good, good]) == [service.parse_create(good)] * 2
    parsed = service.parse_create_many([good, bad, extra])
    assert parsed[0] == service.parse_create(good)
    for item, outcome in zip([bad, extra], parsed[1:], strict=True):
        with pytest.raises(ValidationFailed) as raised:
            service.parse_create(item)
        assert isinstance(outcome, ValidationFailed) and outcome.errors == raised.value.errors
    assert service.parse_create_many([]) == []


def test_a_service_that_parses_its_own_way_parses_a_batch_its_own_way(system_uow: UnitOfWork) -> None:
    service = OrderService(system_uow)
    good = {"customer_id": 1, "items": [{"product_id": 4, "quantity": 2}]}
    bad = {"customer_id": 1, "items": [{"product_id": 4, "quantity": 2}, {"product_id": 5, "quantity": 0}]}

    parsed, refused = service.parse_create_many([good, bad])

    assert parsed == service.parse_create(good)
    with pytest.raises(ValidationFailed) as raised:
        service.parse_create(bad)
    assert isinstance(refused, ValidationFailed) and refused.errors == raised.value.errors
    assert any("1" in key and "quantity" in key for key in refused.errors)  # named by its line


async def test_text_cells_compare_with_the_record_as_the_schema_would_store_them(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, *_ = await catalog(session)
    product = await make_product(session, category_id=category.id, description="")
    sku, name = product.sku, product.name
    rows = table(
        ["SKU", "Name", "Description"],
        [sku, f"  {name} ", ""],  # spaces the schema trims; empty as the record holds it
    )
    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")
    assert [row.status for row in report.rows] == ["unchanged"], report.rows

    rows = table(["SKU", "Name", "Description"], [sku, f"{name}!", "  "])
    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")
    assert report.rows[0].status == "changed" and report.rows[0].changes == {"Name": (name, f"{name}!")}
