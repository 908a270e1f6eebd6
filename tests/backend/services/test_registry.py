"""Which service serves a model: the declared one, else one generated with derived schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, AuthSession, Order, Product, ProductStatus, Tag
from backend.schemas.catalog import CategoryCreate
from backend.schemas.derived import REQUIRED_MESSAGE, create_schema_for, update_schema_for
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.registry import generated_service, service_for, soft_deletable_tables
from tests.backend.services.conftest import UowFactory
from tests.factories import make_category, make_customer


def test_the_declared_service_serves_its_model_by_class_and_by_table() -> None:
    assert service_for(Product) is ProductService and service_for("product") is ProductService
    assert service_for("tag") is TagService


@pytest.mark.parametrize("unknown", ["nope", "user_role", "audit_entry", AuthSession])
def test_no_service_for_a_table_without_a_model_or_an_admin_less_model(unknown: type | str) -> None:
    with pytest.raises(NotFound, match=r"^No such kind of record\.$"):
        service_for(unknown)


def test_trash_tables_come_from_the_models() -> None:
    assert soft_deletable_tables() == [
        "category",
        "customer",
        "order",
        "order_item",
        "product",
        "tag",
        "user",
    ]


def test_a_service_without_schemas_of_its_own_uses_the_derived_ones() -> None:
    assert TagService.create_schema is create_schema_for(Tag)
    assert TagService.update_schema is update_schema_for(Tag)
    assert CategoryService.create_schema is CategoryCreate  # explicit schemas (a slug rule) win
    generated = generated_service(Tag)
    assert generated is not TagService and generated is generated_service(Tag)
    assert generated.__name__ == "TagService" and generated.create_schema is create_schema_for(Tag)


async def test_a_generated_service_does_the_whole_life_cycle_with_audit_entries(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    tags = generated_service(Tag)(system_uow)
    tag = await tags.create({"name": " autumn "})
    await tags.update(tag.id, {"name": "fall"})
    with pytest.raises(Conflict, match=r"^A tag with this name already exists\.$"):
        await tags.create({"name": "fall"})  # the generic message: no rule of its own
    await tags.delete(tag.id)
    assert tag.deleted_at is not None
    await tags.restore(tag.id)
    await tags.delete(tag.id)
    await tags.purge(tag.id)
    assert await session.get(Tag, tag.id) is None
    stmt = select(AuditEntry).where(AuditEntry.model == "tag", AuditEntry.object_id == str(tag.id))
    entries = list((await session.execute(stmt.order_by(AuditEntry.id))).scalars())
    assert [entry.action for entry in entries] == ["create", "update", "delete", "restore", "delete", "purge"]
    assert entries[0].changes["name"] == [None, "autumn"] and entries[1].changes == {
        "name": ["autumn", "fall"]
    }
    assert entries[-1].changes["name"] == ["fall", None] and entries[0].actor_name == "system:tests"


async def test_a_generated_service_checks_permissions(uow_as: UowFactory) -> None:
    viewer = Actor(user_id=None, username="v", permissions=frozenset({"tag.view"}))
    async with uow_as(viewer) as uow:
        with pytest.raises(PermissionDenied):
            await generated_service(Tag)(uow).create({"name": "refused"})


async def test_a_generated_service_validates_with_the_derived_schemas(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    category = await make_category(session)
    products = generated_service(Product)(system_uow)
    with pytest.raises(ValidationFailed) as caught:
        await products.create(
            {"sku": "S" * 65, "name": "Boots", "price": "10.00", "category_id": category.id}
        )
    assert caught.value.errors == {"sku": ["String should have at most 64 characters"]}
    product = await products.create(
        {"sku": "BOOT-1", "name": " Boots ", "price": "10.00", "category_id": category.id}
    )
    assert (product.name, product.stock, product.status) == ("Boots", 0, ProductStatus.DRAFT)
    with pytest.raises(ValidationFailed) as caught:
        await products.update(product.id, {"price": "12.345", "status": None})
    assert caught.value.errors == {
        "price": ["Price must be a number with at most 10 digits before the point and 2 after it."],
        "status": [REQUIRED_MESSAGE],
    }
    updated = await products.update(product.id, {"status": "active"})
    assert updated.status is ProductStatus.ACTIVE and updated.price == Decimal("10.00")


async def test_the_database_default_applies_when_the_field_is_not_given(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    customer = await make_customer(session)
    before = datetime.now(UTC)
    order = await generated_service(Order)(system_uow).create({"customer_id": str(customer.id)})
    assert order.placed_at >= before and order.customer_id == customer.id
    assert order.total == Decimal("0.00")


async def test_a_generated_service_refuses_a_reference_to_a_missing_or_deleted_record(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    live = await make_category(session)
    trashed = await make_category(session, deleted_at=datetime.now(UTC))
    products = generated_service(Product)(system_uow)
    base = {"sku": "REF-1", "name": "Boots", "price": "10.00"}
    with pytest.raises(ValidationFailed) as missing:
        await products.create({**base, "category_id": 987654321})
    assert missing.value.errors == {"category_id": ["Category 987654321 does not exist."]}
    with pytest.raises(ValidationFailed) as deleted:
        await products.create({**base, "category_id": trashed.id})
    assert deleted.value.errors == {"category_id": [f"Category {trashed.id} does not exist."]}
    product = await products.create({**base, "category_id": live.id})
    with pytest.raises(ValidationFailed):
        await products.update(product.id, {"category_id": trashed.id})
    assert product.category_id == live.id
