from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from backend.db.session import Database
from backend.models import Customer, Order, Product, User
from tests.cli.conftest import Runner, planner_row_estimate
from tests.databases import make_settings

STRONG_KEY = "p" * 40


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


async def _counts(url: str) -> dict[str, int]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            return {
                model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (User, Product, Customer, Order)
            }
    finally:
        await database.dispose()


def test_demo_seed_is_idempotent_and_prints_logins(cli: Runner, db_url: str) -> None:
    first = cli("seed", "--demo", url=db_url)
    assert first.code == 0, first.err
    assert "Demo data ready (5 users, 16 categories, 10 tags, 500 products, 120 customers" in first.out
    for login in ("admin    / admin-demo-password", "viewer   / viewer-demo-password"):
        assert login in first.out
    counts = asyncio.run(_counts(db_url))
    assert counts["Product"] == 500 and counts["User"] == 5 and counts["Order"] > 200

    second = cli("seed", "--demo", url=db_url)
    assert second.code == 0 and "Demo data ready (nothing new)." in second.out
    assert asyncio.run(_counts(db_url)) == counts


def test_production_guard(cli: Runner, db_url: str) -> None:
    production = {"ENVIRONMENT": "production", "SECRET_KEY": STRONG_KEY, "ALLOW_SQLITE_IN_PRODUCTION": "true"}
    refused = cli("seed", "--demo", url=db_url, env=production)
    assert refused.code == 1
    assert refused.err.strip() == (
        "Error: Refusing to seed in production (ENVIRONMENT=production); pass --force if you mean it."
    )
    assert (asyncio.run(_counts(db_url)))["Product"] == 0
    assert cli("seed", "--products", "10", url=db_url, env=production).code == 1
    forced = cli("seed", "--products", "10", "--force", url=db_url, env=production)
    assert forced.code == 0, forced.err


def test_bulk_products_continue_and_report_speed(cli: Runner, db_url: str) -> None:
    first = cli("seed", "--products", "1200", "--batch-size", "500", url=db_url)
    assert first.code == 0, first.err
    assert "Inserted 1,200 products" in first.out and "rows/s" in first.out
    again = cli("seed", "--products", "300", url=db_url)
    assert again.code == 0
    skus, deleted = asyncio.run(_skus_and_deleted(db_url))
    assert len(skus) == len(set(skus)) == 1500
    assert skus[0] == "BENCH-00000001" and skus[-1] == "BENCH-00001500"
    assert deleted == 30  # every 50th row: about 2% soft-deleted


async def _skus_and_deleted(url: str) -> tuple[list[str], int]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            skus = list((await session.execute(select(Product.sku).order_by(Product.sku))).scalars())
            deleted = await session.scalar(select(func.count()).where(Product.deleted_at.is_not(None)))
            return skus, int(deleted or 0)
    finally:
        await database.dispose()


def test_seed_needs_an_option(cli: Runner) -> None:
    result = cli("seed")
    assert result.code == 2 and "Pass --demo, --products N, or both." in result.err


def test_bulk_seed_leaves_fresh_planner_statistics(cli: Runner, db_url: str) -> None:
    # Nothing else analyzes here: this machine's PostgreSQL runs with autovacuum off.
    assert asyncio.run(planner_row_estimate(db_url, "product")) is None
    result = cli("seed", "--products", "600", "--batch-size", "200", url=db_url)
    assert result.code == 0, result.err
    assert asyncio.run(planner_row_estimate(db_url, "product")) == 600
    assert asyncio.run(planner_row_estimate(db_url, "category")) == 1000  # the bench categories
