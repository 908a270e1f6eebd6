"""An order saved together with its lines (`OrderService` with `items`): the line rules, all at once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, Order, OrderItem, OrderStatus, Product, ProductStatus
from backend.services.orders import OrderItemService, OrderService
from tests.backend.services.conftest import UowFactory
from tests.factories import make_customer, make_order, make_product


async def _lines(session: AsyncSession, order_id: int) -> list[tuple[int, int]]:
    """(product id, quantity) of the order's live lines, read from the database."""
    stmt = select(OrderItem.product_id, OrderItem.quantity).where(
        OrderItem.order_id == order_id, OrderItem.deleted_at.is_(None)
    )
    return sorted(
        (row.product_id, row.quantity) for row in await session.execute(stmt.order_by(OrderItem.id))
    )


async def _entries(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def _order_with(
    session: AsyncSession, *quantities: int, stock: int = 10
) -> tuple[Order, list[Product]]:
    """A pending order with one line per quantity, each of a product priced 2.00 with `stock` left."""
    order = await make_order(session, items=0)
    products = []
    for quantity in quantities:
        product = await make_product(session, price=Decimal("2.00"), stock=stock)
        session.add(
            OrderItem(order_id=order.id, product_id=product.id, quantity=quantity, unit_price=product.price)
        )
        order.total += product.price * quantity
        products.append(product)
    await session.flush()
    session.expire(order, ["items"])
    return order, products


async def _item_ids(session: AsyncSession, order: Order) -> list[int]:
    stmt = select(OrderItem.id).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
    return list((await session.execute(stmt)).scalars())


async def test_lines_are_added_changed_and_removed_in_one_save(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (kept, changed, removed) = await _order_with(session, 1, 2, 3)
    order_id = order.id
    new = await make_product(session, price=Decimal("5.00"), stock=4)
    ids = await _item_ids(session, order)
    version, before = order.version, await _entries(session)
    await OrderService(system_uow).update(
        order.id,
        {
            "items": [
                {"id": ids[0], "quantity": 1},  # as it was: no change
                {"id": ids[1], "quantity": 5},
                {"id": ids[2], "remove": True},
                {"product_id": new.id, "quantity": 3},
            ]
        },
        expected_version=version,
    )
    await session.commit()
    assert await _lines(session, order_id) == sorted([(kept.id, 1), (changed.id, 5), (new.id, 3)])
    assert (kept.stock, changed.stock, removed.stock, new.stock) == (10, 7, 13, 1)
    assert order.total == Decimal("2.00") + Decimal("10.00") + Decimal("15.00")
    assert order.version == version + 1  # the order's row moved on once, whatever its lines did
    # The changed, removed and added lines, their three products and the order's total: one entry each.
    assert await _entries(session) - before == 7


async def test_lines_sent_as_they_are_write_nothing(system_uow: UnitOfWork, session: AsyncSession) -> None:
    order, _ = await _order_with(session, 1, 2, stock=0)
    order.status = OrderStatus.SHIPPED  # closed, but nothing changes, so nothing is refused
    await session.flush()
    ids = await _item_ids(session, order)
    version, before = order.version, await _entries(session)
    lines = [{"id": ids[0], "quantity": 1}, {"id": ids[1], "quantity": 2, "remove": False}]
    await OrderService(system_uow).update(order.id, {"items": lines}, expected_version=version)
    await session.flush()
    assert order.version == version and await _entries(session) == before


async def test_every_line_problem_is_named_by_its_line_and_nothing_is_written(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (product,) = await _order_with(session, 1)
    order_id = order.id
    archived = await make_product(session, status=ProductStatus.ARCHIVED)
    ids = await _item_ids(session, order)
    version = order.version
    with pytest.raises(ValidationFailed) as caught:
        await OrderService(system_uow).update(
            order.id,
            {
                "items": [
                    {"id": ids[0], "quantity": 4},
                    {"product_id": archived.id, "quantity": 1},
                    {"product_id": 987_654, "quantity": 1},
                    {"product_id": product.id},
                ]
            },
        )
    errors = caught.value.errors
    assert errors["items.1.product_id"] == [f"{archived.sku} is archived and cannot be ordered."]
    assert errors["items.2.product_id"] == ["Product 987654 does not exist."]
    assert errors["items.3.quantity"] == ["A new line needs a product and a quantity."]
    assert "Line 2: " in " ".join(errors["items"])  # one field's worth, for callers that show it whole
    await session.refresh(order)
    await session.refresh(product)
    assert order.version == version and product.stock == 10
    assert await _lines(session, order_id) == [(product.id, 1)]


async def test_values_a_line_cannot_hold_are_named_by_line_and_field(system_uow: UnitOfWork) -> None:
    service = OrderService(system_uow)
    with pytest.raises(ValidationFailed) as caught:
        service.parse_update(
            {"status": "lost", "items": [{"id": 1, "quantity": 2}, {"quantity": 0}, {"id": 2**63}, "x"]}
        )
    assert set(caught.value.errors) == {
        "status",
        "items",
        "items.1.quantity",
        "items.2.id",
        "items.3.__all__",
    }
    with pytest.raises(ValidationFailed) as created:
        service.parse_create(
            {"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}, {"product_id": 2}]}
        )
    assert set(created.value.errors) == {"items", "items.1.quantity"}


async def test_stock_short_is_refused_on_each_line_that_takes_it(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (product,) = await _order_with(session, 1, stock=2)
    order_id = order.id
    ids = await _item_ids(session, order)
    with pytest.raises(ValidationFailed, match="Not enough stock") as caught:
        await OrderService(system_uow).update(
            order.id,
            {"items": [{"id": ids[0], "quantity": 2}, {"product_id": product.id, "quantity": 2}]},
        )
    assert caught.value.errors["items.0.quantity"] == [f"Only 2 of {product.sku} in stock."]
    assert caught.value.errors["items.1.quantity"] == [f"Only 2 of {product.sku} in stock."]
    await session.refresh(product)
    assert product.stock == 2 and await _lines(session, order_id) == [(product.id, 1)]


@pytest.mark.parametrize("status", [OrderStatus.SHIPPED, OrderStatus.CANCELLED])
async def test_a_closed_orders_lines_are_frozen(
    system_uow: UnitOfWork, session: AsyncSession, status: OrderStatus
) -> None:
    order, (product,) = await _order_with(session, 1)
    order.status = status
    await session.flush()
    with pytest.raises(Conflict, match=f"is {status.value}; its items can no longer change"):
        await OrderService(system_uow).update(
            order.id, {"items": [{"product_id": product.id, "quantity": 1}]}
        )


async def test_a_line_removed_since_is_a_conflict_and_another_orders_line_is_refused(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (product, _) = await _order_with(session, 1, 1)
    order_id = order.id
    ids = await _item_ids(session, order)
    await OrderItemService(system_uow).delete(ids[1])
    other, _ = await _order_with(session, 1)
    (foreign,) = await _item_ids(session, other)
    service = OrderService(system_uow)
    with pytest.raises(
        Conflict, match=f"Line {ids[1]} of order #{order.id} was removed since you opened it"
    ) as gone:
        await service.update(
            order.id, {"items": [{"id": ids[0], "quantity": 3}, {"id": ids[1], "remove": True}]}
        )
    assert gone.value.field is None  # about the order's state, not one field of the input
    with pytest.raises(ValidationFailed) as caught:
        await service.update(
            order.id, {"items": [{"id": foreign, "quantity": 3}, {"id": ids[0], "remove": True}]}
        )
    assert caught.value.errors["items.0.id"] == [f"Order #{order.id} has no line {foreign}."]
    await session.refresh(product)
    assert await _lines(session, order_id) == [(product.id, 1)] and product.stock == 10


async def test_a_stale_order_saves_none_of_its_lines(system_uow: UnitOfWork, session: AsyncSession) -> None:
    order, (product,) = await _order_with(session, 1)
    order_id = order.id
    ids = await _item_ids(session, order)
    stale = order.version
    await OrderService(system_uow).update(order.id, {"items": [{"id": ids[0], "quantity": 2}]})
    with pytest.raises(Conflict, match="was changed"):
        await OrderService(system_uow).update(
            order.id, {"items": [{"id": ids[0], "quantity": 5}]}, expected_version=stale
        )
    assert await _lines(session, order_id) == [(product.id, 2)] and product.stock == 9


@pytest.mark.parametrize(
    ("line", "needed"),
    [
        ({"product_id": "new", "quantity": 1}, "order_item.add"),
        ({"id": 0, "quantity": 3}, "order_item.change"),
        ({"id": 0, "remove": True}, "order_item.delete"),
    ],
)
async def test_each_line_change_needs_its_order_item_permission(
    uow_as: UowFactory, session: AsyncSession, line: dict[str, Any], needed: str
) -> None:
    order, (product,) = await _order_with(session, 1)
    (item_id,) = await _item_ids(session, order)
    line = {**line, **({"id": item_id} if "id" in line else {"product_id": product.id})}
    order_only = frozenset({"order.view", "order.change", "order_item.view"})
    async with uow_as(Actor(user_id=None, username="clerk", permissions=order_only)) as uow:
        with pytest.raises(PermissionDenied, match=needed):
            await OrderService(uow).update(order.id, {"items": [line]})
        await OrderService(uow).update(order.id, {"items": [{"id": item_id, "quantity": 1}]})  # unchanged
    async with uow_as(Actor(user_id=None, username="lead", permissions=order_only | {needed})) as uow:
        await OrderService(uow).update(order.id, {"items": [line]})


async def test_an_order_is_created_with_its_lines_checked_together(
    system_uow: UnitOfWork, uow_as: UowFactory, session: AsyncSession
) -> None:
    customer = await make_customer(session)
    short = await make_product(session, stock=1)
    archived = await make_product(session, status=ProductStatus.ARCHIVED)
    one = {"product_id": short.id, "quantity": 1}
    data: dict[str, Any] = {
        "customer_id": customer.id,
        "items": [one, {"product_id": archived.id, "quantity": 1}],
    }
    with pytest.raises(ValidationFailed) as caught:
        await OrderService(system_uow).create(data)
    assert set(caught.value.errors) == {"items", "items.1.product_id"}
    with pytest.raises(ValidationFailed) as short_of_stock:
        await OrderService(system_uow).create({**data, "items": [one, one]})
    assert set(short_of_stock.value.errors) == {"items", "items.0.quantity", "items.1.quantity"}
    adder = Actor(user_id=None, username="o", permissions=frozenset({"order.add"}))
    async with uow_as(adder) as uow:
        with pytest.raises(PermissionDenied, match=r"order_item\.add"):
            await OrderService(uow).create({**data, "items": [one]})
        await OrderService(uow).create({**data, "items": []})  # an order without lines needs no more
    order = await OrderService(system_uow).create({**data, "items": [one]})
    assert short.stock == 0 and order.total == short.price


async def test_cancelling_while_changing_lines_gives_back_the_stock_of_the_lines_as_saved(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (product,) = await _order_with(session, 2, stock=5)
    (item_id,) = await _item_ids(session, order)
    await OrderService(system_uow).update(
        order.id, {"status": "cancelled", "items": [{"id": item_id, "quantity": 4}]}
    )
    # 2 more taken for the new quantity, then all 4 given back: 5 - 2 + 4.
    assert product.stock == 7 and order.status is OrderStatus.CANCELLED


async def test_cancelling_gives_back_the_stock_of_a_product_deleted_since(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order, (product,) = await _order_with(session, 3, stock=1)
    product.deleted_at = datetime.now(UTC)
    await session.flush()
    await OrderService(system_uow).update(order.id, {"status": "cancelled"})
    assert product.stock == 4
