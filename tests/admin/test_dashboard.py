"""The dashboard at /admin: each role sees what it may, figures stay bounded, masked values stay masked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from admin.dashboard import CountWidget
from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.session import Database
from backend.db.statistics import analyze
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import PermissionDenied
from backend.models import OrderStatus, Product, ProductStatus
from backend.services.catalog import ProductService
from backend.services.customers import CustomerService
from backend.services.dashboard import CountKind, DashboardService, RowCount
from tests.admin.conftest import ClientFactory
from tests.factories import make_category, make_order, make_product, make_role

COUNT_CARD = re.compile(r'id="count-([\w-]+)"')
BUSINESS = {"product", "category", "tag", "order", "order-item", "customer"}
EVERYTHING = BUSINESS | {"user", "role"}


def cards(page: str) -> set[str]:
    return set(COUNT_CARD.findall(page))


@pytest.mark.parametrize(
    ("role", "counts", "activity"),
    [
        ("manager", BUSINESS, False),
        ("editor", BUSINESS, False),
        ("viewer", BUSINESS, False),
        ("auditor", EVERYTHING, True),
        (None, EVERYTHING, True),  # a superuser
    ],
)
async def test_each_role_sees_exactly_the_blocks_it_may(
    new_client: ClientFactory, role: str | None, counts: set[str], activity: bool
) -> None:
    client = await new_client(roles=[role] if role else [], superuser=role is None)
    response = await client.get("/admin/")
    assert response.status_code == 200
    page = response.text
    assert cards(page) == counts
    assert ('id="dashboard-activity"' in page) is activity
    assert 'id="dashboard-own-changes"' in page
    assert 'id="dashboard-orders-chart"' in page  # every one of these roles views orders and products
    assert 'id="dashboard-low-stock"' in page
    assert "<script>" not in page and "<script >" not in page  # scripts only by src, as the CSP wants
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None
    assert "onclick=" not in page


async def test_a_role_seeing_only_customers_gets_only_their_count(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    role = await make_role(session, permissions=["customer.view"])
    await session.commit()
    client = await new_client(roles=[role.name])
    page = (await client.get("/admin/")).text
    assert cards(page) == {"customer"}
    for block in ("dashboard-orders-chart", "dashboard-low-stock", "dashboard-activity"):
        assert f'id="{block}"' not in page, block
    assert 'href="http://testserver/admin/customer/list"' in page


async def test_a_user_without_any_permission_gets_the_no_access_page(new_client: ClientFactory) -> None:
    client = await new_client()
    response = await client.get("/admin/")
    assert response.status_code == 403
    assert 'id="no-access"' in response.text


async def test_counts_are_of_live_rows_and_stop_at_the_cap(
    new_client: ClientFactory, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = await make_category(session)
    products = [await make_product(session, category_id=category.id) for _ in range(3)]
    products[0].deleted_at = datetime.now(UTC)
    await session.commit()
    client = await new_client(roles=["viewer"])
    live = await ProductCount.of(client)
    assert live.kind == "exact"
    monkeypatch.setattr(CountWidget, "cap", live.value - 1)
    capped = await ProductCount.of(client)
    # SQLite has no planner estimate; PostgreSQL's may not know these rows yet (no ANALYZE): the cap shows.
    assert (capped.kind, capped.text) == ("capped", f"{live.value - 1:,}+")
    monkeypatch.setattr(CountWidget, "cap", live.value)
    assert (await ProductCount.of(client)).kind == "exact"


class ProductCount:
    PATTERN = re.compile(r'id="count-product".*?data-kind="(\w+)"[^>]*>([^<]+)</div>', re.S)

    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text = kind, text.strip()
        self.value = int(self.text.rstrip("+").replace(",", "")) if kind != "estimate" else 0

    @classmethod
    async def of(cls, client: object) -> ProductCount:
        page = (await client.get("/admin/")).text  # type: ignore[attr-defined]
        found = cls.PATTERN.search(page)
        assert found, "no product count"
        return cls(*found.groups())


@pytest.mark.postgres
async def test_above_the_cap_postgresql_estimates_the_live_rows(
    session: AsyncSession, settings: Settings
) -> None:
    category = await make_category(session)
    for number in range(60):
        product = await make_product(session, category_id=category.id)
        if number % 3 == 0:
            product.deleted_at = datetime.now(UTC)
    await session.flush()
    await analyze(session, [Product.__table__])
    dashboard = DashboardService(UnitOfWork(session, actor=Actor.system("tests"), settings=settings))
    found = await dashboard.count("product", cap=10)
    assert found.kind is CountKind.ESTIMATE
    assert 30 <= found.value <= 50  # about the 40 live rows, not the 60 there are


async def test_a_count_needs_the_view_permission(session: AsyncSession, settings: Settings) -> None:
    actor = Actor(user_id=None, username="nobody", permissions=frozenset({"product.view"}))
    dashboard = DashboardService(UnitOfWork(session, actor=actor, settings=settings))
    assert (await dashboard.count("product")).kind is CountKind.EXACT
    with pytest.raises(PermissionDenied):
        await dashboard.count("user")
    with pytest.raises(PermissionDenied):
        await dashboard.orders_per_day()


def test_counts_read_as_people_say_them() -> None:
    assert str(RowCount(1234, CountKind.EXACT)) == "1,234"
    assert str(RowCount(10_000, CountKind.CAPPED)) == "10,000+"
    assert str(RowCount(1_234_567, CountKind.ESTIMATE)) == "about 1.2M"
    assert str(RowCount(45_600, CountKind.ESTIMATE)) == "about 46K"
    assert str(RowCount(2_000_000, CountKind.ESTIMATE)) == "about 2M"


CHART_DAY = re.compile(r'data-day="([\d-]+)" data-orders="(\d+)" data-revenue="([\d.]+)"')


async def test_the_chart_has_30_days_with_the_orders_and_revenue_of_each(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    now = datetime.now(UTC)
    today, two_days_ago = now.date(), (now - timedelta(days=2)).date()
    noon = datetime.combine(two_days_ago, datetime.min.time(), UTC) + timedelta(hours=12)
    await make_order(session, items=2, placed_at=noon)  # 19.98
    await make_order(session, items=1, placed_at=noon + timedelta(hours=11, minutes=59))  # 9.99
    await make_order(session, items=1, placed_at=now)
    await make_order(session, items=3, placed_at=now, status=OrderStatus.CANCELLED)  # not revenue
    gone = await make_order(session, items=1, placed_at=now)
    gone.deleted_at = now  # in the trash: not counted
    await make_order(session, items=1, placed_at=now - timedelta(days=30))  # before the 30 days
    await session.commit()
    client = await new_client(roles=["viewer"])
    page = (await client.get("/admin/")).text
    days = {day: (int(orders), Decimal(revenue)) for day, orders, revenue in CHART_DAY.findall(page)}
    assert len(days) == 30
    assert min(days) == (today - timedelta(days=29)).isoformat() and max(days) == today.isoformat()
    assert days[two_days_ago.isoformat()] == (2, Decimal("29.97"))
    assert days[today.isoformat()] == (1, Decimal("9.99"))
    assert sum(orders for orders, _ in days.values()) == 3
    assert 'id="chart-total-revenue">39.96<' in page


async def test_low_stock_lists_live_unarchived_products_below_the_threshold(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    category = await make_category(session)

    async def product(stock: int, **overrides: object) -> int:
        return (await make_product(session, category_id=category.id, stock=stock, **overrides)).id

    empty, low, draft_low = await product(0), await product(4), await product(1, status=ProductStatus.DRAFT)
    hidden = [await product(2, status=ProductStatus.ARCHIVED), await product(5), await product(40)]
    deleted = await make_product(session, category_id=category.id, stock=0)
    deleted.deleted_at = datetime.now(UTC)
    await session.commit()
    client = await new_client(roles=["viewer"])
    page = (await client.get("/admin/")).text
    listed = [int(pk) for pk in re.findall(r'class="low-stock-row" data-product-id="(\d+)"', page)]
    mine = [pk for pk in listed if pk in {empty, low, draft_low, deleted.id, *hidden}]
    assert mine == [empty, draft_low, low]  # emptiest first
    assert f'href="http://testserver/admin/product/details/{empty}"' in page


async def test_own_changes_link_to_history_and_stay_masked(
    new_client: ClientFactory, session: AsyncSession, database: Database
) -> None:
    role = await make_role(session, permissions=["customer.view", "customer.add", "customer.change"])
    await session.commit()
    client = await new_client(roles=[role.name])
    actor = Actor(
        user_id=client.user_id,  # type: ignore[attr-defined]
        username=client.username,  # type: ignore[attr-defined]
        permissions=frozenset({"customer.view", "customer.add", "customer.change"}),
    )
    async with unit_of_work(database, actor) as uow:
        customers = CustomerService(uow)
        customer = await customers.create(
            {"name": "Mia Masked", "email": "mia.secret@example.com", "phone": "+44 20 7946 0111"}
        )
        await customers.update(customer.id, {"name": "Mia Masked II"})
        await uow.commit()
    async with unit_of_work(database, Actor.system("tests")) as uow:
        await ProductService(uow).create(
            {
                "sku": "NOT-MINE",
                "name": "Someone else's",
                "price": "1.00",
                "category_id": (await make_category(uow.session)).id,
            }
        )
        await uow.commit()
    page = (await client.get("/admin/")).text
    own = page.split('id="dashboard-own-changes"', 1)[1]
    assert own.count(f"customer {customer.id}</small>") == 2  # its create and update
    assert ">login<" not in own  # signing in changed nothing
    assert f'href="http://testserver/admin/history/customer/{customer.id}"' in own
    assert "Mia Masked II" in own
    assert "mia.secret@example.com" not in page and "7946 0111" not in page
    assert "NOT-MINE" not in own


async def test_latest_activity_shows_everyone_masked_for_the_reader(
    new_client: ClientFactory, session: AsyncSession, database: Database
) -> None:
    async with unit_of_work(database, Actor.system("tests")) as uow:
        await CustomerService(uow).create({"name": "Ola Other", "email": "ola.hidden@example.com"})
        await uow.commit()
    reader = await make_role(session, permissions=["audit.view", "customer.view"])  # no customer.view_pii
    await session.commit()
    auditor = await new_client(roles=[reader.name])
    page = (await auditor.get("/admin/")).text
    activity = page.split('id="dashboard-activity"', 1)[1]
    assert "Ola Other" in activity and "system:tests" in activity
    assert "ola.hidden@example.com" not in page
