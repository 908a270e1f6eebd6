"""An order's lines edited in its own create and edit forms (admin/inlines.py), over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.models import AuditEntry, Order, OrderItem, OrderStatus, Product, ProductStatus
from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import ClientFactory, csrf_from
from tests.admin.test_store_views import counting_statements
from tests.factories import make_customer, make_order, make_product, make_role

BASE = "http://testserver"


async def _order(session: AsyncSession, *quantities: int, stock: int = 10, **values: Any) -> Order:
    """An order with one line per quantity, each of a new product priced 2.00 with `stock` left."""
    order = await make_order(session, items=0, **values)
    for quantity in quantities:
        product = await make_product(session, price=Decimal("2.00"), stock=stock)
        session.add(
            OrderItem(order_id=order.id, product_id=product.id, quantity=quantity, unit_price=product.price)
        )
        order.total += product.price * quantity
    await session.commit()
    return order


async def _lines(session: AsyncSession, order_id: int) -> list[tuple[int, int]]:
    stmt = select(OrderItem.product_id, OrderItem.quantity).where(
        OrderItem.order_id == order_id, OrderItem.deleted_at.is_(None)
    )
    return sorted((row.product_id, row.quantity) for row in await session.execute(stmt))


async def _items(session: AsyncSession, order_id: int) -> list[OrderItem]:
    stmt = select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.id)
    return list((await session.execute(stmt)).scalars())


async def _edit_form(client: httpx.AsyncClient, order_id: int) -> dict[str, list[str]]:
    """The edit form of the order as a browser would send it untouched."""
    path = f"/admin/order/edit/{order_id}"
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return as_post_data(submitted_form(page.text, BASE + path))


async def _entries(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def test_a_manager_adds_changes_and_removes_lines_in_one_save(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1, 2, 3)
    order_id, version = order.id, order.version
    added = await make_product(session, price=Decimal("5.00"), stock=4)
    await session.commit()
    kept, changed, removed = await _items(session, order_id)
    data = await _edit_form(client, order_id)
    assert data["items-0-id"] == [str(kept.id)] and data["items-3-product"] == [""]
    data |= {"items-1-quantity": ["6"], "items-2-remove": ["on"], "items-3-product": [str(added.id)]}
    data["items-3-quantity"] = ["3"]
    response = await client.post(f"/admin/order/edit/{order_id}", data=data)
    assert response.status_code == 302, response.text
    assert await _lines(session, order_id) == sorted(
        [(kept.product_id, 1), (changed.product_id, 6), (added.id, 3)]
    )
    await session.refresh(order)
    await session.refresh(added)
    assert order.total == Decimal("29.00") and order.version == version + 1 and added.stock == 1
    given_back = await session.scalar(select(Product.stock).where(Product.id == removed.product_id))
    assert given_back == 13  # the removed line's 3 went back
    entries = (await session.execute(select(AuditEntry.model, AuditEntry.action))).all()
    assert {("order_item", "create"), ("order_item", "update"), ("order_item", "delete")} <= set(entries)


async def test_an_untouched_edit_form_with_lines_changes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1, 2)
    order_id, version, before = order.id, order.version, await _entries(session)
    response = await client.post(f"/admin/order/edit/{order_id}", data=await _edit_form(client, order_id))
    assert response.status_code == 302, response.text
    await session.refresh(order)
    assert order.version == version and await _entries(session) == before


async def test_a_manager_creates_an_order_with_its_lines(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    customer = await make_customer(session)
    pen, ink = await make_product(session, stock=5), await make_product(session, stock=5)
    await session.commit()
    page = await client.get("/admin/order/create")
    assert 'name="items-0-product"' in page.text and "Add a line" in page.text
    data = {
        "customer": str(customer.id),
        "status": "pending",
        "placed_at": "2026-03-01 10:00:00",
        "items-0-product": str(pen.id),
        "items-0-quantity": "2",
        "items-1-product": "",
        "items-1-quantity": "",
        "items-4-product": str(ink.id),
        "items-4-quantity": "1",
        "csrf_token": csrf_from(page.text),
        "save": "Save",
    }
    response = await client.post("/admin/order/create", data=data)
    assert response.status_code == 302, response.text
    order_id = await session.scalar(select(Order.id).where(Order.customer_id == customer.id))
    assert order_id is not None
    assert await _lines(session, order_id) == sorted([(pen.id, 2), (ink.id, 1)])
    await session.refresh(pen)
    assert pen.stock == 3


async def test_line_problems_are_shown_by_their_rows_with_the_input_kept(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    customer = await make_customer(session)
    short = await make_product(session, stock=1, name="Short pen")
    archived = await make_product(session, status=ProductStatus.ARCHIVED, name="Old ink")
    await session.commit()
    page = await client.get("/admin/order/create")
    data = {
        "customer": str(customer.id),
        "status": "pending",
        "placed_at": "2026-03-01 10:00:00",
        "items-0-product": str(short.id),
        "items-0-quantity": "7",
        "items-2-product": str(archived.id),
        "items-2-quantity": "1",
        "csrf_token": csrf_from(page.text),
        "save": "Save",
    }
    response = await client.post("/admin/order/create", data=data)
    assert response.status_code == 400, response.text
    archived_row = response.text.split('data-row="2"')[1].split("</tr>")[0]
    assert f"{archived.sku} is archived and cannot be ordered." in archived_row
    assert f'<option value="{archived.id}" selected>{archived.sku}' in archived_row  # the choice is kept
    assert response.text.count("is archived and cannot be ordered.") == 1  # by its row only
    assert await session.scalar(select(func.count()).where(Order.customer_id == customer.id)) == 0

    without_archived = {**data, "items-2-product": "", "items-2-quantity": ""}
    fixed = await client.post("/admin/order/create", data=without_archived)
    assert fixed.status_code == 400
    short_row = fixed.text.split('data-row="0"')[1].split("</tr>")[0]
    assert f"Only 1 of {short.sku} in stock." in short_row and 'value="7"' in short_row
    assert f"Not enough stock for {short.sku}." in fixed.text  # the sentence above the form

    bad = await client.post("/admin/order/create", data={**data, "items-0-quantity": "١٢"})
    assert bad.status_code == 400
    assert "Quantity must be a whole number" in bad.text.split('data-row="0"')[1].split("</tr>")[0]
    done = await client.post("/admin/order/create", data={**without_archived, "items-0-quantity": "1"})
    assert done.status_code == 302, done.text


async def test_two_managers_save_the_same_orders_lines_and_one_gets_the_conflict(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    first, second = await new_client(roles=["manager"]), await new_client(roles=["manager"])
    order = await _order(session, 1, 1)
    order_id = order.id
    products = [item.product_id for item in await _items(session, order_id)]
    first_form, second_form = await _edit_form(first, order_id), await _edit_form(second, order_id)
    # Two changes that leave the total as it was: the order's version still tells them apart.
    first_form |= {"items-0-quantity": ["2"], "items-1-remove": ["on"]}
    saved = await first.post(f"/admin/order/edit/{order_id}", data=first_form)
    assert saved.status_code == 302, saved.text
    second_form |= {"items-0-quantity": ["5"]}
    refused = await second.post(f"/admin/order/edit/{order_id}", data=second_form)
    assert refused.status_code == 409, refused.text
    assert "was changed since you opened it" in refused.text
    assert 'value="5"' in refused.text  # what they typed is kept
    assert await _lines(session, order_id) == [(products[0], 2)]
    stock = await session.scalar(select(Product.stock).where(Product.id == products[1]))
    assert stock == 11  # the removed line's unit went back, and none was taken for the refused save


async def test_a_line_removed_since_the_form_was_opened_is_a_conflict(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1, 1)
    order_id = order.id
    data = await _edit_form(client, order_id)
    # Removed behind the order's back (the trash of another tool): the order's version is unchanged.
    first, second = await _items(session, order_id)
    second.deleted_at = func.now()
    await session.commit()
    data |= {"items-0-quantity": ["3"], "items-1-remove": ["on"]}
    response = await client.post(f"/admin/order/edit/{order_id}", data=data)
    assert response.status_code == 409, response.text
    assert f"Line {second.id} of order #{order_id} was removed since you opened it" in response.text
    assert "This line no longer exists" in response.text
    assert await _lines(session, order_id) == [(first.product_id, 1)]


async def test_without_order_item_permissions_the_lines_are_read_only_and_a_forged_save_is_refused(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    role = await make_role(
        session, permissions=["order.view", "order.change", "order.add", "customer.view", "order_item.view"]
    )
    await session.commit()
    client = await new_client(roles=[role.name])
    order = await _order(session, 1)
    order_id = order.id
    (item,) = await _items(session, order_id)
    page = await client.get(f"/admin/order/edit/{order_id}")
    assert page.status_code == 200
    assert 'id="order-items"' not in page.text and item.product_id and "items-0-quantity" not in page.text
    assert "Add a line" not in page.text and 'name="items-' not in page.text
    data = await _edit_form(client, order_id)
    before = await _entries(session)
    forged = {**data, "items-0-id": [str(item.id)], "items-0-quantity": ["4"]}
    response = await client.post(f"/admin/order/edit/{order_id}", data=forged)
    assert response.status_code == 403 and "order_item.change" in response.text
    added = {**data, "items-5-product": [str(item.product_id)], "items-5-quantity": ["1"]}
    assert (await client.post(f"/admin/order/edit/{order_id}", data=added)).status_code == 403
    assert await _lines(session, order_id) == [(item.product_id, 1)] and await _entries(session) == before
    create = await client.get("/admin/order/create")
    assert "items-0-product" not in create.text


async def test_a_closed_orders_lines_are_shown_read_only(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 2, status=OrderStatus.SHIPPED)
    page = await client.get(f"/admin/order/edit/{order.id}")
    assert page.status_code == 200 and "custodian-inline-value" in page.text
    assert 'name="items-' not in page.text and "Add a line" not in page.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("items-x-quantity", "1"),
        ("items-99999-quantity", "1"),
        ("items-0-id", "abc"),
        ("items-0-id", str(2**63)),
        ("items-0-quantity", "1e400"),
        ("items-0-quantity", "9" * 30),
        ("items-0-quantity", "-1"),
        ("items-9-product", "-1"),
        ("items-9-product", "²"),
        ("items-0-nonsense", "1"),
    ],
)
async def test_hostile_line_values_are_refused_with_a_4xx_and_nothing_is_written(
    new_client: ClientFactory, session: AsyncSession, field: str, value: str
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    order_id = order.id
    data = await _edit_form(client, order_id)
    before = await _entries(session)
    response = await client.post(f"/admin/order/edit/{order_id}", data={**data, field: [value]})
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text and await _entries(session) == before


async def test_rendering_an_order_runs_the_same_statements_whatever_its_number_of_lines(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["manager"])
    counts = {}
    for size in (3, 50):
        order = await _order(session, *([1] * size))
        with counting_statements(engine) as statements:
            page = await client.get(f"/admin/order/edit/{order.id}")
        assert page.status_code == 200 and page.text.count('class="custodian-inline-row"') == size
        counts[size] = len(statements)
    # session and permissions; the order joined with its customer; its lines; their products
    assert counts[3] == counts[50] == 4, counts


async def test_saving_an_order_runs_a_bounded_number_of_statements(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["manager"])
    new = await make_product(session, stock=100)
    await session.commit()
    counts = {}
    for size in (3, 50):
        order = await _order(session, *([1] * size))
        data = await _edit_form(client, order.id)
        data |= {"items-0-quantity": ["2"], "items-1-remove": ["on"]}
        data |= {f"items-{size}-product": [str(new.id)], f"items-{size}-quantity": ["1"]}
        with counting_statements(engine) as statements:
            response = await client.post(f"/admin/order/edit/{order.id}", data=data)
        assert response.status_code == 302, response.text
        counts[size] = len(statements)
    assert counts[3] == counts[50], counts  # the same three changes cost the same, however long the order

    order = await _order(session, *([1] * 50))
    data = await _edit_form(client, order.id)
    data |= {f"items-{row}-quantity": ["2"] for row in range(50)}
    with counting_statements(engine) as statements:
        response = await client.post(f"/admin/order/edit/{order.id}", data=data)
    assert response.status_code == 302, response.text
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # Reads do not grow with the lines; writes are at most a line's and its product's UPDATE each.
    assert len(reads) <= 10 and len(statements) <= len(reads) + 2 * 50 + 5, len(statements)
