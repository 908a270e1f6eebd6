"""Export through the exchange service: which rows and cells, masked per actor, and the three file formats."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import PermissionDenied
from backend.exports import spreadsheet_safe
from backend.models import Category, Customer, Order, OrderStatus, Product, ProductStatus, User
from backend.services import masking
from backend.services.exchange.exporting import export_headers, export_rows, started
from backend.services.exchange.fields import cell_text
from backend.services.exchange.writing import Cell, encode, spreadsheet_text
from tests.factories import (
    make_category,
    make_customer,
    make_order,
    make_product,
    make_tag,
    make_user,
    unique,
)

PRODUCT_HEADERS = ["ID", "SKU", "Name", "Description", "Price", "Stock", "Status", "Category", "Tags"]
FORMULA = '=HYPERLINK("http://evil.example","click")'


def actor(*permissions: str) -> Actor:
    return Actor(user_id=None, username="exporter", permissions=frozenset(permissions))


def uow_for(session: AsyncSession, settings: Settings, who: Actor) -> UnitOfWork:
    return UnitOfWork(session, actor=who, settings=settings, writes=False)


async def exported(
    session: AsyncSession, settings: Settings, model: type[Any], who: Actor, **options: Any
) -> list[list[Cell]]:
    return [row async for row in export_rows(uow_for(session, settings, who), model, **options)]


async def file_bytes(format: str, headers: list[str], rows: list[list[Cell]]) -> bytes:
    async def source() -> AsyncIterator[list[Cell]]:
        for row in rows:
            yield row

    return b"".join([chunk async for chunk in encode(format, headers, source())])


async def test_product_rows_carry_their_values_and_related_records_by_natural_key(
    session: AsyncSession, settings: Settings
) -> None:
    category = await make_category(session, slug=unique("garden-"))
    zinc, amber = (
        await make_tag(session, name=unique("zinc-")),
        await make_tag(session, name=unique("amber-")),
    )
    product = await make_product(
        session,
        category_id=category.id,
        price=Decimal("12.50"),
        stock=3,
        status=ProductStatus.DRAFT,
        description="Two lines,\nand a comma",
        tags=[zinc, amber],
    )
    untagged = await make_product(session, category_id=category.id)
    who = actor("product.export")
    assert export_headers(Product, who) == PRODUCT_HEADERS
    rows = await exported(session, settings, Product, who, criteria=[Product.category_id == category.id])
    assert rows == [
        [
            str(product.id),
            product.sku,
            product.name,
            "Two lines,\nand a comma",
            "12.50",
            "3",
            "draft",
            category.slug,
            [amber.name, zinc.name],
        ],
        [
            str(untagged.id),
            untagged.sku,
            untagged.name,
            "",
            "9.99",
            "10",
            "active",
            category.slug,
            [],
        ],
    ]


async def test_deleted_rows_are_never_exported_and_criteria_and_order_apply(
    session: AsyncSession, settings: Settings
) -> None:
    category = await make_category(session)
    kept = [await make_product(session, category_id=category.id, name=unique("Kept ")) for _ in range(5)]
    gone = await make_product(session, category_id=category.id)
    gone.deleted_at = gone.created_at
    other = await make_product(session)  # another category: outside the criteria
    await session.flush()
    # Two rows a batch: each batch reads its own rows' tags, and the order holds across batches.
    rows = await exported(
        session,
        settings,
        Product,
        actor("product.export"),
        criteria=[Product.category_id == category.id],
        order_by=[Product.id.desc()],
        batch=2,
    )
    assert [row[0] for row in rows] == [str(p.id) for p in reversed(kept)]
    assert str(gone.id) not in {row[0] for row in rows} and str(other.id) not in {row[0] for row in rows}


async def test_tags_of_each_batch_stay_with_their_rows(session: AsyncSession, settings: Settings) -> None:
    category = await make_category(session)
    tags = [await make_tag(session, name=unique(f"t{n}-")) for n in range(3)]
    products = [await make_product(session, category_id=category.id, tags=tags[: n % 4]) for n in range(7)]
    rows = await exported(
        session,
        settings,
        Product,
        actor("product.export"),
        criteria=[Product.category_id == category.id],
        batch=3,
    )
    expected = {str(p.id): sorted(tag.name for tag in tags[: n % 4]) for n, p in enumerate(products)}
    assert {row[0]: row[-1] for row in rows} == expected


async def test_a_category_names_its_parent_by_slug(session: AsyncSession, settings: Settings) -> None:
    parent = await make_category(session, slug=unique("outdoor-"))
    child = await make_category(session, slug=unique("garden-"), parent_id=parent.id)
    who = actor("category.export")
    assert export_headers(Category, who) == ["ID", "Name", "Slug", "Parent"]
    rows = await exported(session, settings, Category, who, criteria=[Category.id.in_([parent.id, child.id])])
    assert rows == [
        [str(parent.id), parent.name, parent.slug, None],
        [str(child.id), child.name, child.slug, parent.slug],
    ]


async def test_every_cell_is_the_value_as_fields_cell_text_writes_it(
    session: AsyncSession, settings: Settings
) -> None:
    order = await make_order(session, status=OrderStatus.PAID)  # a reference by id, an enum, a datetime
    rows = await exported(session, settings, Order, actor("order.export"), criteria=[Order.id == order.id])
    assert rows == [[str(order.id), str(order.customer_id), "paid", cell_text(order.placed_at)]]


@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
async def test_personal_data_is_masked_as_the_list_shows_it_without_view_pii(
    session: AsyncSession, settings: Settings, format: str
) -> None:
    email, phone, address = f"{unique('pia')}@example.com", "+44 20 7946 0999", "12 Hidden Lane"
    customer = await make_customer(session, email=email, phone=phone, address=address)
    blank = await make_customer(session, phone="", address="")
    who = actor("customer.export")
    rows = await exported(
        session, settings, Customer, who, criteria=[Customer.id.in_([customer.id, blank.id])]
    )
    table = masking.table_of(Customer)
    for row, record in zip(rows, (customer, blank), strict=True):
        assert row == [
            str(record.id),
            record.name,
            *(
                masking.shown(who, table, name, getattr(record, name))
                for name in ("email", "phone", "address")
            ),
        ]
    assert rows[0][2:] == [masking.MASK] * 3
    data = await file_bytes(format, export_headers(Customer, who), rows)
    for private in (email, phone, address, "Hidden Lane", "7946"):
        assert private.encode() not in data, private
    assert masking.MASK.encode() in data or format == "xlsx"  # XLSX is compressed


async def test_personal_data_is_exported_with_view_pii(session: AsyncSession, settings: Settings) -> None:
    customer = await make_customer(session, phone="+44 1234")
    rows = await exported(
        session,
        settings,
        Customer,
        actor("customer.export", "customer.view_pii"),
        criteria=[Customer.id == customer.id],
    )
    assert rows == [[str(customer.id), customer.name, customer.email, "+44 1234", customer.address]]


@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
async def test_secrets_are_never_exported(session: AsyncSession, settings: Settings, format: str) -> None:
    user = await make_user(session)
    who = Actor(user_id=None, username="root", is_superuser=True)
    headers = export_headers(User, who)
    assert not {"password", "password hash", "passwordhash"} & {h.lower() for h in headers}
    rows = await exported(session, settings, User, who, criteria=[User.id == user.id])
    data = await file_bytes(format, headers, rows)
    if format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        assert sheet is not None
        data = "\n".join(str(cell.value) for line in sheet.iter_rows() for cell in line).encode()
    assert user.username.encode() in data
    assert b"argon2" not in data and user.password_hash.encode() not in data


async def test_an_export_without_the_permission_is_refused_before_anything_is_read(
    session: AsyncSession, settings: Settings
) -> None:
    who = actor("product.view", "customer.export")
    with pytest.raises(PermissionDenied, match=r"product\.export"):
        export_headers(Product, who)
    with pytest.raises(PermissionDenied, match=r"product\.export"):
        await started(export_rows(uow_for(session, settings, who), Product))


async def test_started_reads_the_first_row_at_once_and_loses_none(
    session: AsyncSession, settings: Settings
) -> None:
    category = await make_category(session)
    products = [await make_product(session, category_id=category.id) for _ in range(3)]
    who = actor("product.export")
    rows = await started(
        export_rows(uow_for(session, settings, who), Product, criteria=[Product.category_id == category.id])
    )
    assert [row[0] async for row in rows] == [str(p.id) for p in products]
    nothing = await started(export_rows(uow_for(session, settings, who), Product, criteria=[Product.id < 0]))
    assert [row async for row in nothing] == []


ROWS: list[list[Cell]] = [
    ["1", FORMULA, "12.50", ["amber", "zinc"], None],
    ["2", "+cmd|' /C calc'!A0", "-3", [], "plain"],
]
HEADERS = ["ID", "Name", "Price", "Tags", "Note"]


async def test_csv_neutralises_formulas_and_joins_references() -> None:
    data = await file_bytes("csv", HEADERS, ROWS)
    assert not data.startswith(b"\xef\xbb\xbf")  # no byte order mark
    assert list(csv.reader(io.StringIO(data.decode()))) == [
        HEADERS,
        ["1", "'" + FORMULA, "12.50", "amber, zinc", ""],
        ["2", "'+cmd|' /C calc'!A0", "'-3", "", "plain"],
    ]


async def test_xlsx_holds_text_never_a_formula() -> None:
    data = await file_bytes("xlsx", HEADERS, ROWS)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cells = list(sheet.iter_rows())
    assert [[cell.value for cell in line] for line in cells] == [
        HEADERS,
        ["1", "'" + FORMULA, "12.50", "amber, zinc", None],
        ["2", "'+cmd|' /C calc'!A0", "'-3", None, "plain"],
    ]
    assert {cell.data_type for line in cells for cell in line if cell.value is not None} == {"s"}


async def test_xlsx_replaces_characters_a_workbook_cannot_hold() -> None:
    data = await file_bytes("xlsx", ["Name"], [["bell\x07 and tab\tkept"]])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert sheet["A2"].value == "bell\ufffd and tab\tkept"


async def test_json_is_a_list_of_objects_with_cells_as_they_are() -> None:
    data = await file_bytes("json", HEADERS, ROWS)
    assert json.loads(data) == [dict(zip(HEADERS, row, strict=True)) for row in ROWS]
    assert json.loads(await file_bytes("json", HEADERS, [])) == []


async def test_a_stopped_xlsx_export_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    async def failing() -> AsyncIterator[list[Cell]]:
        for n in range(500):
            yield [str(n), "row"]
        raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        _ = [chunk async for chunk in encode("xlsx", ["ID", "Name"], failing())]
    assert files_in(tmp_path) == []


def files_in(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="csv, xlsx, json"):
        await file_bytes("ods", HEADERS, ROWS)


@pytest.mark.parametrize(
    "text",
    [
        "Plain",
        "12.50",
        "A\u0301ccent",
        "1\u20e3 combined",
        "=1+1",
        "-3",
        "@SUM(A1)",
        "\uff1dfullwidth",
        "\u200b=hidden",
        "\t=tab",
        "'quoted",
        " =spaced",
        "\u2212minus",
        "",
        "élan",
    ],
)
def test_the_fast_path_agrees_with_spreadsheet_safe(text: str) -> None:
    assert spreadsheet_text(text) == spreadsheet_safe(text)
