"""Service rules decided from the rows a service reads, tested on the in-memory unit of work.

Each rule here is also exercised end to end on real databases (tests/backend/services);
these tests pin the decision itself: which rows make a service refuse, and what it says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.auth.actor import Actor
from backend.errors import Conflict, ValidationFailed
from backend.models import Category, Order, OrderItem, OrderStatus, Product
from backend.services.catalog import CategoryService
from backend.services.orders import OrderService
from tests.unit.fakes import FakeUnitOfWork

MANAGER = Actor(
    user_id=7,
    username="manager",
    permissions=frozenset({"category.view", "category.delete", "order.view", "order.change"}),
)
DELETED = datetime(2026, 1, 2, tzinfo=UTC)


def product(id_: int, *, category_id: int = 1, stock: int = 5, deleted_at: datetime | None = None) -> Product:
    return Product(
        id=id_,
        sku=f"SKU-{id_}",
        name=f"Product {id_}",
        price=Decimal("9.99"),
        stock=stock,
        category_id=category_id,
        deleted_at=deleted_at,
    )


async def test_a_category_with_a_live_product_is_not_deleted() -> None:
    uow = FakeUnitOfWork(MANAGER)
    garden = Category(id=1, name="Garden", slug="garden")
    uow.add(garden, product(1), product(2, deleted_at=DELETED))
    with pytest.raises(Conflict) as caught:
        await CategoryService(uow.as_uow()).delete(garden.id)
    assert caught.value.message == "The category Garden still has 1 product; move or delete them first."
    assert garden.deleted_at is None


async def test_a_category_with_a_live_subcategory_is_not_deleted() -> None:
    uow = FakeUnitOfWork(MANAGER)
    garden = Category(id=1, name="Garden", slug="garden")
    uow.add(garden, Category(id=2, name="Tools", slug="tools", parent_id=1))
    with pytest.raises(Conflict, match="The category Garden still has subcategories"):
        await CategoryService(uow.as_uow()).delete(garden.id)
    assert garden.deleted_at is None


async def test_a_category_whose_products_and_children_are_deleted_is_deleted_by_the_actor() -> None:
    uow = FakeUnitOfWork(MANAGER)
    garden = Category(id=1, name="Garden", slug="garden")
    old_tools = Category(id=2, name="Tools", slug="tools", parent_id=1, deleted_at=DELETED)
    uow.add(garden, old_tools, product(1, deleted_at=DELETED), product(2, category_id=3))
    await CategoryService(uow.as_uow()).delete(garden.id)
    assert garden.deleted_at is not None and garden.deleted_by_id == MANAGER.user_id


def order_with_items(uow: FakeUnitOfWork, status: OrderStatus) -> tuple[Order, list[Product]]:
    kept, dropped = product(1, stock=5), product(2, stock=5)
    order = Order(id=10, customer_id=1, status=status, total=Decimal("0.00"))
    live = OrderItem(id=1, order_id=10, product_id=1, quantity=3, unit_price=Decimal("9.99"), product=kept)
    removed = OrderItem(
        id=2,
        order_id=10,
        product_id=2,
        quantity=4,
        unit_price=Decimal("9.99"),
        product=dropped,
        deleted_at=DELETED,
    )
    uow.add(order, kept, dropped, live, removed)
    return order, [kept, dropped]


async def test_a_cancelled_order_cannot_be_reopened() -> None:
    uow = FakeUnitOfWork(MANAGER)
    order, _ = order_with_items(uow, OrderStatus.CANCELLED)
    with pytest.raises(ValidationFailed) as caught:
        await OrderService(uow.as_uow()).update(order.id, {"status": "pending"})
    assert caught.value.errors == {"status": ["A cancelled order cannot be reopened."]}
    assert order.status is OrderStatus.CANCELLED


async def test_cancelling_an_order_gives_back_the_stock_of_its_live_items_only() -> None:
    uow = FakeUnitOfWork(MANAGER)
    order, (kept, dropped) = order_with_items(uow, OrderStatus.PAID)
    await OrderService(uow.as_uow()).update(order.id, {"status": "cancelled"})
    assert order.status is OrderStatus.CANCELLED
    assert (kept.stock, dropped.stock) == (8, 5)


async def test_moving_an_order_on_takes_no_stock_back() -> None:
    uow = FakeUnitOfWork(MANAGER)
    order, (kept, _) = order_with_items(uow, OrderStatus.PAID)
    await OrderService(uow.as_uow()).update(order.id, {"status": "shipped"})
    assert order.status is OrderStatus.SHIPPED and kept.stock == 5


async def test_the_fake_refuses_sql_it_cannot_evaluate() -> None:
    uow = FakeUnitOfWork(MANAGER)
    with pytest.raises(TypeError, match="needs a real database"):
        await uow.repo(Product).list(where=[Product.sku.like("A%")])
