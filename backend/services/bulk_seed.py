"""Bulk products for benchmarks (`manage.py seed --products N`): generated rows written by COPY.

The rows skip the services on purpose (a million products through the ORM
would take hours): no validation, no audit entries. `bench/run.py` COPYs the
same rows (`bulk_product_rows`) into a bare table to measure what the seed costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.models import Category, Product
from backend.services.seed import ADJECTIVES, FIRST, NOUNS, refuse_in_production

BENCH_CATEGORIES = 1000
BULK_COLUMNS = ("sku", "name", "description", "price", "stock", "status", "category_id", "deleted_at")
_PRICES = [Decimal(cents) / 100 for cents in range(199, 99_999, 97)]


async def seed_bulk_products(
    uow: UnitOfWork,
    count: int,
    *,
    batch_size: int = 10_000,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert `count` generated products (2% soft-deleted) over 1,000 categories.

    Needs `product.add`. Uses the bulk path: COPY on PostgreSQL, then ANALYZE of
    the tables it filled. Continues the SKU sequence of earlier runs, so it can
    be run again to add more. Raises `AppError` in production without `force`.
    """
    refuse_in_production(uow, force=force)
    uow.actor.require("product.add")
    if count < 1 or batch_size < 1:
        raise AppError("--products and --batch-size must be positive.")
    products = uow.repo(Product)
    category_ids = await _bench_categories(uow)
    start = await products.count(where=[Product.sku.like("BENCH-%")], include_deleted=True)
    done = 0
    while done < count:
        size = min(batch_size, count - done)
        await products.bulk_insert(BULK_COLUMNS, bulk_product_rows(start + done + 1, size, category_ids))
        done += size
        if progress:
            progress(size)
    # Fresh statistics before anyone queries: without them a million COPYed rows
    # are planned as an empty table until autovacuum (if it runs) catches up.
    await products.analyze()
    await uow.repo(Category).analyze()
    return done


def bulk_product_rows(first: int, count: int, category_ids: Sequence[int]) -> list[tuple[object, ...]]:
    """`count` product rows in `BULK_COLUMNS` order, numbered from `first`.

    Deterministic and cheap (no random numbers, prices from a table) so that
    generating rows costs little next to writing them; every 50th is deleted.
    """
    deleted_at = datetime.now(UTC)
    categories = len(category_ids)
    prices = len(_PRICES)
    return [
        (
            f"BENCH-{n:08d}",
            f"{ADJECTIVES[n % 10]} {NOUNS[(n // 10) % 10]} {FIRST[(n // 100) % 12]} {n}",
            "",
            _PRICES[n % prices],
            n % 1000,
            "draft" if n % 10 == 0 else "active",
            category_ids[n % categories],
            deleted_at if n % 50 == 0 else None,
        )
        for n in range(first, first + count)
    ]


async def _bench_categories(uow: UnitOfWork) -> list[int]:
    categories = uow.repo(Category)
    bench = [Category.slug.like("bench-%")]
    existing = await categories.values(Category.id, where=bench, include_deleted=True)
    if len(existing) >= BENCH_CATEGORIES:
        return existing
    have = set(await categories.values(Category.slug, where=bench, include_deleted=True))
    rows = [
        (f"Bench category {n}", f"bench-{n:04d}")
        for n in range(1, BENCH_CATEGORIES + 1)
        if f"bench-{n:04d}" not in have
    ]
    await categories.bulk_insert(("name", "slug"), rows)
    return await categories.values(Category.id, where=bench, include_deleted=True)
