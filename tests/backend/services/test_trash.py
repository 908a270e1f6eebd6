from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import Conflict, NotFound, PermissionDenied
from backend.models import OrderItem, Product
from backend.services.catalog import CategoryService, ProductService
from backend.services.history import AuditLog, Trash
from backend.services.orders import OrderItemService, OrderService
from tests.backend.services.conftest import UowFactory
from tests.databases import make_settings, migrated_database
from tests.factories import make_category, make_order, make_product, make_user

MANAGER = frozenset(
    {
        "product.view",
        "product.delete",
        "product.restore",
        "order.view",
        "order.delete",
        "order.restore",
        "trash.view",
    }
)


def columns(product: Product) -> dict[str, object]:
    return {
        key: getattr(product, key)
        for key in ("sku", "name", "description", "price", "stock", "status", "category_id", "created_at")
    }


async def test_soft_delete_hides_and_restore_brings_back_exactly(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    product = await make_product(session, description="kept", price=Decimal("4.20"))
    before = columns(product)
    service = ProductService(system_uow)
    await service.delete(product.id)
    assert product.deleted_at is not None
    with pytest.raises(NotFound):
        await service.get(product.id)
    assert product.id not in [p.id for p in await service.repo.list()]
    assert await service.repo.count(where=[Product.id == product.id]) == 0
    restored = await service.restore(product.id)
    assert restored.deleted_at is None and restored.deleted_by_id is None
    assert columns(restored) == before


async def test_restore_into_a_taken_unique_value_is_a_clear_conflict(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    old = await make_product(session, sku="SAME-SKU")
    service = ProductService(system_uow)
    await service.delete(old.id)
    await make_product(session, sku="SAME-SKU", category_id=old.category_id)  # a live one takes the SKU
    with pytest.raises(Conflict) as caught:
        await service.restore(old.id)
    assert (
        caught.value.message == "Cannot restore this product: A product with the SKU SAME-SKU already exists."
    )
    assert caught.value.field == "sku"


async def test_restore_and_purge_need_their_permissions(uow_as: UowFactory, session: AsyncSession) -> None:
    product = await make_product(session, deleted_at=datetime.now(UTC))
    async with uow_as(Actor(user_id=1, username="m", permissions=MANAGER)) as uow:
        with pytest.raises(PermissionDenied, match=r"product\.purge"):
            await ProductService(uow).purge(product.id)
    async with uow_as(Actor(user_id=1, username="v", permissions=frozenset({"product.view"}))) as uow:
        with pytest.raises(PermissionDenied, match=r"product\.restore"):
            await ProductService(uow).restore(product.id)


async def test_only_deleted_records_can_be_purged(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await make_product(session)
    with pytest.raises(NotFound, match="no deleted product"):
        await ProductService(system_uow).purge(product.id)


async def test_purge_refuses_records_still_referred_to(system_uow: UnitOfWork, session: AsyncSession) -> None:
    order = await make_order(session)
    item = (await session.execute(select(OrderItem).where(OrderItem.order_id == order.id))).scalar_one()
    service = ProductService(system_uow)
    await service.delete(item.product_id)
    with pytest.raises(Conflict, match="other records still refer to it"):
        await service.purge(item.product_id)
    assert await session.scalar(select(func.count()).where(Product.id == item.product_id)) == 1


async def test_order_items_are_deleted_and_restored_with_their_order(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order = await make_order(session, items=3)
    items = list((await session.execute(select(OrderItem).where(OrderItem.order_id == order.id))).scalars())
    earlier = items[0]
    earlier.deleted_at = datetime(2026, 1, 1, tzinfo=UTC)  # removed on its own, before
    await session.flush()
    service = OrderService(system_uow)
    await service.delete(order.id)
    await session.flush()
    assert all(item.deleted_at == order.deleted_at for item in items[1:])
    await service.restore(order.id)
    await session.flush()
    assert [item.deleted_at is None for item in items] == [False, True, True]


async def test_purging_an_order_purges_its_items(system_uow: UnitOfWork, session: AsyncSession) -> None:
    order = await make_order(session, items=2)
    service = OrderService(system_uow)
    await service.delete(order.id)
    await service.purge(order.id)
    assert await session.scalar(select(func.count()).where(OrderItem.order_id == order.id)) == 0


async def test_trash_lists_every_model_the_actor_may_see(uow_as: UowFactory, session: AsyncSession) -> None:
    who = await make_user(session, username="deleter")
    product = await make_product(session, deleted_at=datetime.now(UTC), deleted_by_id=who.id)
    user = await make_user(session, deleted_at=datetime.now(UTC))
    everything = Actor(user_id=1, username="root", is_superuser=True)
    async with uow_as(everything) as uow:
        items, more = await Trash(uow).list()
        found = {(i.model, i.object_id): i for i in items}
        assert ("product", product.id) in found and ("user", user.id) in found
        assert found[("product", product.id)].deleted_by == "deleter" and not more
        only, _ = await Trash(uow).list(model="product", deleted_by="deleter")
        assert [(i.model, i.object_id) for i in only] == [("product", product.id)]
    async with uow_as(Actor(user_id=1, username="m", permissions=MANAGER)) as uow:
        items, _ = await Trash(uow).list()
        assert {i.model for i in items} == {"product"}  # no users for a manager
        with pytest.raises(NotFound):
            await Trash(uow).list(model="user")
    async with uow_as(Actor(user_id=1, username="v", permissions=frozenset({"product.view"}))) as uow:
        with pytest.raises(PermissionDenied, match=r"trash\.view"):
            await Trash(uow).list()


async def test_trash_pages(uow_as: UowFactory, session: AsyncSession) -> None:
    category = await make_category(session)
    for _ in range(5):
        await make_product(session, category_id=category.id, deleted_at=datetime.now(UTC))
    async with uow_as(Actor(user_id=1, username="root", is_superuser=True)) as uow:
        first, more = await Trash(uow).list(model="product", page=1, page_size=3)
        second, _ = await Trash(uow).list(model="product", page=2, page_size=3)
    assert len(first) == 3 and more and len(second) >= 2
    assert not {i.object_id for i in first} & {i.object_id for i in second}


@pytest.mark.postgres
async def test_concurrent_updates_in_two_sessions_lose_nothing(fresh_url: str) -> None:
    settings = make_settings(fresh_url)
    async with migrated_database(settings) as uow:
        alice = await make_user(uow.session, username="alice")
        product = await make_product(uow.session)
    database = Database(settings)
    try:
        first = Actor(user_id=alice.id, username="alice", is_superuser=True)
        second = Actor(user_id=None, username="bob", is_superuser=True)
        async with unit_of_work(database, first) as a, unit_of_work(database, second) as b:
            await ProductService(a).get(product.id)  # both read version 1
            await ProductService(b).get(product.id)
            await ProductService(a).update(product.id, {"name": "Alice's"})
            # Bob's UPDATE waits on Alice's row lock, then finds the version moved on.
            bob = asyncio.create_task(ProductService(b).update(product.id, {"name": "Bob's"}))
            await asyncio.sleep(0.2)
            await a.commit()
            with pytest.raises(Conflict, match=r"was changed by alice at .* since you opened it"):
                await bob
        async with unit_of_work(database, second) as check:
            assert (await ProductService(check).get(product.id)).name == "Alice's"
    finally:
        await database.dispose()


async def test_a_record_whose_parent_is_in_the_trash_is_not_restored_before_it(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    order = await make_order(session, items=2)
    item = (await session.execute(select(OrderItem).where(OrderItem.order_id == order.id))).scalars().first()
    assert item is not None
    await OrderService(system_uow).delete(order.id)
    items = OrderItemService(system_uow)
    with pytest.raises(Conflict) as caught:
        await items.restore(item.id)
    assert caught.value.message == (
        f"Restore order {order.id} first: this order item refers to it, and it is in the trash."
    )
    assert item.deleted_at is not None  # nothing was restored
    await OrderService(system_uow).restore(order.id)
    assert item.deleted_at is None  # restored with its order

    product = await make_product(session)
    await ProductService(system_uow).delete(product.id)
    await CategoryService(system_uow).delete(product.category_id)  # empty now, so it may go
    with pytest.raises(Conflict, match=rf"^Restore category {product.category_id} first: this product"):
        await ProductService(system_uow).restore(product.id)
    await CategoryService(system_uow).restore(product.category_id)
    assert (await ProductService(system_uow).restore(product.id)).deleted_at is None


async def test_refusals_never_repeat_the_text_they_refused(system_uow: UnitOfWork) -> None:
    """Model names and ids often come from a URL: a link could plant a sentence in them."""
    planted = "Call 555-0100 to unlock"
    log, trash, products = AuditLog(system_uow), Trash(system_uow), ProductService(system_uow)
    refusals: list[Callable[[], Awaitable[object]]] = [
        lambda: trash.list(model=planted),
        lambda: trash.restore(planted, 1),
        lambda: log.history(planted, "1"),
        lambda: log.history("product", planted),
        lambda: products.get(planted),
        lambda: products.restore(planted),
    ]
    for refusal in refusals:
        with pytest.raises(NotFound) as caught:
            await refusal()
        assert "555-0100" not in caught.value.message, caught.value.message
    with pytest.raises(NotFound, match=r"^Product 999999999 does not exist\.$"):
        await products.get("000999999999")
