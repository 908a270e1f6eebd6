"""New rows of a generically built model, checked and inserted a batch at a time (exchange/new_rows.py).

The batch path must say what a form would say and write what a form would write: the same messages for
records that are missing or in the trash, a unique clash found by the preview (which writes nothing), the
same audit entry as a create through the service, and the database's refusal still reported per row.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.uow import UnitOfWork
from backend.models import AuditEntry, Product, Tag
from backend.repositories.base import IntegrityViolation
from backend.repositories.bulk import bulk_insert
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.exchange.importing import confirm_import, preview_import
from backend.services.exchange.new_rows import NewRows, unique_columns
from backend.services.references import check_new
from tests.backend.services.test_importing import PRODUCT_HEADERS, catalog, count, table
from tests.factories import make_tag, unique


def test_only_services_without_rules_of_their_own_build_in_bulk() -> None:
    assert ProductService.builds_generically() and TagService.builds_generically()
    assert not CategoryService.builds_generically()  # a category may not be inside itself


def test_unique_columns_know_which_indexes_cover_live_rows_only() -> None:
    assert {(column.key, column.live_only) for column in unique_columns(Product)} == {("sku", True)}
    assert {(column.key, column.live_only) for column in unique_columns(Tag)} == {("name", True)}


async def test_references_in_bulk_say_what_a_form_says(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category, red, blue, _product = await catalog(session)
    gone = await make_tag(session, name=unique("gone-"))
    gone.deleted_at = category.created_at
    await session.flush()
    service = ProductService(system_uow)
    good = service.parse_create(
        {"sku": unique("G-"), "name": "Good", "price": "1", "category_id": category.id, "tag_ids": [red.id]}
    )
    bad = service.parse_create(
        {
            "sku": unique("B-"),
            "name": "Bad",
            "price": "1",
            "category_id": 10**9,
            "tag_ids": [blue.id, gone.id],
        }
    )

    checked = await check_new(system_uow, Product, [good, bad])

    assert checked[0].record is not None and checked[0].record.related == {"tags": [red]}
    assert (
        "tag_ids" not in checked[0].record.values and checked[0].record.values["category_id"] == category.id
    )
    assert checked[1].record is None
    assert checked[1].errors == {
        "category_id": [f"Category {10**9} does not exist."],
        "tag_ids": [f"No such tag: {gone.id}."],
    }


async def test_the_preview_finds_unique_clashes_without_writing(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    taken = await make_tag(session, name=unique("taken-"))
    fresh = unique("fresh-")
    # Matched by id, so the names are checked as a unique column: one held by a live tag, one given twice.
    rows = table(["ID", "Name"], ["", taken.name], ["", fresh], ["", fresh])
    tags, entries = await count(session, Tag), await count(session, AuditEntry)

    report = await preview_import(system_uow, Tag, rows, key="id")

    assert [row.status for row in report.rows] == ["error", "new", "error"]
    assert report.rows[0].errors == {"Name": [f"A tag named {taken.name} already exists."]}
    assert report.rows[2].errors == {"Name": [f"A tag named {fresh} already exists (row 3 of this file)."]}
    assert await count(session, Tag) == tags and await count(session, AuditEntry) == entries


async def test_a_row_the_database_refuses_is_reported_alone(
    system_uow: UnitOfWork, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the batch's checks miss what the database refuses, the rows are replayed one by one."""

    async def no_unique_check(*_args: Any) -> None:
        return None

    monkeypatch.setattr(NewRows, "_check_unique", no_unique_check)
    taken = await make_tag(session, name=unique("taken-"))
    fresh = unique("fresh-")
    rows = table(["ID", "Name"], ["", fresh], ["", taken.name])

    report = await confirm_import(
        system_uow, Tag, rows, key="id", file_name="t.csv", file_hash="h", skip_errors=True
    )

    assert [row.status for row in report.rows] == ["new", "error"] and report.written
    assert report.rows[1].errors == {"Name": [f"A tag named {taken.name} already exists."]}
    assert await session.scalar(select(Tag.id).where(Tag.name == fresh)) == report.rows[0].record_id


async def test_an_imported_record_is_audited_as_a_create_through_the_service_is(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, blue, _product = await catalog(session)
    by_form = await ProductService(system_uow).create(
        {
            "sku": unique("F-"),
            "name": "Lamp",
            "price": "12.50",
            "stock": 4,
            "status": "active",
            "category_id": category.id,
            "tag_ids": [red.id, blue.id],
        }
    )
    await system_uow.session.flush()
    sku = unique("I-")
    rows = table(
        PRODUCT_HEADERS, [sku, "Lamp", "12.50", "4", "active", category.slug, f"{blue.name}, {red.name}"]
    )

    report = await confirm_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert report.written and report.rows[0].status == "new"
    imported_id = report.rows[0].record_id
    entries = {
        entry.object_id: entry
        for entry in await session.scalars(
            select(AuditEntry).where(
                AuditEntry.model == "product", AuditEntry.object_id.in_([str(by_form.id), str(imported_id)])
            )
        )
    }
    form_entry, import_entry = entries[str(by_form.id)], entries[str(imported_id)]
    assert import_entry.action == form_entry.action == "create"
    assert import_entry.object_repr == f"{sku} Lamp" and import_entry.import_id == report.import_id
    assert set(import_entry.changes) == set(form_entry.changes)
    same = {name for name in form_entry.changes if name not in ("id", "sku", "created_at")}
    assert {name: import_entry.changes[name] for name in same} == {
        name: form_entry.changes[name] for name in same
    }
    assert import_entry.changes["tags"] == [[], sorted([red.name, blue.name])]


async def test_a_copy_the_database_refuses_raises_what_a_statement_would(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    """COPY (PostgreSQL) goes to the driver directly: its refusal must still be a constraint violation the
    savepoint rolls back, not a driver error that escapes as a 500."""
    _category, _red, _blue, product = await catalog(session)
    repo = system_uow.repo(Product)
    product_tag = Product.__table__.c.id.table.metadata.tables["product_tag"]

    with pytest.raises(IntegrityViolation) as refused:
        async with repo.savepoint():
            await bulk_insert(
                system_uow.session, product_tag, ["product_id", "tag_id"], [(product.id, 10**12)]
            )

    assert refused.value.violation.kind == "foreign_key"
    assert await session.scalar(select(Tag.id).where(Tag.id == 10**12)) is None  # and the unit goes on
