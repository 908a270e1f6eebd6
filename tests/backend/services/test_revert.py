"""Reverting a record to an earlier version through its service: rules of today, its own audit entry."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied
from backend.models import AuditEntry, Product, Tag
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.history import AuditLog
from backend.services.masking import MASK
from backend.services.revert import Reverter
from tests.factories import make_category, make_tag


async def _entries(session: AsyncSession, table: str, pk: int) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.model == table, AuditEntry.object_id == str(pk))
    return list((await session.execute(stmt.order_by(AuditEntry.id))).scalars())


def _as(uow: UnitOfWork, *permissions: str) -> UnitOfWork:
    actor = Actor(user_id=None, username="reverter", permissions=frozenset(permissions))
    return UnitOfWork(uow.session, actor=actor, settings=uow.settings)


async def _product(uow: UnitOfWork, session: AsyncSession, **values: str) -> Product:
    category = await make_category(session)
    data = {"sku": "REV-1", "name": "Kettle", "price": "10.00", "category_id": category.id, **values}
    return await ProductService(uow).create(data)


async def test_revert_a_product_s_price_and_name(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    await ProductService(system_uow).update(product.id, {"name": "Steel kettle", "price": "12.50"})
    await ProductService(system_uow).update(product.id, {"stock": 3})
    created = (await _entries(session, "product", product.id))[0]

    reverter = Reverter(system_uow)
    plan = await reverter.plan("product", str(product.id), created.id)
    assert {c.field: (str(c.today), str(c.then)) for c in plan.changes} == {
        "name": ("Steel kettle", "Kettle"),
        "price": ("12.50", "10.00"),
        "stock": ("3", "0"),
    }
    await reverter.revert("product", str(product.id), created.id, expected_version=product.version)

    assert (product.name, str(product.price), product.stock) == ("Kettle", "10.00", 0)
    *_, update, event = await _entries(session, "product", product.id)
    assert update.action == "update" and update.changes["price"] == ["12.50", "10.00"]
    assert event.action == "revert"
    when = f"{created.created_at:%Y-%m-%d %H:%M:%S} UTC"
    assert event.object_repr == str(product)  # the record's label, as in every entry
    assert event.changes == {"reverted to the state of": when, "version entry": created.id}
    # The event is not a change of fields: today's state replays to the reverted values.
    history = await AuditLog(system_uow).history("product", str(product.id))
    assert history[-1].action == "revert"
    state = await AuditLog(system_uow).state_at("product", str(product.id), event.created_at)
    assert state is not None and state["name"] == "Kettle" and state["price"] == "10.00"


async def test_a_stale_page_is_refused(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    opened_at = product.version
    await ProductService(system_uow).update(product.id, {"name": "Renamed"})
    created = (await _entries(session, "product", product.id))[0]
    with pytest.raises(Conflict, match="since you opened it"):
        await Reverter(system_uow).revert("product", str(product.id), created.id, expected_version=opened_at)
    assert product.name == "Renamed"


async def test_a_unique_value_taken_since_is_refused(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    service = ProductService(system_uow)
    await service.update(product.id, {"sku": "REV-2"})
    await service.create(
        {"sku": "REV-1", "name": "Other", "price": "1.00", "category_id": product.category_id}
    )
    created = (await _entries(session, "product", product.id))[0]
    version, pk = product.version, product.id
    with pytest.raises(Conflict, match="A product with the SKU REV-1 already exists"):
        await Reverter(system_uow).revert("product", str(pk), created.id, expected_version=version)
    await session.refresh(product)
    assert product.sku == "REV-2"
    assert [e.action for e in await _entries(session, "product", product.id)] == ["create", "update"]


async def test_a_category_now_in_the_trash_is_refused(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    old_category = product.category_id
    other = await make_category(session, name="Teapots")
    await ProductService(system_uow).update(product.id, {"category_id": other.id})
    await CategoryService(system_uow).delete(old_category)
    created = (await _entries(session, "product", product.id))[0]

    plan = await Reverter(system_uow).plan("product", str(product.id), created.id)
    (change,) = [c for c in plan.changes if c.field == "category_id"]
    assert change.today_related is not None and change.today_related.label == "Teapots"
    assert change.then_related is not None and change.then_related.deleted
    assert plan.problems and "is in the trash now: restore it first" in plan.problems[0]
    with pytest.raises(Conflict, match="is in the trash now"):
        await Reverter(system_uow).revert(
            "product", str(product.id), created.id, expected_version=product.version
        )
    assert product.category_id == other.id


async def test_a_record_in_the_trash_is_not_reverted(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    await ProductService(system_uow).update(product.id, {"name": "Renamed"})
    await ProductService(system_uow).delete(product.id)
    created = (await _entries(session, "product", product.id))[0]
    with pytest.raises(Conflict, match="restore it from the trash first"):
        await Reverter(system_uow).plan("product", str(product.id), created.id)


async def test_permission_and_missing_versions(system_uow: UnitOfWork, session: AsyncSession) -> None:
    product = await _product(system_uow, session)
    await ProductService(system_uow).update(product.id, {"name": "Renamed"})
    created, updated = await _entries(session, "product", product.id)
    viewer = _as(system_uow, "product.view")
    with pytest.raises(PermissionDenied):
        await Reverter(viewer).plan("product", str(product.id), created.id)
    assert await Reverter(viewer).offered("product", str(product.id), [created, updated]) == (set(), "")
    changer = _as(system_uow, "product.view", "product.change")
    assert await Reverter(changer).offered("product", str(product.id), [created, updated]) == (
        {created.id},
        "",
    )
    with pytest.raises(NotFound):
        await Reverter(changer).plan("product", str(product.id), created.id + 10_000)
    with pytest.raises(NotFound):
        await Reverter(changer).plan("product", str(product.id + 10_000), created.id)
    with pytest.raises(NotFound):
        await Reverter(changer).plan("no_such_table", str(product.id), created.id)


async def test_personal_data_the_actor_may_not_see_is_masked_and_kept(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    customers = CustomerService(system_uow)
    customer = await customers.create({"name": "Pia", "email": "pia@example.com"})
    await customers.update(customer.id, {"name": "Pia B", "email": "pia.b@example.com"})
    created = (await _entries(session, "customer", customer.id))[0]

    clerk = _as(system_uow, "customer.view", "customer.change")
    plan = await Reverter(clerk).plan("customer", str(customer.id), created.id)
    email = next(c for c in plan.changes if c.field == "email")
    assert (email.today, email.then, email.reverted) == (MASK, MASK, False)
    assert "example.com" not in repr(plan)
    await Reverter(clerk).revert("customer", str(customer.id), created.id, expected_version=customer.version)
    assert (customer.name, customer.email) == ("Pia", "pia.b@example.com")


async def test_a_products_tags_are_put_back_and_a_tag_in_the_trash_is_refused(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    steel, gift, sale = [await make_tag(session, name=name) for name in ("steel", "gift", "sale")]
    product = await _product(system_uow, session, tag_ids=[steel.id, gift.id])  # type: ignore[arg-type]
    created = (await _entries(session, "product", product.id))[0]
    await ProductService(system_uow).update(product.id, {"tag_ids": [sale.id]})

    reverter = Reverter(system_uow)
    plan = await reverter.plan("product", str(product.id), created.id)
    tags = next(change for change in plan.changes if change.field == "tags")
    assert (tags.today, tags.then, tags.reverted) == ("sale", "gift, steel", True)
    assert plan.values["tag_ids"] == sorted([steel.id, gift.id])

    await TagService(system_uow).delete(gift.id)
    refused = await reverter.plan("product", str(product.id), created.id)
    assert refused.problems == ["The tag gift is in the trash now: restore it first."]
    with pytest.raises(Conflict, match="The tag gift is in the trash now"):
        await reverter.revert("product", str(product.id), created.id, expected_version=product.version)

    await session.execute(update(Tag).where(Tag.id == gift.id).values(deleted_at=None))
    await reverter.revert("product", str(product.id), created.id, expected_version=product.version)
    await session.refresh(product, attribute_names=["tags"])
    assert sorted(tag.name for tag in product.tags) == ["gift", "steel"]
