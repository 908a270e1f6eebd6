"""The store pages over HTTP: forms, masking, filters, actions, export and query counts."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.models import Product, ProductStatus
from tests.admin.conftest import ClientFactory, csrf_from, page_token
from tests.factories import make_category, make_customer, make_order, make_product, unique

_FROM_PRODUCT = re.compile(r"\bFROM product\b(?!_)", re.IGNORECASE)


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements run while the block runs (savepoint bookkeeping left out)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_invalid_product_shows_field_errors_keeps_input_changes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["editor"])
    category = await make_category(session)
    await session.commit()
    form = await client.get("/admin/product/create")
    data = {
        "sku": "NEW-1",
        "name": "Kept name",
        "price": "-4",
        "stock": "2",
        "status": "active",
        "category": str(category.id),
        "csrf_token": csrf_from(form.text),
        "save": "Save",
    }
    response = await client.post("/admin/product/create", data=data)
    assert response.status_code == 400
    assert "Must be more than 0." in response.text
    both = await client.post("/admin/product/create", data={**data, "category": "", "stock": "-1"})
    assert both.status_code == 400  # every problem at once, not one per submit
    assert "Must be more than 0." in both.text and "Cannot be below 0." in both.text
    assert 'value="Kept name"' in response.text
    assert await session.scalar(select(func.count()).where(Product.sku == "NEW-1")) == 0

    await make_product(session, sku="NEW-1")
    await session.commit()
    response = await client.post("/admin/product/create", data={**data, "price": "4.00"})
    assert response.status_code == 400
    assert "A product with the SKU NEW-1 already exists." in response.text
    assert await session.scalar(select(func.count()).where(Product.sku == "NEW-1")) == 1


async def test_editor_creates_and_edits_a_product(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["editor"])
    category = await make_category(session)
    await session.commit()
    form = await client.get("/admin/product/create")
    response = await client.post(
        "/admin/product/create",
        data={
            "sku": "ED-1",
            "name": "Editor's",
            "price": "3.20",
            "stock": "4",
            "status": "draft",
            "category": str(category.id),
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 302, response.text
    product = (await session.execute(select(Product).where(Product.sku == "ED-1"))).scalar_one()
    edit = await client.get(f"/admin/product/edit/{product.id}")
    response = await client.post(
        f"/admin/product/edit/{product.id}",
        data={
            "sku": "ED-1",
            "name": "Renamed",
            "price": "3.20",
            "stock": "4",
            "status": "active",
            "category": str(category.id),
            "_version": str(product.version),
            "csrf_token": csrf_from(edit.text),
            "save": "Save",
        },
    )
    assert response.status_code == 302, response.text
    await session.refresh(product)
    assert product.name == "Renamed" and product.status is ProductStatus.ACTIVE and product.version == 2


async def test_list_page_runs_the_same_statements_whatever_the_page_size(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["viewer"])
    for _ in range(3):
        category = await make_category(session)
        for _ in range(40):
            await make_product(session, category_id=category.id)
    await session.commit()
    counts = {}
    for page_size in (10, 100):
        with counting_statements(engine) as statements:
            response = await client.get(f"/admin/product/list?pageSize={page_size}")
        assert response.status_code == 200
        assert response.text.count('class="form-check-input m-0 align-middle select-box"') == page_size
        counts[page_size] = len(statements)
    # session and permissions; capped count; rows with their categories joined; the category filter's choices
    assert counts == {10: 4, 100: 4}


async def test_a_first_page_that_is_not_full_is_its_own_count(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["viewer"])
    category = await make_category(session)
    for _ in range(3):
        await make_product(session, category_id=category.id, name=unique("Rare kettle "))
    await session.commit()
    with counting_statements(engine) as statements:
        response = await client.get("/admin/product/list?pageSize=10&search=Rare+kettle")
    assert response.status_code == 200 and "Showing 1 to 3 of 3 items" in response.text
    assert not any("count(*)" in statement for statement in statements)
    # session and permissions; rows with their categories joined; the category filter's choices
    assert len(statements) == 3


@pytest.mark.sqlite  # PostgreSQL shows its planner's estimate beyond a thousand (the next test)
async def test_a_search_is_counted_up_to_a_thousand(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["viewer"])
    category = await make_category(session)
    await session.execute(
        insert(Product),
        [
            {
                "sku": f"MANY-{n}",
                "name": f"Many kettle {n}",
                "price": Decimal("1.00"),
                "category_id": category.id,
            }
            for n in range(1_001)
        ],
    )
    await session.commit()
    searched = await client.get("/admin/product/list?pageSize=10&search=Many+kettle")
    assert searched.status_code == 200 and "of 1,000+ items" in searched.text
    live = await session.scalar(select(func.count()).select_from(Product).where(Product.deleted_at.is_(None)))
    listed = await client.get("/admin/product/list?pageSize=10")
    assert f"of {live:,} items" in listed.text  # the list itself counts up to 10,000


@pytest.mark.postgres
async def test_a_search_matching_many_rows_shows_the_planners_estimate_and_counts_nothing(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["viewer"])
    category = await make_category(session)
    rows = [
        {
            "sku": f"EST-{n}",
            "name": f"Estimated kettle {n}",
            "price": Decimal("1.00"),
            "category_id": category.id,
        }
        for n in range(3_000)
    ]
    await session.execute(insert(Product), rows)
    await session.execute(text("ANALYZE product"))  # statistics that know the new rows
    await session.commit()
    with counting_statements(engine) as statements:
        searched = await client.get("/admin/product/list?pageSize=10&search=Estimated+kettle")
    assert searched.status_code == 200
    assert re.search(r"of about [\d,]+ items", searched.text), "no estimate shown"
    assert not any("count(*)" in statement for statement in statements)


async def test_customer_pii_is_masked_without_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    customer = await make_customer(session, email="secret.person@example.com", phone="+44 1234")
    await session.commit()
    viewer, manager = await new_client(roles=["viewer"]), await new_client(roles=["manager"])
    for path in (
        "/admin/customer/list",
        f"/admin/customer/details/{customer.id}",
        "/admin/customer/export/csv",
    ):
        if path.endswith("csv"):
            masked = await manager.get(path)  # viewers may not export at all
        else:
            masked = await viewer.get(path)
            assert masked.status_code == 200
            assert "secret.person@example.com" not in masked.text and "•••" in masked.text
    listing = await manager.get("/admin/customer/list")
    assert "secret.person@example.com" in listing.text
    assert (await viewer.get("/admin/customer/export/csv")).status_code == 403


async def test_export_masks_pii_for_exporters_without_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    from tests.factories import make_role

    exporters = await make_role(session, permissions=["customer.view", "customer.export"])
    await make_customer(session, email="hidden@example.com")
    await session.commit()
    client = await new_client(roles=[exporters.name])
    body = (await client.get("/admin/customer/export/csv")).text
    assert "hidden@example.com" not in body and "•••" in body


async def test_export_is_streamed_filtered_and_formula_safe(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["auditor"])
    category = await make_category(session)
    await make_product(session, category_id=category.id, name='=HYPERLINK("http://evil")', sku="EVIL-1")
    await make_product(session, category_id=category.id, name="+cmd|calc", sku="EVIL-2")
    await make_product(
        session, category_id=category.id, name="Plain", sku="PLAIN-1", status=ProductStatus.DRAFT
    )
    await session.commit()
    async with client.stream(
        "GET", f"/admin/product/export/csv?category={category.id}&status=active"
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "content-length" not in response.headers  # streamed, not buffered
        body = "".join([chunk async for chunk in response.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {row["SKU"] for row in rows} == {"EVIL-1", "EVIL-2"}  # the filters apply
    names = {row["Name"] for row in rows}
    assert names == {'\'=HYPERLINK("http://evil")', "'+cmd|calc"}
    assert all(row["Category"] == category.slug for row in rows)  # by its natural key


async def test_bulk_status_action_is_post_only(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["editor"])
    first, second = await make_product(session), await make_product(session)
    await session.commit()
    path = f"/admin/product/action/mark-archived?pks={first.id},{second.id}"
    assert (await client.get(path)).status_code == 405
    assert (await client.post(path)).status_code == 403  # no CSRF token
    response = await client.post(path, headers={"X-CSRF-Token": await page_token(client)})
    assert response.status_code == 302
    await session.refresh(first)
    await session.refresh(second)
    assert first.status is second.status is ProductStatus.ARCHIVED
    viewer = await new_client(roles=["viewer"])
    refused = await viewer.post(path, headers={"X-CSRF-Token": await page_token(viewer)})
    assert refused.status_code == 403


async def test_bulk_delete_is_soft_and_all_or_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    first, second = await make_product(session), await make_product(session)
    await session.commit()
    token = await page_token(client)
    response = await client.delete(
        f"/admin/product/delete?pks={first.id},{second.id}", headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200
    await session.refresh(first)
    assert first.deleted_at is not None
    assert (await client.get(f"/admin/product/details/{first.id}")).status_code == 404
    listing = await client.get("/admin/product/list")
    assert first.sku not in listing.text


async def test_bulk_delete_loads_the_selected_rows_in_one_query(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    """The route checks every selected row from one `id IN (...)` read, not one read per row."""
    client = await new_client(roles=["manager"])
    products = [await make_product(session) for _ in range(4)]
    await session.commit()
    token = await page_token(client)
    pks = ",".join(str(product.id) for product in products)
    with counting_statements(engine) as statements:
        response = await client.delete(f"/admin/product/delete?pks={pks}", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and _FROM_PRODUCT.search(s)]
    assert len([s for s in reads if " IN (" in s.upper()]) == 1, reads
    # The one read for the route, then at most one per row for the service's own load.
    assert len(reads) <= len(products) + 1, reads


async def test_order_details_show_items(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["viewer"])
    order = await make_order(session, items=2)
    await session.commit()
    response = await client.get(f"/admin/order/details/{order.id}")
    assert response.status_code == 200
    assert 'id="order-items"' in response.text and response.text.count('class="order-item"') == 2


async def test_ajax_lookup_hides_deleted_rows(new_client: ClientFactory, session: AsyncSession) -> None:
    from datetime import UTC, datetime

    client = await new_client(roles=["editor"])
    await make_category(session, name="Lookup live", slug="lookup-live")
    await make_category(session, name="Lookup gone", slug="lookup-gone", deleted_at=datetime.now(UTC))
    await session.commit()
    response = await client.get("/admin/product/ajax/lookup?name=category&term=Lookup")
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["Lookup live"]
    viewer = await new_client(roles=["viewer"])
    assert (await viewer.get("/admin/product/ajax/lookup?name=category&term=Lookup")).status_code == 403


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("status=active", 200),
        ("status=sold", 400),
        ("category=abc", 400),
        ("created=7d", 200),
        ("created=forever", 400),
        ("pageSize=abc", 400),
        ("after=garbage", 400),
        ("sortBy=description", 400),
    ],
)
async def test_filters_refuse_bad_values(
    new_client: ClientFactory, session: AsyncSession, query: str, status: int
) -> None:
    client = await new_client(roles=["viewer"])
    response = await client.get(f"/admin/product/list?{query}")
    assert response.status_code == status


async def test_viewer_sees_no_write_buttons(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["viewer"])
    product = await make_product(session)
    await session.commit()
    listing = await client.get("/admin/product/list")
    assert "/admin/product/create" not in listing.text and "/export/csv" not in listing.text
    details = await client.get(f"/admin/product/details/{product.id}")
    assert f"/admin/product/edit/{product.id}" not in details.text
    assert (await client.get("/admin/product/create")).status_code == 403


def _client_name(client: httpx.AsyncClient) -> str:
    return str(getattr(client, "username", "anonymous"))
