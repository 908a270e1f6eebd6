"""Imports through the services: a preview writes nothing, a confirm writes all or nothing, audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, PermissionDenied
from backend.models import AuditEntry, Category, Customer, Product, Tag
from backend.services.exchange.importing import FileRefused, confirm_import, preview_import
from backend.services.exchange.reading import Table
from tests.backend.services.conftest import UowFactory
from tests.factories import make_category, make_customer, make_product, make_tag, unique

PRODUCT_HEADERS = ["SKU", "Name", "Price", "Stock", "Status", "Category", "Tags"]


def table(headers: list[str], *rows: list[Any]) -> Table:
    return Table(format="csv", headers=headers, rows=[(n, list(r)) for n, r in enumerate(rows, 2)], notes=[])


async def count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def catalog(session: AsyncSession) -> tuple[Category, Tag, Tag, Product]:
    category = await make_category(session, slug=unique("garden-"))
    red, blue = await make_tag(session, name=unique("red-")), await make_tag(session, name=unique("blue-"))
    product = await make_product(session, category_id=category.id, price=Decimal("5.00"), stock=3)
    return category, red, blue, product


async def test_preview_reports_every_row_and_writes_nothing(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, blue, product = await catalog(session)
    new_sku = unique("NEW-")
    rows = table(
        [*PRODUCT_HEADERS, "Colour"],
        [new_sku, "Lamp", "12.50", "4", "active", category.slug, f"{red.name}, {blue.name}", "x"],
        [product.sku, product.name, "7.25", "3", "active", category.slug, "", ""],
        [product.sku + "-B", "Broken", "-1", "1", "active", category.slug, "", ""],
        [unique("X-"), "No category", "1", "1", "active", "no-such-slug", "", ""],
    )
    products, entries = await count(session, Product), await count(session, AuditEntry)
    product_id = product.id

    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert [row.status for row in report.rows] == ["new", "changed", "error", "error"]
    assert report.totals == {"new": 1, "changed": 1, "unchanged": 0, "error": 2}
    assert report.match_by == "sku" and report.unknown_headers == ["Colour"] and not report.written
    assert report.rows[1].changes == {"Price": ("5.00", "7.25")}
    assert "Price" in report.rows[2].errors
    assert report.rows[3].errors == {"Category": ["No category named no-such-slug."]}
    assert await count(session, Product) == products and await count(session, AuditEntry) == entries
    assert (await session.scalar(select(Product.price).where(Product.id == product_id))) == Decimal("5.00")


async def test_confirm_is_all_or_nothing(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category, *_ = await catalog(session)
    rows = table(
        PRODUCT_HEADERS,
        [unique("A-"), "Good", "1.00", "1", "active", category.slug, ""],
        [unique("B-"), "Bad", "0", "1", "active", category.slug, ""],
    )
    products, entries = await count(session, Product), await count(session, AuditEntry)

    report = await confirm_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert not report.written and report.totals["error"] == 1
    assert await count(session, Product) == products and await count(session, AuditEntry) == entries


async def test_confirm_with_skip_errors_writes_the_good_rows_audited_under_one_import_id(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, _blue, product = await catalog(session)
    good = unique("A-")
    rows = table(
        PRODUCT_HEADERS,
        [good, "Good", "1.00", "2", "draft", category.slug, red.name],
        [unique("B-"), "Bad", "0", "1", "active", category.slug, ""],
        [product.sku, "Renamed", "5.00", "3", "active", category.slug, ""],
    )

    report = await confirm_import(
        system_uow, Product, rows, file_name="p.csv", file_hash="abc", skip_errors=True
    )

    assert report.written and report.totals == {"new": 1, "changed": 1, "unchanged": 0, "error": 1}
    created = (await session.execute(select(Product).where(Product.sku == good))).scalar_one()
    await session.refresh(created, ["tags"])
    assert created.stock == 2 and [tag.name for tag in created.tags] == [red.name]
    entries = (
        (await session.execute(select(AuditEntry).where(AuditEntry.import_id == report.import_id)))
        .scalars()
        .all()
    )
    actions = sorted(entry.action for entry in entries)
    assert actions == ["create", "import", "update"]
    summary = next(entry for entry in entries if entry.action == "import")
    assert summary.changes["sha256"] == "abc" and summary.changes["skipped_errors"] == 1
    assert summary.object_repr == "p.csv" and summary.model == "product"


async def test_an_unchanged_row_writes_nothing(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category, red, blue, product = await catalog(session)
    await session.refresh(product, ["tags"])
    product.tags = [red, blue]
    await session.flush()
    version = product.version
    tags = f"{blue.name}, {red.name}"
    rows = table(
        [*PRODUCT_HEADERS, "Description", "ID", "Updated at"],
        [product.sku, product.name, "5", "3", "active", category.slug, tags, "", str(product.id), "whenever"],
    )

    report = await confirm_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert [row.status for row in report.rows] == ["unchanged"]
    assert report.ignored_headers == ["Updated at"]
    await session.refresh(product)
    assert product.version == version


async def test_rows_match_by_id_when_asked(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category = await make_category(session)
    rows = table(
        ["ID", "Name", "Slug"], [str(category.id), "Renamed", category.slug], ["999999999", "X", "x"]
    )

    report = await preview_import(system_uow, Category, rows, key="id", file_name="c.csv", file_hash="h")

    assert report.match_by == "id", report
    assert [row.status for row in report.rows] == ["changed", "error"]
    assert report.rows[1].errors == {"ID": ["There is no category with the ID 999999999."]}


async def test_a_unique_clash_is_pinned_to_its_row(system_uow: UnitOfWork, session: AsyncSession) -> None:
    first, second = await make_category(session), await make_category(session)
    rows = table(
        ["ID", "Name", "Slug"],
        [str(first.id), "Fine", first.slug],
        [str(second.id), "Clash", first.slug],
    )

    report = await confirm_import(
        system_uow, Category, rows, key="id", file_name="c.csv", file_hash="h", skip_errors=True
    )

    assert [row.status for row in report.rows] == ["changed", "error"], report
    assert "Slug" in report.rows[1].errors
    await session.refresh(first)
    assert first.name == "Fine"


async def test_a_new_row_clashing_with_a_record_names_the_value(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    """Matched by id, a row without one is new: its name may clash with a tag's; the message says which."""
    taken = await make_tag(session, name=unique("taken-"))
    rows = table(["ID", "Name"], ["", unique("fresh-")], ["", taken.name])

    report = await confirm_import(
        system_uow, Tag, rows, key="id", file_name="t.csv", file_hash="h", skip_errors=True
    )

    assert [row.status for row in report.rows] == ["new", "error"], report
    assert report.rows[1].errors == {"Name": [f"A tag named {taken.name} already exists."]}


