from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, PermissionDenied, ValidationFailed
from backend.models import ProductStatus
from backend.services.catalog import CategoryService, ProductService, TagService
from tests.backend.services.conftest import UowFactory
from tests.factories import make_category, make_product, make_tag


def product_input(category_id: int, **overrides: object) -> dict[str, object]:
    return {
        "sku": "SKU-NEW",
        "name": "New thing",
        "price": "12.50",
        "stock": 5,
        "category_id": category_id,
        **overrides,
    }


async def test_create_product(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category, tag = await make_category(session), await make_tag(session)
    product = await ProductService(system_uow).create(product_input(category.id, tag_ids=[tag.id]))
    assert product.price == Decimal("12.50") and product.status is ProductStatus.DRAFT
    assert [t.id for t in product.tags] == [tag.id]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-3"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "abc"}, "price"),
        ({"stock": -1}, "stock"),
        ({"sku": ""}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"name": "x" * 201}, "name"),
        ({"status": "sold"}, "status"),
        ({"tag_ids": [999_999]}, "tag_ids"),
    ],
)
async def test_invalid_product_input(
    system_uow: UnitOfWork, session: AsyncSession, overrides: dict[str, object], field: str
) -> None:
    category = await make_category(session)
    with pytest.raises(ValidationFailed) as caught:
        await ProductService(system_uow).create(product_input(category.id, **overrides))
    assert field in caught.value.errors


async def test_category_must_exist_and_be_live(system_uow: UnitOfWork, session: AsyncSession) -> None:
    deleted = await make_category(session, deleted_at=datetime.now(UTC))
    service = ProductService(system_uow)
    for category_id in (999_999, deleted.id):
        with pytest.raises(ValidationFailed) as caught:
            await service.create(product_input(category_id))
        assert caught.value.errors == {"category_id": [f"Category {category_id} does not exist."]}


async def test_duplicate_sku_names_the_field(system_uow: UnitOfWork, session: AsyncSession) -> None:
    existing = await make_product(session, sku="TAKEN-1")
    with pytest.raises(Conflict) as caught:
        await ProductService(system_uow).create(product_input(existing.category_id, sku="TAKEN-1"))
    assert caught.value.message == "A product with the SKU TAKEN-1 already exists."
    assert caught.value.field == "sku"


async def test_database_checks_become_field_messages(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await make_product(session)
    service = ProductService(system_uow)
    product.stock = -5  # around the schema: the CHECK constraint still holds
    with pytest.raises(Conflict) as caught:
        await service.save(product)
    assert (caught.value.field, caught.value.message) == ("stock", "Stock cannot go below zero.")


async def test_stock_cannot_go_negative(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await make_product(session, stock=2)
    with pytest.raises(ValidationFailed, match="Not enough stock"):
        await ProductService(system_uow).adjust_stock(product, -3)
    assert product.stock == 2


async def test_bulk_status_change(uow_as: UowFactory, session: AsyncSession) -> None:
    first, second = await make_product(session), await make_product(session)
    async with uow_as(Actor(user_id=1, username="e", permissions=frozenset({"product.change"}))) as uow:
        assert await ProductService(uow).set_status([first.id, second.id], ProductStatus.ARCHIVED) == 2
    assert first.status is second.status is ProductStatus.ARCHIVED
    assert first.version == 2
    async with uow_as(Actor(user_id=1, username="v", permissions=frozenset({"product.view"}))) as uow:
        with pytest.raises(PermissionDenied):
            await ProductService(uow).set_status([first.id], ProductStatus.ACTIVE)


async def test_category_with_products_cannot_be_deleted(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    product = await make_product(session)
    service = CategoryService(system_uow)
    with pytest.raises(Conflict, match="still has 1 product"):
        await service.delete(product.category_id)
    product.deleted_at = datetime.now(UTC)
    await session.flush()
    await service.delete(product.category_id)  # only deleted products left: fine


async def test_category_cannot_be_its_own_ancestor(system_uow: UnitOfWork, session: AsyncSession) -> None:
    top = await make_category(session)
    child = await make_category(session, parent_id=top.id)
    with pytest.raises(ValidationFailed, match="not valid") as caught:
        await CategoryService(system_uow).update(top.id, {"parent_id": child.id})
    assert caught.value.errors == {"parent_id": ["A category cannot be inside itself."]}


async def test_tag_names_are_unique_among_live_rows(system_uow: UnitOfWork, session: AsyncSession) -> None:
    service = TagService(system_uow)
    tag = await service.create({"name": "seasonal"})
    with pytest.raises(Conflict, match=r"A tag named seasonal already exists\."):
        await service.create({"name": "seasonal"})
    await service.delete(tag.id)
    await service.create({"name": "seasonal"})
