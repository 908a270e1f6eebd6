from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.uow import UnitOfWork
from backend.errors import Conflict, ValidationFailed
from backend.models import OrderStatus, ProductStatus
from backend.services.orders import OrderItemService, OrderService
from tests.factories import make_customer, make_product


async def test_total_is_the_sum_of_items_and_stock_is_taken(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    customer = await make_customer(session)
    pen = await make_product(session, price=Decimal("2.50"), stock=10)
    ink = await make_product(session, price=Decimal("4.00"), stock=3)
    order = await OrderService(system_uow).create(
        {
            "customer_id": customer.id,
            "items": [{"product_id": pen.id, "quantity": 4}, {"product_id": ink.id, "quantity": 3}],
        }
    )
    assert order.total == Decimal("22.00")
    assert [(i.unit_price, i.quantity) for i in order.items] == [(Decimal("2.50"), 4), (Decimal("4.00"), 3)]
    assert (pen.stock, ink.stock) == (6, 0)


async def test_unit_price_is_captured_at_order_time(system_uow: UnitOfWork, session: AsyncSession) -> None:
    customer, product = await make_customer(session), await make_product(session, price=Decimal("5.00"))
    order = await OrderService(system_uow).create(
        {"customer_id": customer.id, "items": [{"product_id": product.id, "quantity": 1}]}
    )
    product.price = Decimal("7.00")
    await session.flush()
    assert order.items[0].unit_price == Decimal("5.00") and order.total == Decimal("5.00")


async def test_not_enough_stock(system_uow: UnitOfWork, session: AsyncSession) -> None:
    customer, product = await make_customer(session), await make_product(session, stock=1)
    with pytest.raises(ValidationFailed, match="Not enough stock"):
        await OrderService(system_uow).create(
            {"customer_id": customer.id, "items": [{"product_id": product.id, "quantity": 2}]}
        )


async def test_archived_products_cannot_be_ordered(system_uow: UnitOfWork, session: AsyncSession) -> None:
    customer = await make_customer(session)
    product = await make_product(session, status=ProductStatus.ARCHIVED)
    with pytest.raises(ValidationFailed) as caught:
        await OrderService(system_uow).create(
            {"customer_id": customer.id, "items": [{"product_id": product.id, "quantity": 1}]}
        )
    assert "archived" in caught.value.errors["items"][0]


async def test_cancelling_gives_stock_back_and_is_final(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    customer, product = await make_customer(session), await make_product(session, stock=5)
    service = OrderService(system_uow)
    order = await service.create(
        {"customer_id": customer.id, "items": [{"product_id": product.id, "quantity": 2}]}
    )
    assert product.stock == 3
    await service.update(order.id, {"status": "cancelled"})
    assert product.stock == 5 and order.status is OrderStatus.CANCELLED
    with pytest.raises(ValidationFailed, match="not valid"):
        await service.update(order.id, {"status": "pending"})


async def test_items_keep_the_total_right(system_uow: UnitOfWork, session: AsyncSession) -> None:
    customer = await make_customer(session)
    first = await make_product(session, price=Decimal("3.00"), stock=10)
    second = await make_product(session, price=Decimal("1.50"), stock=10)
    order = await OrderService(system_uow).create(
        {"customer_id": customer.id, "items": [{"product_id": first.id, "quantity": 1}]}
    )
    items = OrderItemService(system_uow)
    added = await items.create({"order_id": order.id, "product_id": second.id, "quantity": 2})
    assert order.total == Decimal("6.00") and second.stock == 8
    await items.update(added.id, {"quantity": 4})
    assert order.total == Decimal("9.00") and second.stock == 6
    await items.delete(added.id)
    assert order.total == Decimal("3.00") and second.stock == 10


async def test_closed_orders_keep_their_items(system_uow: UnitOfWork, session: AsyncSession) -> None:
    customer, product = await make_customer(session), await make_product(session)
    service = OrderService(system_uow)
    order = await service.create(
        {"customer_id": customer.id, "items": [{"product_id": product.id, "quantity": 1}]}
    )
    await service.update(order.id, {"status": "shipped"})
    with pytest.raises(Conflict, match="shipped"):
        await OrderItemService(system_uow).create(
            {"order_id": order.id, "product_id": product.id, "quantity": 1}
        )


async def test_customer_must_exist(system_uow: UnitOfWork) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await OrderService(system_uow).create({"customer_id": 987_654})
    assert caught.value.errors == {"customer_id": ["Customer 987654 does not exist."]}
