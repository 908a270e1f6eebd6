"""An order's inline lines attacked by a hostile staff user and misused by a careless one.

Every refused save answers with a 4xx and a sentence, writes nothing (no line, no stock, no audit
entry), and every accepted one audits each line it changes.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.app import create_app
from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import Conflict
from backend.models import AuditEntry, Order, OrderItem, OrderStatus, Product, ProductStatus
from backend.services.orders import OrderService
from tests.admin.conftest import ClientFactory, client_for, csrf_from, sign_in
from tests.admin.test_inline_forms import _edit_form, _entries, _items, _lines, _order
from tests.databases import make_settings, migrated_database
from tests.factories import make_customer, make_order, make_product, make_role, make_user

Form = dict[str, list[str]]


async def _stock(session: AsyncSession, product_id: int) -> int:
    stock = await session.scalar(select(Product.stock).where(Product.id == product_id))
    assert stock is not None
    return stock


async def _refused(
    client: Any, session: AsyncSession, order_id: int, data: Form, *, status: int, says: str
) -> None:
    """The save of `data` is refused with `status` and `says` on the page, and writes nothing."""
    before = (await _lines(session, order_id), await _entries(session))
    response = await client.post(f"/admin/order/edit/{order_id}", data=data)
    assert response.status_code == status, response.text[:2000]
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))
    assert says in response.text and "Traceback" not in response.text, shown[:3000]
    assert (await _lines(session, order_id), await _entries(session)) == before


async def test_a_line_of_another_order_is_refused_by_its_row(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    mine, theirs = await _order(session, 1), await _order(session, 4)
    (their_line,) = await _items(session, theirs.id)
    data = await _edit_form(client, mine.id)
    for change in ({"items-5-quantity": ["9"]}, {"items-5-remove": ["on"]}):
        forged = {**data, "items-5-id": [str(their_line.id)], **change}
        await _refused(
            client,
            session,
            mine.id,
            forged,
            status=400,
            says=f"Order #{mine.id} has no line {their_line.id}.",
        )
    assert await _lines(session, theirs.id) == [(their_line.product_id, 4)]


async def test_a_line_deleted_long_ago_is_a_conflict(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1, 2)
    _kept, second = await _items(session, order.id)
    second.deleted_at = func.now()
    await session.commit()
    data = await _edit_form(client, order.id)  # the form no longer shows it
    forged = {**data, "items-7-id": [str(second.id)], "items-7-quantity": ["5"]}
    await _refused(client, session, order.id, forged, status=409, says="was removed since you opened it")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0", "greater than 0"),
        ("-3", "greater than 0"),
        ("1000001", "less than or equal to 1000000"),
        (str(2**31), "Quantity must be"),
        ("1.5", "Quantity must be a whole number"),
        ("ten", "Quantity must be a whole number"),
    ],
)
async def test_bad_quantities_on_an_existing_line_are_refused(
    new_client: ClientFactory, session: AsyncSession, value: str, says: str
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    data = await _edit_form(client, order.id)
    await _refused(client, session, order.id, {**data, "items-0-quantity": [value]}, status=400, says=says)


async def test_one_field_of_one_row_sent_twice_is_unreadable(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """Two values for one field of one row: which one the user meant is unknown, so neither is taken."""
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    (line,) = await _items(session, order.id)
    data = await _edit_form(client, order.id)
    forged = {**data, "items-0-quantity": ["2", "9"]}
    await _refused(client, session, order.id, forged, status=400, says="The lines sent cannot be read.")
    other = {**data, "items-0-id": [str(line.id), str(line.id + 1)]}
    await _refused(client, session, order.id, other, status=400, says="The lines sent cannot be read.")


async def test_removing_and_changing_one_line_in_two_rows_is_refused(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 2)
    (line,) = await _items(session, order.id)
    data = await _edit_form(client, order.id)
    forged = {
        **data,
        "items-0-remove": ["on"],
        "items-1-id": [str(line.id)],
        "items-1-quantity": ["5"],
    }
    await _refused(client, session, order.id, forged, status=400, says="This line is named twice.")
    assert await _stock(session, line.product_id) == 10


async def test_products_in_the_trash_or_archived_are_not_added(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    trashed = await make_product(session, stock=5)
    trashed.deleted_at = func.now()
    archived = await make_product(session, stock=5, status=ProductStatus.ARCHIVED)
    await session.commit()
    data = await _edit_form(client, order.id)
    for product, says in ((trashed, f"Product {trashed.id} does not exist."), (archived, "is archived")):
        forged = {**data, "items-1-product": [str(product.id)], "items-1-quantity": ["1"]}
        await _refused(client, session, order.id, forged, status=400, says=says)
        assert await _stock(session, product.id) == 5


async def test_a_forged_create_with_lines_without_order_item_add_writes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    role = await make_role(session, permissions=["order.view", "order.add", "customer.view"])
    customer = await make_customer(session)
    product = await make_product(session, stock=5)
    await session.commit()
    client = await new_client(roles=[role.name])
    page = await client.get("/admin/order/create")
    assert page.status_code == 200 and 'name="items-' not in page.text
    before = await _entries(session)
    data = {
        "customer": str(customer.id),
        "status": "pending",
        "placed_at": "2026-03-01 10:00:00",
        "items-0-product": str(product.id),
        "items-0-quantity": "2",
        "csrf_token": csrf_from(page.text),
        "save": "Save",
    }
    response = await client.post("/admin/order/create", data=data)
    assert response.status_code == 403 and "order_item.add" in response.text
    assert await session.scalar(select(func.count()).where(Order.customer_id == customer.id)) == 0
    assert await _stock(session, product.id) == 5 and await _entries(session) == before


@pytest.mark.parametrize("status", [OrderStatus.SHIPPED, OrderStatus.CANCELLED])
async def test_a_forged_change_to_a_closed_orders_lines_is_a_conflict(
    new_client: ClientFactory, session: AsyncSession, status: OrderStatus
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 2, status=status)
    (line,) = await _items(session, order.id)
    extra = await make_product(session, stock=5)
    await session.commit()
    data = await _edit_form(client, order.id)
    for change in (
        {"items-0-id": [str(line.id)], "items-0-quantity": ["1"]},
        {"items-0-id": [str(line.id)], "items-0-remove": ["on"]},
        {"items-3-product": [str(extra.id)], "items-3-quantity": ["1"]},
    ):
        await _refused(
            client, session, order.id, {**data, **change}, status=409, says="its items can no longer change"
        )
    assert await _stock(session, line.product_id) == 10 and await _stock(session, extra.id) == 5


async def test_an_order_created_cancelled_takes_no_stock_for_its_lines(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """A cancelled order holds no stock (cancelling gives it back), so one created cancelled takes none:
    otherwise its units would be lost for good, as a cancelled order cannot be reopened."""
    client = await new_client(roles=["manager"])
    customer = await make_customer(session)
    product = await make_product(session, stock=5)
    await session.commit()
    page = await client.get("/admin/order/create")
    data = {
        "customer": str(customer.id),
        "status": "cancelled",
        "placed_at": "2026-03-01 10:00:00",
        "items-0-product": str(product.id),
        "items-0-quantity": "2",
        "csrf_token": csrf_from(page.text),
        "save": "Save",
    }
    response = await client.post("/admin/order/create", data=data)
    assert response.status_code == 302, response.text[:2000]
    order_id = await session.scalar(select(Order.id).where(Order.customer_id == customer.id))
    assert order_id is not None and await _lines(session, order_id) == [(product.id, 2)]
    assert await _stock(session, product.id) == 5


async def test_without_the_csrf_token_or_the_version_nothing_is_written(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    data = await _edit_form(client, order.id)
    data["items-0-quantity"] = ["3"]
    no_csrf = {name: values for name, values in data.items() if name != "csrf_token"}
    before = (await _lines(session, order.id), await _entries(session))
    response = await client.post(f"/admin/order/edit/{order.id}", data=no_csrf)
    assert response.status_code in (400, 403), response.text[:2000]
    no_version = {name: values for name, values in data.items() if name != "_version"}
    await _refused(client, session, order.id, no_version, status=409, says="reload")
    stale = {**data, "_version": [str(order.version - 1)]}
    await _refused(client, session, order.id, stale, status=409, says="since you opened it")
    assert (await _lines(session, order.id), await _entries(session)) == before


async def test_too_many_rows_are_refused_with_a_sentence(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1)
    product = await make_product(session, stock=100_000)
    await session.commit()
    data = await _edit_form(client, order.id)
    rows = {f"items-{n}-quantity": ["1"] for n in range(1, 502)}
    await _refused(client, session, order.id, {**data, **rows}, status=400, says="at most 500 lines at once")
    # A body beyond the form limit is refused before it is read.
    huge = {**data, **{f"items-{n}-product": ["x" * 200] for n in range(9000)}}
    response = await client.post(f"/admin/order/edit/{order.id}", data=huge)
    assert 400 <= response.status_code < 500 and "Traceback" not in response.text
    assert await _stock(session, product.id) == 100_000


async def test_an_order_with_almost_the_most_lines_is_saved_in_its_own_form(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, *([1] * 499))
    data = await _edit_form(client, order.id)
    response = await client.post(f"/admin/order/edit/{order.id}", data={**data, "items-0-quantity": ["2"]})
    assert "Too many fields" not in response.text
    assert response.status_code == 302, response.text[:2000]


async def test_each_line_change_has_its_audit_entry_in_the_orders_save(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["manager"])
    order = await _order(session, 1, 2, 3)
    added = await make_product(session, price=Decimal("5.00"), stock=4)
    await session.commit()
    kept, changed, removed = await _items(session, order.id)
    data = await _edit_form(client, order.id)
    data |= {"items-0-quantity": ["4"], "items-1-quantity": ["5"], "items-2-remove": ["on"]}
    data |= {"items-3-product": [str(added.id)], "items-3-quantity": ["2"]}
    response = await client.post(f"/admin/order/edit/{order.id}", data=data)
    assert response.status_code == 302, response.text[:2000]
    stmt = select(AuditEntry).where(AuditEntry.model == "order_item").order_by(AuditEntry.id)
    entries = {(e.action, e.object_id): e.changes for e in (await session.execute(stmt)).scalars()}
    new_id = next(item.id for item in await _items(session, order.id) if item.product_id == added.id)
    assert entries[("update", str(kept.id))] == {"quantity": [1, 4]}
    assert entries[("update", str(changed.id))] == {"quantity": [2, 5]}
    assert set(entries[("delete", str(removed.id))]) == {"deleted_at", "deleted_by_id"}
    assert entries[("create", str(new_id))]["quantity"] == [None, 2]
    order_entry = await session.scalar(
        select(AuditEntry.changes).where(AuditEntry.model == "order", AuditEntry.object_id == str(order.id))
    )
    assert order_entry == {"total": ["12.00", "28.00"]}
    stocks = {
        "product": await _stock(session, added.id),
        "removed": await _stock(session, removed.product_id),
    }
    assert stocks == {"product": 2, "removed": 13}


async def test_two_orders_saved_at_once_cannot_both_take_the_last_unit(fresh_url: str) -> None:
    """Real parallel saves on connections of their own: one takes the unit, the other is refused."""
    settings = make_settings(fresh_url)
    async with migrated_database(settings) as uow:
        await make_user(uow.session, username="racer", roles=["manager"])
        last = await make_product(uow.session, stock=1)
        orders = [await make_order(uow.session, items=1) for _ in range(2)]
    product_id, order_ids = last.id, [order.id for order in orders]
    database = Database(settings)
    app = create_app(settings, database=database)
    clients = [client_for(app) for _ in order_ids]
    try:
        forms = []
        for client, order_id in zip(clients, order_ids, strict=True):
            assert (await sign_in(client, "racer")).status_code == 302
            form = await _edit_form(client, order_id)
            forms.append({**form, "items-1-product": [str(product_id)], "items-1-quantity": ["1"]})
        saves = (
            client.post(f"/admin/order/edit/{order_id}", data=form)
            for client, order_id, form in zip(clients, order_ids, forms, strict=True)
        )
        responses = list(await asyncio.gather(*saves))
        statuses = sorted(response.status_code for response in responses)
        assert statuses[0] == 302 and 400 <= statuses[1] < 500, statuses
        refused = next(response for response in responses if response.status_code != 302)
        assert "Traceback" not in refused.text and "internal error" not in refused.text
        async with database.sessions() as session:
            assert await session.scalar(select(Product.stock).where(Product.id == product_id)) == 0
            taken = select(func.count()).where(OrderItem.product_id == product_id)
            assert await session.scalar(taken) == 1
            created = select(func.count()).where(
                AuditEntry.model == "order_item", AuditEntry.actor_name == "racer"
            )
            assert await session.scalar(created) == 1
    finally:
        for client in clients:
            await client.aclose()
        await database.dispose()


@pytest.mark.postgres
async def test_a_save_that_read_the_last_unit_before_another_took_it_is_a_conflict(fresh_url: str) -> None:
    """Interleaved for certain: the second save reads the stock while the first holds it uncommitted, so
    only the product's version check stops it."""
    settings = make_settings(fresh_url)
    async with migrated_database(settings) as uow:
        last = await make_product(uow.session, stock=1)
        orders = [await make_order(uow.session, items=0) for _ in range(2)]
    product_id, order_ids = last.id, [order.id for order in orders]
    database, actor = Database(settings), Actor.system("tests")
    line = {"items": [{"product_id": product_id, "quantity": 1}]}
    try:
        async with unit_of_work(database, actor) as first, unit_of_work(database, actor) as second:
            await OrderService(first).update(order_ids[0], line)
            late = asyncio.create_task(OrderService(second).update(order_ids[1], line))
            await asyncio.sleep(0.5)  # blocked on the product's row, which the first save holds
            await first.commit()
            with pytest.raises(Conflict):
                await late
        async with database.sessions() as session:
            assert await session.scalar(select(Product.stock).where(Product.id == product_id)) == 0
            taken = select(OrderItem.order_id).where(OrderItem.product_id == product_id)
            assert list((await session.execute(taken)).scalars()) == [order_ids[0]]
    finally:
        await database.dispose()
