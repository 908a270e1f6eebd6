"""The list's Export menu over HTTP: CSV, XLSX and JSON of exactly the listed rows, masked, formula-safe."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from typing import Any
from urllib.parse import urlsplit

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import ProductStatus
from backend.services import masking
from tests.admin.conftest import ClientFactory
from tests.factories import make_category, make_customer, make_product, make_role, make_tag, make_user, unique

FORMATS = ("csv", "xlsx", "json")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
PRODUCT_HEADERS = ["ID", "SKU", "Name", "Description", "Price", "Stock", "Status", "Category", "Tags"]
FORMULA = '=HYPERLINK("http://evil.example","click")'
EXPORT_LINK = re.compile(r'<a class="dropdown-item" id="export-(\w+)"\s+href="([^"]+)"')


async def download(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response


def table(format: str, body: bytes) -> list[list[Any]]:
    """The file as rows of cells, headers first; several references as a list in JSON, else joined."""
    if format == "csv":
        return [list(row) for row in csv.reader(io.StringIO(body.decode()))]
    if format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        return [
            ["" if value is None else value for value in row] for row in sheet.iter_rows(values_only=True)
        ]
    records = json.loads(body)
    headers = list(records[0]) if records else []
    return [headers, *([record[h] for h in headers] for record in records)]


def readable_bytes(format: str, body: bytes) -> bytes:
    """What the file holds, uncompressed: an XLSX file is a zip."""
    if format != "xlsx":
        return body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return b"\n".join(archive.read(name) for name in archive.namelist())


@pytest.mark.parametrize("format", FORMATS)
async def test_each_format_downloads_as_a_file_with_the_labels_as_headers(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    client = await new_client(roles=["auditor"])
    category = await make_category(session, slug=unique("lamps-"))
    tags = [await make_tag(session, name=unique("zinc-")), await make_tag(session, name=unique("amber-"))]
    product = await make_product(session, category_id=category.id, tags=tags, description="Bright")
    await session.commit()
    async with client.stream("GET", f"/admin/product/export/{format}?search={product.sku}") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == MEDIA_TYPES[format]
        assert response.headers["content-disposition"] == f'attachment; filename="product.{format}"'
        assert "content-length" not in response.headers  # streamed, not buffered
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    names = sorted(tag.name for tag in tags)
    assert table(format, body) == [
        PRODUCT_HEADERS,
        [
            str(product.id),
            product.sku,
            product.name,
            "Bright",
            "9.99",
            "10",
            "active",
            category.slug,  # related records by their natural key
            names if format == "json" else ", ".join(names),
        ],
    ]


@pytest.mark.parametrize("format", FORMATS)
async def test_a_searched_and_filtered_list_exports_only_its_live_rows(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    client = await new_client(superuser=True)
    category = await make_category(session)
    word = unique("needle")
    wanted = [await make_product(session, category_id=category.id, name=f"{word} {n}") for n in range(3)]
    await make_product(session, category_id=category.id, name=f"{word} draft", status=ProductStatus.DRAFT)
    await make_product(session, category_id=category.id, name="no match here")
    await make_product(session, name=f"{word} elsewhere")  # another category
    deleted = await make_product(session, category_id=category.id, name=f"{word} deleted")
    deleted.deleted_at = deleted.created_at
    await session.commit()
    page = await client.get(f"/admin/product/list?category={category.id}&status=active&search={word}")
    links = {kind: html.unescape(href) for kind, href in EXPORT_LINK.findall(page.text)}
    assert list(links) == list(FORMATS)
    response = await download(client, links[format])
    rows = table(format, response.content)[1:]
    assert sorted(row[0] for row in rows) == sorted(str(p.id) for p in wanted)


@pytest.mark.parametrize("format", FORMATS)
async def test_personal_data_is_masked_for_a_role_without_view_pii(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    exporters = await make_role(session, permissions=["customer.view", "customer.export"])
    email, phone, address = f"{unique('pia')}@example.com", "+44 20 7946 0999", "12 Hidden Lane, Leeds"
    customer = await make_customer(session, email=email, phone=phone, address=address)
    await session.commit()
    client = await new_client(roles=[exporters.name])
    body = (await download(client, f"/admin/customer/export/{format}?search={customer.name}")).content
    assert table(format, body) == [
        ["ID", "Name", "Email", "Phone", "Address"],
        [str(customer.id), customer.name, masking.MASK, masking.MASK, masking.MASK],
    ]
    readable = readable_bytes(format, body)
    for private in (email, phone, address, "7946", "Hidden Lane"):
        assert private.encode() not in readable, private

    managers = await make_role(session, permissions=["customer.view", "customer.export", "customer.view_pii"])
    await session.commit()
    manager = await new_client(roles=[managers.name])
    shown = (await download(manager, f"/admin/customer/export/{format}?search={customer.name}")).content
    phone_cell = phone if format == "json" else "'" + phone  # a leading "+" could start a formula
    assert table(format, shown)[1] == [str(customer.id), customer.name, email, phone_cell, address]


@pytest.mark.parametrize("format", FORMATS)
async def test_secrets_are_never_exported(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    client = await new_client(superuser=True)
    user = await make_user(session)
    await session.commit()
    body = (await download(client, f"/admin/user/export/{format}")).content
    assert user.username in {row[1] for row in table(format, body)[1:]}
    readable = readable_bytes(format, body).lower()
    assert b"argon2" not in readable and b"password" not in readable


@pytest.mark.parametrize("format", ["csv", "xlsx"])
async def test_a_formula_is_exported_as_text_a_spreadsheet_never_runs(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    client = await new_client(roles=["auditor"])
    product = await make_product(session, name=FORMULA, description="+cmd|' /C calc'!A0")
    await session.commit()
    body = (await download(client, f"/admin/product/export/{format}?search={product.sku}")).content
    (row,) = table(format, body)[1:]
    assert row[2:4] == ["'" + FORMULA, "'+cmd|' /C calc'!A0"]
    if format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        assert sheet["C2"].data_type == "s" and sheet["D2"].data_type == "s"  # text, not a formula


async def test_json_keeps_text_as_it_is(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["auditor"])
    product = await make_product(session, name=FORMULA)
    await session.commit()
    body = (await download(client, f"/admin/product/export/json?search={product.sku}")).content
    assert json.loads(body)[0]["Name"] == FORMULA


@pytest.mark.parametrize("format", FORMATS)
async def test_a_role_without_export_is_refused_with_a_reason(
    new_client: ClientFactory, session: AsyncSession, format: str
) -> None:
    viewer = await new_client(roles=["viewer"])
    response = await viewer.get(f"/admin/product/export/{format}")
    assert response.status_code == 403
    assert "You need the permission product.export to export products." in html.unescape(response.text)


async def test_an_unknown_format_is_not_found_with_a_reason(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    response = await client.get("/admin/product/export/ods")
    assert response.status_code == 404
    assert "Products cannot be exported in this format." in response.text


async def test_the_list_offers_one_export_menu_only_to_exporters(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    exporter, viewer = await new_client(roles=["auditor"]), await new_client(roles=["viewer"])
    page = await exporter.get("/admin/product/list?search=lamp&sortBy=price&sort=desc&pageSize=10")
    assert page.text.count('id="export-menu"') == 1
    links = dict(EXPORT_LINK.findall(page.text))
    assert list(links) == list(FORMATS)
    for kind, href in links.items():
        url = urlsplit(html.unescape(href))
        assert url.path == f"/admin/product/export/{kind}"
        assert url.query == "search=lamp&sortBy=price&sort=desc"  # the list's rows, not its page
    listing = await viewer.get("/admin/product/list")
    assert listing.status_code == 200 and "export-menu" not in listing.text
