"""An import's preview says exactly what its confirm does, and the confirm writes what a form writes.

Rows of every kind the batch path treats apart (references in the trash, unique clashes with live
records, with records in the trash and between rows of the file, rows matched by id and by natural
key, empty collections, NUL) get the same status and messages from the preview, which writes nothing,
and from the confirm; what the confirm stores, and the audit entries it writes (COPY on PostgreSQL),
are what a create through the service stores and writes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db import audit
from backend.db.policy import policy_of
from backend.db.uow import UnitOfWork
from backend.models import AuditEntry, Customer, Product, Tag, User
from backend.services.catalog import ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.exchange.importing import ImportReport, confirm_import, preview_import
from backend.services.exchange.reading import BadFile, ImportLimits, Table, read_table
from backend.services.registry import service_for
from tests.backend.services.test_importing import PRODUCT_HEADERS, catalog, table
from tests.factories import make_category, make_customer, make_product, make_tag, unique

Outcomes = list[tuple[int, str, dict[str, list[str]]]]


def outcomes(report: ImportReport) -> Outcomes:
    return [(row.number, row.status, row.errors) for row in report.rows]


async def preview_then_confirm(
    uow: UnitOfWork, model: type[Any], rows: Table, *, key: str | None = None
) -> tuple[ImportReport, ImportReport]:
    preview = await preview_import(uow, model, rows, key=key)
    confirm = await confirm_import(
        uow, model, rows, key=key, file_name="f.csv", file_hash="h", skip_errors=True
    )
    assert confirm.written
    return preview, confirm


async def test_by_natural_key_the_preview_says_what_the_confirm_does(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, _blue, product = await catalog(session)
    gone_tag = await make_tag(session, name=unique("gone-tag-"))
    gone_category = await make_category(session)
    trashed = await make_product(session, category_id=category.id)
    for record in (gone_tag, gone_category, trashed):
        record.deleted_at = category.created_at
    await session.flush()
    new = [unique("N-") for _ in range(4)]
    rows = table(
        PRODUCT_HEADERS,
        [new[0], "With a deleted tag", "1", "1", "active", category.slug, gone_tag.name],
        [new[1], "In a deleted category", "1", "1", "active", gone_category.slug, ""],
        [trashed.sku, "Takes a trashed SKU", "1", "1", "active", category.slug, red.name],
        [product.sku, "Renamed", "5.00", "3", "active", category.slug, ""],
        [new[2], "No tags at all", "2", "0", "draft", category.slug, ""],
        [new[3], "Nul\x00here", "2", "0", "draft", category.slug, ""],
    )

    preview, confirm = await preview_then_confirm(system_uow, Product, rows)

    assert outcomes(preview) == outcomes(confirm)
    assert [row.status for row in confirm.rows] == ["error", "error", "new", "changed", "new", "error"]
    assert confirm.rows[0].errors == {"Tags": [f"No such tag: {gone_tag.id}."]}
    assert confirm.rows[1].errors == {"Category": [f"Category {gone_category.id} does not exist."]}
    assert confirm.rows[5].errors == {"Name": ["Text cannot contain the NUL character."]}
    assert [row.changes for row in preview.rows] == [row.changes for row in confirm.rows]
    empty = await session.scalar(select(Product).where(Product.sku == new[2]))
    assert empty is not None
    await session.refresh(empty, ["tags"])
    assert empty.tags == []


async def test_by_id_the_preview_says_what_the_confirm_does(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, _red, _blue, product = await catalog(session)
    trashed = await make_product(session, category_id=category.id)
    trashed.deleted_at = category.created_at
    await session.flush()
    twice = unique("T-")
    headers = ["ID", *PRODUCT_HEADERS]
    rows = table(
        headers,
        ["", product.sku, "Clashes with a live product", "1", "1", "active", category.slug, ""],
        ["", twice, "First of two", "1", "1", "active", category.slug, ""],
        ["", twice, "Second of two", "1", "1", "active", category.slug, ""],
        ["", trashed.sku, "Takes a trashed SKU", "1", "1", "active", category.slug, ""],
        [str(product.id), product.sku, "Renamed by id", "5.00", "3", "active", category.slug, ""],
        [str(trashed.id), trashed.sku, "In the trash", "5.00", "3", "active", category.slug, ""],
    )

    preview, confirm = await preview_then_confirm(system_uow, Product, rows, key="id")

    assert outcomes(preview) == outcomes(confirm)
    assert [row.status for row in confirm.rows] == ["error", "new", "error", "new", "changed", "error"]
    assert confirm.rows[0].errors == {"SKU": [f"A product with the SKU {product.sku} already exists."]}
    assert confirm.rows[2].errors == {
        "SKU": [f"A product with the SKU {twice} already exists (row 3 of this file)."]
    }


async def test_a_natural_key_written_with_spaces_is_checked_as_the_confirm_stores_it(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    """The schema strips the key, so " SKU" clashes with a live "SKU" (and two rows with one stripped key
    clash with each other) on the confirm: the preview must say so too. The file readers strip cells
    already; a `Table` built otherwise (a caller of the service) gets the same answer from both."""
    category, _red, _blue, product = await catalog(session)
    fresh = unique("S-")
    rows = table(
        PRODUCT_HEADERS,
        [f" {product.sku}", "Spaced", "1", "1", "active", category.slug, ""],
        [fresh, "Once", "1", "1", "active", category.slug, ""],
        [f"{fresh} ", "Twice", "1", "1", "active", category.slug, ""],
    )

    preview, confirm = await preview_then_confirm(system_uow, Product, rows)

    assert outcomes(preview) == outcomes(confirm)
    assert [row.status for row in confirm.rows] == ["error", "new", "error"]


async def test_personal_data_never_appears_in_an_import_for_a_role_without_view_pii(
    uow_as: Any, session: AsyncSession
) -> None:
    taken = await make_customer(session)
    other = await make_customer(session)
    await session.flush()
    permissions = {f"customer.{action}" for action in ("view", "add", "change", "import")}
    actor = Actor(user_id=None, username="clerk", permissions=frozenset(permissions))
    rows = table(
        ["ID", "Name", "Email", "Phone"],
        ["", "New", taken.email, "+1 555"],
        [str(other.id), "Renamed", taken.email, "+1 555"],
    )
    async with uow_as(actor) as uow:
        preview, confirm = await preview_then_confirm(uow, Customer, rows, key="id")

    assert outcomes(preview) == outcomes(confirm)
    assert {"Email", "Phone"} <= set(confirm.ignored_headers)
    said = repr([(row.errors, row.changes) for row in (*preview.rows, *confirm.rows)])
    for secret in (taken.email, other.email, taken.phone, other.phone, "+1 555"):
        assert secret not in said


async def _entries_of(session: AsyncSession, model: str, *ids: int) -> dict[int, AuditEntry]:
    stmt = select(AuditEntry).where(
        AuditEntry.model == model, AuditEntry.action == "create", AuditEntry.object_id.in_(map(str, ids))
    )
    return {int(entry.object_id): entry for entry in await session.scalars(stmt)}


def _without(changes: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in changes.items() if name not in names}


async def test_imported_customers_and_tags_are_stored_and_audited_as_a_form_creates_them(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    by_form = await CustomerService(system_uow).create(
        {"name": "Ada", "email": unique("ada") + "@example.com", "phone": "+44 1", "address": ""}
    )
    tag = await TagService(system_uow).create({"name": unique("form-tag-")})
    await system_uow.session.flush()
    email, tag_name = unique("ada") + "@example.com", unique("file-tag-")

    customers = await confirm_import(
        system_uow,
        Customer,
        table(["Name", "Email", "Phone", "Address"], ["Ada", email, "+44 1", ""]),
        file_name="c.csv",
        file_hash="h",
    )
    tags = await confirm_import(
        system_uow, Tag, table(["Name"], [tag_name]), file_name="t.csv", file_hash="h"
    )

    customer_id, tag_id = customers.rows[0].record_id, tags.rows[0].record_id
    assert customer_id is not None and tag_id is not None
    form_id, form_tag_id = by_form.id, tag.id
    session.expire_all()
    form_customer, file_customer = (
        await session.get(Customer, form_id),
        await session.get(Customer, customer_id),
    )
    assert form_customer is not None and file_customer is not None
    stored = [
        {name: getattr(record, name) for name in ("name", "phone", "address", "version", "deleted_at")}
        for record in (form_customer, file_customer)
    ]
    assert stored[0] == stored[1]
    assert file_customer.created_at.tzinfo is not None
    entries = await _entries_of(session, "customer", form_id, customer_id)
    assert _without(entries[customer_id].changes, "id", "email", "created_at") == _without(
        entries[form_id].changes, "id", "email", "created_at"
    )
    assert set(entries[customer_id].changes) == set(entries[form_id].changes)
    assert entries[customer_id].object_repr == "Ada" and entries[customer_id].created_at.tzinfo is not None
    tag_entries = await _entries_of(session, "tag", form_tag_id, tag_id)
    assert set(tag_entries[tag_id].changes) == set(tag_entries[form_tag_id].changes)
    assert tag_entries[tag_id].changes["name"] == [None, tag_name]


async def test_imported_products_hold_the_same_values_as_a_form_saves(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category, red, blue, _product = await catalog(session)
    by_form = await ProductService(system_uow).create(
        {
            "sku": unique("F-"),
            "name": "Lamp",
            "description": "Bright",
            "price": "12.5",
            "stock": 4,
            "status": "archived",
            "category_id": category.id,
            "tag_ids": [red.id, blue.id],
        }
    )
    await system_uow.session.flush()
    rows = table(
        [*PRODUCT_HEADERS, "Description"],
        [unique("I-"), "Lamp", "12.5", "4", "archived", category.slug, f"{blue.name}, {red.name}", "Bright"],
    )

    report = await confirm_import(system_uow, Product, rows, file_name="p.csv", file_hash="h")

    imported_id, form_id = report.rows[0].record_id, by_form.id
    assert imported_id is not None
    session.expire_all()
    names = ("name", "description", "price", "stock", "status", "category_id", "version", "deleted_at")
    stored = []
    for id_ in (form_id, imported_id):
        record = await session.get(Product, id_)
        assert record is not None
        await session.refresh(record, ["tags"])
        stored.append(
            {**{name: getattr(record, name) for name in names}, "tags": sorted(t.id for t in record.tags)}
        )
    assert stored[0] == stored[1] and stored[1]["price"] == Decimal("12.50")
    entries = await _entries_of(session, "product", form_id, imported_id)
    assert _without(entries[imported_id].changes, "id", "sku", "created_at") == _without(
        entries[form_id].changes, "id", "sku", "created_at"
    )


async def test_an_entry_for_a_row_inserted_from_values_redacts_its_secrets(system_uow: UnitOfWork) -> None:
    """Were a model with secrets built generically (User is not: UserService hashes the password), its
    imported rows' entries would say what a flush's entries say: every secret redacted."""
    secrets = policy_of(User).secret
    assert "password_hash" in secrets and not service_for(User).builds_generically()
    row = {"id": 7, "username": "ada", "is_active": True, **{name: f"hidden-{name}" for name in secrets}}

    (entry,) = audit.inserted_row_entries(system_uow.session.sync_session, User, [row], [{}])

    assert all(entry["changes"][name] == [None, audit.REDACTED] for name in secrets)
    assert "hidden-" not in repr(entry) and entry["changes"]["username"] == [None, "ada"]


async def test_a_change_to_a_value_a_new_row_of_the_file_takes_is_refused_by_both(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    """The confirm inserts the file's new rows before it changes records, so a record changed to a new
    row's SKU clashes with it; the preview, which inserts nothing, must find that clash too."""
    category, _red, _blue, product = await catalog(session)
    claimed = unique("C-")
    headers = ["ID", *PRODUCT_HEADERS]
    rows = table(
        headers,
        [str(product.id), claimed, "Renamed to a new row's SKU", "5.00", "3", "active", category.slug, ""],
        ["", claimed, "New", "1", "1", "active", category.slug, ""],
    )

    preview, confirm = await preview_then_confirm(system_uow, Product, rows, key="id")

    assert outcomes(preview) == outcomes(confirm)
    assert [row.status for row in confirm.rows] == ["error", "new"]
    assert confirm.rows[0].errors == {
        "SKU": [f"A product with the SKU {claimed} already exists (row 3 of this file)."]
    }


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.json", b'[{"SKU": "K\\u0000EY", "Name": "Nul in the key"}]'),
        ("p.json", b'[{"SKU": "KEY", "Category": ["gar\\u0000den"]}]'),
        ("p.csv", b"SKU,Name\nK\x00EY,Nul in the key\n"),
    ],
)
def test_nul_in_any_cell_refuses_the_file_before_a_query_is_sent(name: str, data: bytes) -> None:
    """PostgreSQL refuses NUL even in a query's parameters (a key looked up, a name resolved), so a file
    holding one never reaches the preview: the import's rows only come from `read_table`."""
    with pytest.raises(BadFile, match="NUL"):
        read_table(data, filename=name, limits=ImportLimits(max_bytes=2**20, max_rows=10, max_cell_chars=100))
