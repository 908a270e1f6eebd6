"""Demo data for a newcomer (bulk products for benchmarks: backend.services.bulk_seed).

Demo seeding goes through the services (validation, permissions and the
audit trail) and is idempotent: what exists is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from backend.config import Environment
from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.models import Category, Customer, Order, Product, ProductStatus, Tag
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.orders import OrderService
from backend.services.two_factor import TwoFactorService
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
# Superusers must sign in with a second factor (REQUIRE_2FA_FOR): in development the demo `admin` is
# enrolled with this published key, so `./dev serve` can be signed in to with any authenticator app.
# Never in production (nor in the test environment, whose journeys sign in with passwords alone).
DEMO_TOTP_SECRET = "CUSTODIANDEMOADMINTWOFACTORKEY23"  # noqa: S105 - a documented demo key
DEMO_TOTP_USER = "admin"
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
            await _demo_second_factor(uow, report, username)
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
        await _demo_second_factor(uow, report, username)


async def _demo_second_factor(uow: UnitOfWork, report: SeedReport, username: str) -> None:
    """Enrol the demo `admin` with `DEMO_TOTP_SECRET`, in development only; say so in the report."""
    if username != DEMO_TOTP_USER or uow.settings.environment is not Environment.DEVELOPMENT:
        return
    user = await UserService(uow).repo.get_by(username=username)
    if user is None:
        return
    await TwoFactorService(uow).enrol_with_secret(user.id, DEMO_TOTP_SECRET)
    name, password, role = report.logins[-1]
    report.logins[-1] = (name, password, f"{role}, two-factor key {DEMO_TOTP_SECRET}")


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
    demo_orders = await uow.repo(Order).count(
        where=[Order.customer.has(Customer.email.like(f"%@{DEMO_EMAIL_DOMAIN}"))], include_deleted=True
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
