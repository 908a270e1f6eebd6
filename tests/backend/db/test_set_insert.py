"""The repositories' set-based writes and key lookups, which imports use a batch at a time.

`insert_built` must leave the database exactly as a flush of the same objects
would, audit entries included; `by_keys` must find rows by a unique key
through its btree index on PostgreSQL, whatever trigram index also answers `=`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.statistics import btree_lookups
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Order, OrderItem, Product, ProductStatus
from backend.models.catalog import product_tag
from tests.factories import make_category, make_customer, make_tag, unique

SYSTEM = Actor.system("tests")


def _product(category_id: int, **overrides: Any) -> Product:
    values: dict[str, Any] = {
        "sku": unique("SET"),
        "name": "Set-based lamp",
        "description": "",
        "price": Decimal("12.50"),
        "stock": 3,
        "status": ProductStatus.ACTIVE,
        "category_id": category_id,
    }
    return Product(**(values | overrides))


def _comparable(entry: AuditEntry) -> dict[str, Any]:
    changes = {key: value for key, value in entry.changes.items() if key not in ("id", "sku", "created_at")}
    return {"action": entry.action, "model": entry.model, "actor": entry.actor_name, "changes": changes}


async def test_insert_built_writes_rows_links_and_the_entries_a_flush_would(
    database: Database, session: AsyncSession
) -> None:
    category = await make_category(session)
    tags = [await make_tag(session), await make_tag(session)]
    async with unit_of_work(database, SYSTEM) as uow:
        held = await uow.repo(type(tags[0])).get_many([tag.id for tag in tags])
        flushed = _product(category.id, tags=held)
        uow.session.add(flushed)
        await uow.session.flush()
        built = [_product(category.id, tags=held), _product(category.id, tags=held[:1], stock=0)]
        async with uow.repo(Product).savepoint():
            left = await uow.repo(Product).insert_built(built)
        assert left == []
        assert all(isinstance(product.id, int) for product in built)
        assert built[0].version == 1 and built[0].created_at is not None  # the row's defaults, read back
        rows = (
            await uow.session.execute(
                select(Product.id, Product.stock).where(Product.id.in_([p.id for p in built]))
            )
        ).all()
        assert sorted(rows) == sorted([(built[0].id, 3), (built[1].id, 0)])
        links = (
            await uow.session.execute(
                select(product_tag.c.product_id, product_tag.c.tag_id).where(
                    product_tag.c.product_id.in_([p.id for p in built])
                )
            )
        ).all()
        assert sorted(links) == sorted(
            [(built[0].id, tags[0].id), (built[0].id, tags[1].id), (built[1].id, tags[0].id)]
        )
        entries = {
            entry.object_id: entry
            for entry in (await uow.session.execute(select(AuditEntry).where(AuditEntry.model == "product")))
            .scalars()
            .all()
        }
        by_flush, by_insert = entries[str(flushed.id)], entries[str(built[0].id)]
        assert _comparable(by_insert) == _comparable(by_flush)
        assert by_insert.changes["sku"] == [None, built[0].sku]
        assert str(built[1].id) in entries


async def test_insert_built_leaves_what_it_cannot_write_alone(
    database: Database, session: AsyncSession
) -> None:
    category = await make_category(session)
    customer = await make_customer(session)
    async with unit_of_work(database, SYSTEM) as uow:
        in_session = _product(category.id)
        uow.session.add(in_session)
        pending_category = type(category)(name="Pending", slug=unique("pending"))
        names_unsaved = _product(category.id, category=pending_category)
        left = await uow.repo(Product).insert_built([in_session, names_unsaved])
        assert left == [in_session, names_unsaved]
        with_items = Order(customer_id=customer.id, items=[OrderItem(product=in_session, quantity=1)])
        without = Order(customer_id=customer.id)
        assert await uow.repo(Order).insert_built([with_items, without]) == [
            with_items
        ]  # children: the flush's
        assert without.id is not None


async def test_insert_built_raises_a_constraint_failure_like_a_flush(
    database: Database, session: AsyncSession
) -> None:
    category = await make_category(session)
    async with unit_of_work(database, SYSTEM) as uow:
        sku = unique("TWICE")
        with pytest.raises(IntegrityError):
            async with uow.session.begin_nested():
                await uow.repo(Product).insert_built(
                    [_product(category.id, sku=sku), _product(category.id, sku=sku)]
                )


async def test_insert_built_is_refused_in_a_read_only_unit(database: Database, session: AsyncSession) -> None:
    category = await make_category(session)
    async with unit_of_work(database, SYSTEM, writes=False) as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.repo(Product).insert_built([_product(category.id)])


async def test_insert_built_writes_no_entries_when_audit_is_off(
    database: Database, session: AsyncSession
) -> None:
    category = await make_category(session)
    async with unit_of_work(database, SYSTEM, audit=False) as uow:
        product = _product(category.id)
        await uow.repo(Product).insert_built([product])
        found = await uow.session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.model == "product", AuditEntry.object_id == str(product.id)
            )
        )
        assert found is None


async def test_by_keys_finds_rows_by_their_unique_key(database: Database, session: AsyncSession) -> None:
    category = await make_category(session)
    async with unit_of_work(database, SYSTEM) as uow:
        products = [_product(category.id), _product(category.id)]
        await uow.repo(Product).insert_built(products)
        found = await uow.repo(Product).by_keys("sku", [products[1].sku, "NO-SUCH-SKU"])
        assert [product.id for product in found] == [products[1].id]
        assert await uow.repo(Product).by_keys("sku", []) == []


@pytest.mark.postgres  # a planner setting of PostgreSQL's
async def test_key_lookups_read_the_btree_index_and_restore_the_setting(
    database: Database, session: AsyncSession
) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        before = await uow.session.scalar(text("SHOW enable_bitmapscan"))
        skus = ", ".join(f"'SKU-{n:06d}'" for n in range(300))
        async with btree_lookups(uow.session):
            assert await uow.session.scalar(text("SHOW enable_bitmapscan")) == "off"
            plan = "\n".join(
                (
                    await uow.session.execute(text(f"EXPLAIN SELECT id FROM product WHERE sku IN ({skus})"))
                ).scalars()
            )
        assert "trgm" not in plan
        assert await uow.session.scalar(text("SHOW enable_bitmapscan")) == before


async def test_none_for_a_column_with_a_default_takes_the_default_as_a_flush_does(
    database: Database, session: AsyncSession
) -> None:
    category = await make_category(session)
    async with unit_of_work(database, SYSTEM) as uow:
        flushed, built = _product(category.id, description=None), _product(category.id, description=None)
        uow.session.add(flushed)
        await uow.session.flush()
        await uow.repo(Product).insert_built([built])
        assert flushed.description == built.description == ""


@pytest.mark.postgres
async def test_an_error_inside_a_planner_setting_is_the_error_raised(database: Database) -> None:
    async with unit_of_work(database, SYSTEM) as uow:
        with pytest.raises(DBAPIError, match="division by zero"):
            async with btree_lookups(uow.session):
                await uow.session.execute(text("SELECT 1/0"))
