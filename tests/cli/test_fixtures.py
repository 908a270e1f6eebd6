"""`manage.py dumpdata` / `loaddata`: one database's rows into another through the services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Category, Customer, Order, OrderItem, Product, Tag
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.exchange.fields import exchange_fields
from backend.services.exchange.selection import model_named
from backend.services.orders import OrderService
from tests.cli.conftest import Runner
from tests.databases import make_settings, throwaway_database

PLACED = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def source(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


@pytest.fixture
async def target_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    folder = tmp_path / "target"
    folder.mkdir()
    async with throwaway_database(db_backend, folder) as url:
        yield url


@pytest.fixture
def target(cli: Runner, target_url: str) -> str:
    """A second database, empty and migrated: where a fixture is loaded."""
    assert cli("migrate", url=target_url).code == 0
    return target_url


async def _shop(url: str) -> None:
    """A small shop built through the services, so stock and totals are what the application makes.

    A category tree three deep; an order shipped, one cancelled (its stock given back), and two orders
    alike in every value (nothing but their ids tells them apart); a product archived after it was ordered.
    The rake's only order took its last one: loading restores that state, it does not take stock again.
    """
    database = Database(make_settings(url))
    try:
        async with unit_of_work(database, Actor.system("setup")) as uow:
            categories, products = CategoryService(uow), ProductService(uow)
            garden = await categories.create({"name": "Garden", "slug": "garden"})
            tools = await categories.create({"name": "Tools", "slug": "tools", "parent_id": garden.id})
            spades = await categories.create({"name": "Spades", "slug": "spades", "parent_id": tools.id})
            red = await TagService(uow).create({"name": "red"})
            blue = await TagService(uow).create({"name": "blue"})
            spade = await products.create(
                {
                    "sku": "SPADE-1",
                    "name": "Spade",
                    "description": "=1+1, a formula",
                    "price": "19.90",
                    "stock": 10,
                    "status": "active",
                    "category_id": spades.id,
                    "tag_ids": [red.id, blue.id],
                }
            )
            rake = await products.create(
                {
                    "sku": "RAKE-1",
                    "name": "Rake",
                    "price": "7.25",
                    "stock": 1,
                    "status": "active",
                    "category_id": tools.id,
                }
            )
            lamp = await products.create(
                {
                    "sku": "LAMP-1",
                    "name": "Lamp",
                    "price": "30",
                    "stock": 5,
                    "status": "active",
                    "category_id": garden.id,
                }
            )
            customers = CustomerService(uow)
            ada = await customers.create({"name": "Ada", "email": "ada@example.com", "phone": "+44 1"})
            ben = await customers.create({"name": "Ben", "email": "ben@example.com", "address": "2 Lane"})
            orders = OrderService(uow)
            lines = [{"product_id": spade.id, "quantity": 2}, {"product_id": rake.id, "quantity": 1}]
            shipped = await orders.create({"customer_id": ada.id, "placed_at": PLACED, "items": lines})
            await orders.update(shipped.id, {"status": "shipped"})
            cancelled = await orders.create(
                {
                    "customer_id": ben.id,
                    "placed_at": PLACED,
                    "items": [{"product_id": spade.id, "quantity": 1}],
                }
            )
            await orders.update(cancelled.id, {"status": "cancelled"})
            for _ in range(2):
                await orders.create(
                    {
                        "customer_id": ben.id,
                        "placed_at": PLACED,
                        "items": [{"product_id": lamp.id, "quantity": 1}],
                    }
                )
            await products.update(lamp.id, {"status": "archived"})
            await uow.commit()
    finally:
        await database.dispose()


async def _state(url: str) -> dict[str, Any]:
    """Every live record by what people know it by (no ids): equal states hold the same shop."""
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:

            async def live(model: Any, *options: Any) -> list[Any]:
                stmt = select(model).where(model.deleted_at.is_(None)).options(*options)
                return list((await session.execute(stmt)).scalars())

            slugs = {category.id: category.slug for category in await live(Category)}
            emails = {customer.id: customer.email for customer in await live(Customer)}
            skus = {product.id: product.sku for product in await live(Product)}
            items: dict[int, list[tuple[str, int, Decimal]]] = {}
            for item in await live(OrderItem):
                items.setdefault(item.order_id, []).append(
                    (skus[item.product_id], item.quantity, item.unit_price)
                )
            return {
                "category": sorted(
                    (c.slug, c.name, slugs.get(c.parent_id) if c.parent_id else None)
                    for c in await live(Category)
                ),
                "tag": sorted(tag.name for tag in await live(Tag)),
                "product": sorted(
                    (
                        p.sku,
                        p.name,
                        p.description,
                        p.price,
                        p.stock,
                        p.status.value,
                        slugs[p.category_id],
                        tags,
                    )
                    for p in await live(Product, selectinload(Product.tags))
                    for tags in [sorted(tag.name for tag in p.tags)]
                ),
                "customer": sorted((c.email, c.name, c.phone, c.address) for c in await live(Customer)),
                "order": sorted(
                    (emails[o.customer_id], o.status.value, o.placed_at, o.total, sorted(items.get(o.id, [])))
                    for o in await live(Order)
                ),
            }
    finally:
        await database.dispose()


async def _counts(url: str) -> dict[str, int]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            counts = {}
            for model in (Category, Tag, Product, Customer, Order, OrderItem):
                counts[model.__tablename__] = int(
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
            return counts
    finally:
        await database.dispose()


async def _row_changes(url: str) -> int:
    """Audit entries of written rows (not the "import" entries that say a file was loaded)."""
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.action != "import")
            return int(await session.scalar(stmt) or 0)
    finally:
        await database.dispose()


def _dump(cli: Runner, url: str, path: Path, *models: str) -> dict[str, Any]:
    result = cli("dumpdata", *models, "-o", str(path), url=url)
    assert result.code == 0, result.err
    fixture: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return fixture


def _rows(fixture: dict[str, Any], model: str) -> list[list[Any]]:
    rows: list[list[Any]] = next(entry["rows"] for entry in fixture["models"] if entry["model"] == model)
    return rows


def test_a_fixture_loads_into_an_empty_database_and_a_second_load_changes_nothing(
    cli: Runner, source: str, target: str, tmp_path: Path
) -> None:
    asyncio.run(_shop(source))
    fixture = _dump(cli, source, tmp_path / "shop.json")
    assert fixture["custodian_fixture"] == 1
    assert [entry["model"] for entry in fixture["models"]] == [
        "category", "customer", "order", "tag", "product", "order_item"
    ]  # fmt: skip
    assert _rows(fixture, "category")[2][1:] == ["Spades", "spades", "tools"]  # parents by slug
    # Children before their parents, whatever the order in the file.
    next(entry for entry in fixture["models"] if entry["model"] == "category")["rows"].reverse()
    (tmp_path / "shop.json").write_text(json.dumps(fixture), encoding="utf-8")

    first = cli("loaddata", str(tmp_path / "shop.json"), url=target)
    assert first.code == 0, first.out + first.err
    assert first.out.splitlines()[:6] == [
        "  category: 3 new, 0 changed, 0 unchanged",
        "  customer: 2 new, 0 changed, 0 unchanged",
        "  order: 4 new, 0 changed, 0 unchanged",
        "  tag: 2 new, 0 changed, 0 unchanged",
        "  product: 3 new, 0 changed, 0 unchanged",
        "  order_item: 5 new, 0 changed, 0 unchanged",
    ]
    assert first.out.splitlines()[6].startswith("Loaded shop.json in ")
    assert asyncio.run(_state(target)) == asyncio.run(_state(source))
    changes = asyncio.run(_row_changes(target))

    second = cli("loaddata", str(tmp_path / "shop.json"), url=target)
    assert second.code == 0, second.out + second.err
    assert [line for line in second.out.splitlines() if line.startswith("  ")] == [
        "  category: 0 new, 0 changed, 3 unchanged",
        "  customer: 0 new, 0 changed, 2 unchanged",
        "  order: 0 new, 0 changed, 4 unchanged",
        "  tag: 0 new, 0 changed, 2 unchanged",
        "  product: 0 new, 0 changed, 3 unchanged",
        "  order_item: 0 new, 0 changed, 5 unchanged",
    ]
    assert asyncio.run(_row_changes(target)) == changes
    assert asyncio.run(_state(target)) == asyncio.run(_state(source))


def test_any_row_error_loads_nothing_and_lists_the_rows(
    cli: Runner, source: str, target: str, tmp_path: Path
) -> None:
    asyncio.run(_shop(source))
    fixture = _dump(cli, source, tmp_path / "shop.json")
    _rows(fixture, "product")[0][4] = "0"  # a price
    _rows(fixture, "order_item")[0][1] = "999999"  # an order the fixture does not hold
    (tmp_path / "bad.json").write_text(json.dumps(fixture), encoding="utf-8")

    refused = cli("loaddata", str(tmp_path / "bad.json"), url=target)
    assert refused.code == 1 and refused.no_traceback
    assert "  product: 2 new, 0 changed, 0 unchanged, 1 with errors" in refused.out
    assert "  order_item: not tried (an earlier model has errors)" in refused.out
    assert "  product row 1: Price: " in refused.out
    assert refused.err == "Error: Nothing was loaded: 1 row with errors.\n"
    assert set(asyncio.run(_counts(target)).values()) == {0}

    _rows(fixture, "product")[0][4] = "19.90"
    (tmp_path / "bad.json").write_text(json.dumps(fixture), encoding="utf-8")
    dangling = cli("loaddata", str(tmp_path / "bad.json"), url=target)
    assert dangling.code == 1
    assert "  order_item row 1: Order: No order with the ID 999999 in the fixture." in dangling.out
    assert set(asyncio.run(_counts(target)).values()) == {0}


def test_categories_in_a_circle_are_row_errors(cli: Runner, target: str, tmp_path: Path) -> None:
    fixture = {
        "custodian_fixture": 1,
        "models": [
            {
                "model": "category",
                "headers": ["Name", "Slug", "Parent"],
                "rows": [["Top", "top", None], ["A", "a", "b"], ["B", "b", "a"]],
            }
        ],
    }
    (tmp_path / "circle.json").write_text(json.dumps(fixture), encoding="utf-8")
    refused = cli("loaddata", str(tmp_path / "circle.json"), url=target)
    assert refused.code == 1
    assert (
        "  category row 2: Parent: Its parent is itself or one of its descendants in the fixture."
        in refused.out
    )
    assert "  category row 3: Parent:" in refused.out
    assert asyncio.run(_counts(target))["category"] == 0


def test_refusals_are_one_line(cli: Runner, source: str, tmp_path: Path) -> None:
    alone = cli("dumpdata", "order", url=source)
    assert alone.code == 1 and alone.out == ""
    assert alone.err == (
        "Error: order names its customer by id, and ids differ between databases: include customer too.\n"
    )
    unknown = cli("dumpdata", "gadget", url=source)
    assert unknown.code == 1 and unknown.err.startswith(
        "Error: Unknown model: gadget. Choose one of: category,"
    )
    for name, content, message in (
        ("list.json", "[]", 'Error: Not a Custodian fixture: it has no "custodian_fixture" version'),
        ("broken.json", "{", "Error: The fixture is not valid JSON: "),
        ("future.json", '{"custodian_fixture": 2, "models": []}', "Error: The fixture is version 2; "),
        (
            "gadget.json",
            '{"custodian_fixture": 1, "models": [{"model": "gadget", "headers": [], "rows": []}]}',
            "Error: Entry 1 of the fixture's models: Unknown model: gadget.",
        ),
        (
            "orders.json",
            '{"custodian_fixture": 1, "models": [{"model": "order", "headers": ["ID"], "rows": []}]}',
            "Error: order names its customer by id",
        ),
    ):
        (tmp_path / name).write_text(content, encoding="utf-8")
        result = cli("loaddata", str(tmp_path / name), url=source)
        assert result.code == 1 and result.no_traceback, result.err
        assert result.err.startswith(message) and len(result.err.splitlines()) == 1, result.err


def _as_loaded(fixture: dict[str, Any]) -> dict[str, Any]:
    """The fixture as any database holding the same records dumps it: ids (which each database gives
    its own) left out, a reference by id replaced by the referenced row itself, rows in any order."""
    rows_by_id: dict[str, dict[str, tuple[Any, ...]]] = {}
    models: dict[str, Any] = {}
    for entry in fixture["models"]:
        model = model_named(entry["model"])
        fields = {item.label: item for item in exchange_fields(model)}
        by_id = [
            (index, str(fields[header].target.__tablename__))  # type: ignore[union-attr]
            for index, header in enumerate(entry["headers"])
            if fields[header].kind == "reference" and fields[header].target_key == "id"
        ]
        id_index = entry["headers"].index("ID")
        mine = rows_by_id.setdefault(entry["model"], {})
        rows = []
        for row in entry["rows"]:
            cells = list(row)
            for index, target in by_id:
                cells[index] = rows_by_id[target].get(cells[index]) if cells[index] else None
            identity = tuple(json.dumps(cell, default=str) for i, cell in enumerate(cells) if i != id_index)
            mine[row[id_index]] = identity
            rows.append(identity)
        models[entry["model"]] = (entry["headers"], sorted(rows))
    return models


def test_the_demo_data_round_trips_as_a_snapshot(
    cli: Runner, source: str, target: str, tmp_path: Path
) -> None:
    """A fixture restores what was dumped: an order item does not take its product's stock again
    (a demo product's orders took more than it has left), shipped and cancelled orders keep their items,
    totals and stock stay; every row is audited, and dumping the loaded database gives the same fixture."""
    assert cli("seed", "--demo", url=source).code == 0
    dumped = _dump(cli, source, tmp_path / "demo.json")
    statuses = {row[2] for row in _rows(dumped, "order")}
    assert {"shipped", "cancelled"} <= statuses  # items of closed orders are in the file
    entries = asyncio.run(_row_changes(target))

    loaded = cli("loaddata", str(tmp_path / "demo.json"), url=target)

    assert loaded.code == 0, loaded.out + loaded.err
    counts = {table: len(_rows(dumped, table)) for table in asyncio.run(_counts(target))}
    assert asyncio.run(_counts(target)) == counts
    assert asyncio.run(_state(target)) == asyncio.run(_state(source))  # stock, totals, unit prices, statuses
    again = _dump(cli, target, tmp_path / "again.json")
    assert _as_loaded(again) == _as_loaded(dumped)
    # At least one entry per row written (an order's total kept by its items adds more).
    assert asyncio.run(_row_changes(target)) - entries >= sum(counts.values())

    second = cli("loaddata", str(tmp_path / "demo.json"), url=target)
    assert second.code == 0, second.out + second.err
    assert " new" not in second.out.replace(" 0 new", "")
    assert " changed" not in second.out.replace(" 0 changed", "")
    assert asyncio.run(_state(target)) == asyncio.run(_state(source))