async def test_a_key_repeated_in_the_file_refuses_the_file(system_uow: UnitOfWork) -> None:
    rows = table(["SKU", "Name"], ["A-1", "One"], ["A-1", "Two"])
    with pytest.raises(FileRefused, match="rows 2 and 3"):
        await preview_import(system_uow, Product, rows)


async def test_two_columns_for_one_field_refuse_the_file(system_uow: UnitOfWork) -> None:
    rows = table(["Category", "category_id"], ["a", "b"])
    with pytest.raises(FileRefused, match="both give Category"):
        await preview_import(system_uow, Product, rows)


async def test_a_changed_file_is_refused_at_confirm(system_uow: UnitOfWork) -> None:
    with pytest.raises(Conflict, match="not the one that was previewed"):
        await confirm_import(
            system_uow, Tag, table(["Name"], ["x"]), file_name="t.csv", file_hash="new", expected_hash="old"
        )


async def test_import_needs_the_import_permission_and_add_for_new_rows(uow_as: UowFactory) -> None:
    rows = table(["Name"], [unique("tag-")])
    viewer = Actor(user_id=1, username="v", permissions=frozenset({"tag.view", "tag.add"}))
    async with uow_as(viewer) as uow:
        with pytest.raises(PermissionDenied):
            await preview_import(uow, Tag, rows)
    importer = Actor(user_id=1, username="i", permissions=frozenset({"tag.view", "tag.import"}))
    async with uow_as(importer) as uow:
        report = await preview_import(uow, Tag, rows)
    assert report.rows[0].status == "error" and "tag.add" in report.rows[0].errors["row"][0]


async def test_personal_data_an_actor_may_not_see_is_not_imported(
    uow_as: UowFactory, session: AsyncSession
) -> None:
    customer = await make_customer(session)
    rows = table(["Email", "Name", "Phone"], [customer.email, "New name", "+1 555"])
    clerk = Actor(user_id=1, username="c", permissions=frozenset({"customer.import", "customer.change"}))
    async with uow_as(clerk) as uow:
        report = await preview_import(uow, Customer, rows)
    # Without view_pii the email column cannot even match rows: it is left out, so rows match by id.
    assert report.ignored_headers == ["Email", "Phone"] and report.match_by == "id"


async def test_a_tag_in_the_trash_that_a_product_keeps_reads_back_unchanged(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, blue, product = await catalog(session)
    await session.refresh(product, ["tags"])
    product.tags = [red, blue]
    await session.flush()
    red.deleted_at = product.created_at  # in the trash, still on the product (as the service allows)
    await session.flush()
    tags = f"{blue.name}, {red.name}"
    rows = table(PRODUCT_HEADERS, [product.sku, product.name, "5", "3", "active", category.slug, tags])

    report = await preview_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    assert [row.status for row in report.rows] == ["unchanged"], report.rows
