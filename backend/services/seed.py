"""Demo data for a newcomer, and bulk products for benchmarks.

Demo seeding goes through the services (validation, permissions, and the
audit trail once there is one) and is idempotent: what exists is left alone.
Bulk seeding uses the bulk path (COPY on PostgreSQL) for speed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from backend.db.statistics import analyze
from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.models import Category, Customer, Order, Product, ProductStatus, Tag
from backend.repositories.bulk import bulk_insert
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.orders import OrderService
from backend.services.users import UserService

# Local logins for the demo, one per built-in role; documented in the README.
DEMO_LOGINS = (
    ("admin", "admin-demo-password", None),
    ("manager", "manager-demo-password", "manager"),
    ("editor", "editor-demo-password", "editor"),
    ("viewer", "viewer-demo-password", "viewer"),
    ("auditor", "auditor-demo-password", "auditor"),
)
DEMO_EMAIL_DOMAIN = "demo.example"
DEMO_PRODUCTS = 500
DEMO_CUSTOMERS = 120
DEMO_ORDERS = 240

CATEGORY_TREE = {
    "Electronics": ["Phones", "Laptops", "Audio", "Cameras"],
    "Home": ["Kitchen", "Furniture", "Lighting"],
    "Outdoors": ["Camping", "Cycling"],
    "Books": ["Fiction", "Cooking", "Travel"],
}
TAGS = ["new", "sale", "bestseller", "eco", "gift", "limited", "bundle", "refurbished", "imported", "local"]
ADJECTIVES = [
    "Compact",
    "Classic",
    "Smart",
    "Rugged",
    "Wireless",
    "Deluxe",
    "Organic",
    "Modern",
    "Vintage",
    "Pro",
]
NOUNS = [
    "Kettle",
    "Lamp",
    "Speaker",
    "Backpack",
    "Tent",
    "Phone Case",
    "Notebook",
    "Chair",
    "Camera Strap",
    "Bottle",
]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi", "Luca"]
LAST = ["Ahmed", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen"]


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


def refuse_in_production(uow: UnitOfWork, *, force: bool) -> None:
    if uow.settings.is_production and not force:
        raise AppError(
            "Refusing to seed in production (ENVIRONMENT=production); pass --force if you mean it."
        )


async def seed_demo(uow: UnitOfWork, *, force: bool = False) -> SeedReport:
    """Create the demo back office: logins, categories, tags, products, customers, orders."""
    refuse_in_production(uow, force=force)
    report = SeedReport()
    rng = random.Random(20261121)  # noqa: S311 - repeatable demo data, not secrets
    await _demo_users(uow, report)
    categories = await _demo_categories(uow, report)
    tags = await _demo_tags(uow, report)
    products = await _demo_products(uow, report, rng, categories, tags)
    customers = await _demo_customers(uow, report)
    await _demo_orders(uow, report, rng, products, customers)
    return report


async def _demo_users(uow: UnitOfWork, report: SeedReport) -> None:
    service = UserService(uow)
    for username, password, role in DEMO_LOGINS:
        report.logins.append((username, password, role or "superuser"))
        if await service.repo.exists(username=username):
            continue
        await service.create(
            {
                "username": username,
                "email": f"{username}@{DEMO_EMAIL_DOMAIN}",
                "password": password,
                "is_superuser": role is None,
                "roles": [role] if role else [],
            }
        )
        report.count("users")


async def _demo_categories(uow: UnitOfWork, report: SeedReport) -> list[Category]:
    service = CategoryService(uow)
    leaves: list[Category] = []
    for parent_name, children in CATEGORY_TREE.items():
        parent = await _get_or_create_category(service, report, parent_name, None)
        for child in children:
            leaves.append(await _get_or_create_category(service, report, child, parent.id))
    return leaves


async def _get_or_create_category(
    service: CategoryService, report: SeedReport, name: str, parent_id: int | None
) -> Category:
    slug = name.lower().replace(" ", "-")
    existing = await service.repo.get_by(slug=slug)
    if existing is not None:
        return existing
    report.count("categories")
    return await service.create({"name": name, "slug": slug, "parent_id": parent_id})


async def _demo_tags(uow: UnitOfWork, report: SeedReport) -> list[Tag]:
    service = TagService(uow)
    tags = []
    for name in TAGS:
        tag = await service.repo.get_by(name=name)
        if tag is None:
            tag = await service.create({"name": name})
            report.count("tags")
        tags.append(tag)
    return tags


async def _demo_products(
    uow: UnitOfWork, report: SeedReport, rng: random.Random, categories: list[Category], tags: list[Tag]
) -> list[Product]:
    service = ProductService(uow)
    existing = {p.sku: p for p in await service.repo.list(where=[Product.sku.like("DEMO-%")])}
    products = []
    for n in range(1, DEMO_PRODUCTS + 1):
        sku = f"DEMO-{n:05d}"
        if sku in existing:
            products.append(existing[sku])
            continue
        status = rng.choices(list(ProductStatus), weights=[1, 8, 1])[0]
        products.append(
            await service.create(
                {
                    "sku": sku,
                    "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {n}",
                    "description": "Demo product.",
                    "price": Decimal(rng.randint(199, 49_999)) / 100,
                    "stock": rng.randint(0, 400),
                    "status": status,
                    "category_id": rng.choice(categories).id,
                    "tag_ids": [tag.id for tag in rng.sample(tags, rng.randint(0, 3))],
                }
            )
        )
        report.count("products")
    return products


async def _demo_customers(uow: UnitOfWork, report: SeedReport) -> list[Customer]:
    service = CustomerService(uow)
    existing = {
        c.email: c for c in await service.repo.list(where=[Customer.email.like(f"%@{DEMO_EMAIL_DOMAIN}")])
    }
    customers = []
    for n in range(1, DEMO_CUSTOMERS + 1):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        email = f"{first.lower()}.{last.lower()}{n}@{DEMO_EMAIL_DOMAIN}"
        if email in existing:
            customers.append(existing[email])
            continue
        customers.append(
            await service.create(
                {
                    "name": f"{first} {last}",
                    "email": email,
                    "phone": f"+44 20 7946 {n:04d}",
                    "address": f"{n} Demo Street, London",
                }
            )
        )
        report.count("customers")
    return customers


async def _demo_orders(
    uow: UnitOfWork,
    report: SeedReport,
    rng: random.Random,
    products: list[Product],
    customers: list[Customer],
) -> None:
    demo_orders = await uow.session.scalar(
        select(func.count())
        .select_from(Order)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Customer.email.like(f"%@{DEMO_EMAIL_DOMAIN}"))
    )
    if demo_orders:
        return  # orders have no natural key: seed them once
    service = OrderService(uow)
    orderable = [p for p in products if p.status is not ProductStatus.ARCHIVED]
    now = datetime.now(UTC)
    for _ in range(DEMO_ORDERS):
        lines = rng.sample(orderable, rng.randint(1, 4))
        items = [{"product_id": p.id, "quantity": 1} for p in lines if p.stock >= 1]
        if not items:
            continue
        order = await service.create(
            {
                "customer_id": rng.choice(customers).id,
                "placed_at": now - timedelta(minutes=rng.randint(0, 90 * 24 * 60)),
                "items": items,
            }
        )
        status = rng.choices(["pending", "paid", "shipped", "cancelled"], weights=[3, 4, 6, 1])[0]
        if status != "pending":
            await service.update(order.id, {"status": status})
        report.count("orders")


# Bulk products for benchmarks ---------------------------------------------------------

BENCH_CATEGORIES = 1000
BULK_COLUMNS = ("sku", "name", "description", "price", "stock", "status", "category_id", "deleted_at")


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
    be run again to add more.
    """
    refuse_in_production(uow, force=force)
    uow.actor.require("product.add")
    if count < 1 or batch_size < 1:
        raise AppError("--products and --batch-size must be positive.")
    session = uow.session
    category_ids = await _bench_categories(uow)
    start = (await session.scalar(select(func.count()).where(Product.sku.like("BENCH-%")))) or 0
    table = Product.__table__
    done = 0
    while done < count:
        size = min(batch_size, count - done)
        rows = bulk_product_rows(start + done + 1, size, category_ids)
        await bulk_insert(session, table, BULK_COLUMNS, rows)  # type: ignore[arg-type]  # Product is mapped to a Table
        done += size
        if progress:
            progress(size)
    # Fresh statistics before anyone queries: without them a million COPYed rows
    # are planned as an empty table until autovacuum (if it runs) catches up.
    await analyze(session, [table, Category.__table__])  # type: ignore[list-item]  # mapped Tables
    return done


_PRICES = [Decimal(cents) / 100 for cents in range(199, 99_999, 97)]
_FIRST_NAMES = FIRST


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
            f"{ADJECTIVES[n % 10]} {NOUNS[(n // 10) % 10]} {_FIRST_NAMES[(n // 100) % 12]} {n}",
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
    session = uow.session
    existing = list(
        (await session.execute(select(Category.id).where(Category.slug.like("bench-%")))).scalars()
    )
    if len(existing) >= BENCH_CATEGORIES:
        return existing
    have = {
        slug
        for slug in (
            await session.execute(select(Category.slug).where(Category.slug.like("bench-%")))
        ).scalars()
    }
    rows = [
        (f"Bench category {n}", f"bench-{n:04d}")
        for n in range(1, BENCH_CATEGORIES + 1)
        if f"bench-{n:04d}" not in have
    ]
    await bulk_insert(session, Category.__table__, ("name", "slug"), rows)  # type: ignore[arg-type]  # mapped Table
    return list((await session.execute(select(Category.id).where(Category.slug.like("bench-%")))).scalars())
