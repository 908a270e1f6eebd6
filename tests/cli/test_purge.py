from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Product
from tests.cli.conftest import Runner, planner_row_estimate, run_manage_py
from tests.databases import TEST_SECRET_KEY, make_settings
from tests.factories import make_order, make_product


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


async def _setup(url: str) -> dict[str, int]:
    """Three deleted products (40, 40 and 2 days ago) and one deleted but still ordered."""
    database = Database(make_settings(url))
    try:
        async with unit_of_work(database, Actor.system("setup"), audit=False) as uow:
            long_ago = datetime.now(UTC) - timedelta(days=40)
            old = await make_product(uow.session, sku="OLD-1", deleted_at=long_ago)
            await make_product(uow.session, sku="OLD-2", deleted_at=long_ago, category_id=old.category_id)
            await make_product(uow.session, sku="NEW-1", deleted_at=datetime.now(UTC) - timedelta(days=2))
            order = await make_order(uow.session)
            ordered = (
                (
                    await uow.session.execute(
                        select(Product).where(Product.id != old.id).order_by(Product.id.desc())
                    )
                )
                .scalars()
                .first()
            )
            assert ordered is not None
            ordered.deleted_at = long_ago
            await uow.commit()
            return {"old": old.id, "ordered": ordered.id, "order": order.id}
    finally:
        await database.dispose()


async def _state(url: str) -> tuple[set[str], list[tuple[str, str]]]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            skus = set((await session.execute(select(Product.sku))).scalars())
            purges = (
                await session.execute(
                    select(AuditEntry.object_repr, AuditEntry.actor_name).where(AuditEntry.action == "purge")
                )
            ).all()
            return skus, [tuple(row) for row in purges]
    finally:
        await database.dispose()


def test_dry_run_then_purge(cli: Runner, db_url: str) -> None:
    asyncio.run(_setup(db_url))
    dry = cli("purge", "--older-than", "30", "--dry-run", url=db_url)
    assert dry.code == 0, dry.err
    assert "  product: 3" in dry.out and "Would purge 3 records (dry run: nothing changed)." in dry.out
    assert len(asyncio.run(_state(db_url))[0]) >= 4

    done = cli("purge", "--older-than", "30", "--yes", url=db_url)
    assert done.code == 0, done.err
    assert "Purged 2 records." in done.out and "kept product" in done.out and "still refer to it" in done.out
    skus, purges = asyncio.run(_state(db_url))
    assert "OLD-1" not in skus and "OLD-2" not in skus and "NEW-1" in skus
    assert sorted(repr_ for repr_, _ in purges)[0].startswith("OLD-1")  # last values kept in the audit
    assert all(actor.startswith("system:") for _, actor in purges)


def test_purge_needs_confirmation(db_url: str) -> None:
    asyncio.run(_setup(db_url))
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": TEST_SECRET_KEY, "ENVIRONMENT": "test"}
    result = run_manage_py("purge", "--older-than", "30", env=env)
    assert result.code == 1 and result.err.strip().endswith("Cancelled.")
    assert "OLD-1" in asyncio.run(_state(db_url))[0]


def test_purge_errors(cli: Runner, db_url: str) -> None:
    unknown = cli("purge", "--older-than", "1", "--model", "spaceship", url=db_url)
    assert unknown.code == 1 and unknown.err.startswith("Error: Unknown model: spaceship.")
    assert cli("purge", "--older-than", "-3", url=db_url).code == 2
    assert cli("purge", url=db_url).code == 2
    nothing = cli("purge", "--older-than", "1", "--model", "tag", url=db_url)
    assert nothing.code == 0 and "Nothing to purge." in nothing.out
    assert asyncio.run(_count_products(db_url)) == 0


async def _count_products(url: str) -> int:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Product)) or 0)
    finally:
        await database.dispose()


def test_purge_refreshes_planner_statistics(cli: Runner, db_url: str) -> None:
    asyncio.run(_setup(db_url))
    assert asyncio.run(planner_row_estimate(db_url, "product")) is None  # row-by-row inserts: never analyzed
    done = cli("purge", "--older-than", "30", "--yes", url=db_url)
    assert done.code == 0, done.err
    assert asyncio.run(planner_row_estimate(db_url, "product")) == asyncio.run(_count_products(db_url))
