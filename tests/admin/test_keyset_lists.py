"""Keyset pagination and capped counts: correctness, not speed (speed lives in bench/)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin.conftest import ClientFactory
from tests.factories import make_category, make_product

ROW_SKU = re.compile(r"<td>\s*(KS-\d+)\s*</td>")
NEXT_LINK = re.compile(r'<a class="page-link" href="([^"]+)">\s*next')
PREVIOUS_LINK = re.compile(
    r'<a class="page-link" href="([^"]+)">\s*<i class="fa-solid fa-chevron-left"></i>\s*prev'
)


def skus(page: httpx.Response) -> list[str]:
    return ROW_SKU.findall(page.text)


def link(pattern: re.Pattern[str], page: httpx.Response) -> str | None:
    found = pattern.search(page.text)
    return html.unescape(found.group(1)) if found and found.group(1) != "#" else None


async def _products(session: AsyncSession, count: int) -> int:
    category = await make_category(session)
    for n in range(count):
        await make_product(
            session,
            sku=f"KS-{n:03d}",
            name=f"Item {(n * 7) % count:03d}",
            price=Decimal(n % 5 + 1),
            category_id=category.id,
        )
    await session.commit()
    return category.id


async def test_paging_through_everything_skips_and_repeats_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _products(session, 23)
    seen: list[str] = []
    url: str | None = f"/admin/product/list?pageSize=10&category={category_id}"
    pages = 0
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        seen.extend(skus(page))
        url = link(NEXT_LINK, page)
        pages += 1
        if pages == 1:
            # Rows arriving and leaving while someone pages through must not shift the pages.
            await make_product(session, sku="KS-900", category_id=category_id)  # newest: sorts first
            from sqlalchemy import update

            from backend.models import Product

            await session.execute(
                update(Product).where(Product.sku == "KS-000").values(deleted_at=datetime.now(UTC))
            )
            await session.commit()
    assert pages == 3
    expected = [f"KS-{n:03d}" for n in range(22, -1, -1) if n != 0]  # newest first; KS-000 deleted meanwhile
    assert seen == expected


async def test_previous_links_walk_back(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    category_id = await _products(session, 25)
    first = await client.get(f"/admin/product/list?pageSize=10&category={category_id}")
    assert link(PREVIOUS_LINK, first) is None
    second = await client.get(link(NEXT_LINK, first) or "")
    third = await client.get(link(NEXT_LINK, second) or "")
    assert link(NEXT_LINK, third) is None and len(skus(third)) == 5
    back = await client.get(link(PREVIOUS_LINK, third) or "")
    assert skus(back) == skus(second)
    assert "Showing 11 to 20 of 25 items" in back.text
    again = await client.get(link(PREVIOUS_LINK, back) or "")
    assert skus(again) == skus(first)


async def test_sorted_by_an_indexed_column_with_ties(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _products(session, 12)
    seen: list[str] = []
    url: str | None = f"/admin/product/list?pageSize=5&sortBy=price&sort=asc&category={category_id}"
    while url:
        page = await client.get(url)
        seen.extend(skus(page))
        url = link(NEXT_LINK, page)
    # price = n % 5 + 1 has ties; the id breaks them, so every row appears exactly once, in order.
    expected = sorted((f"KS-{n:03d}" for n in range(12)), key=lambda sku: (int(sku[3:]) % 5, int(sku[3:])))
    assert seen == expected


async def test_a_cursor_for_another_sort_is_refused(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    category_id = await _products(session, 12)
    first = await client.get(f"/admin/product/list?pageSize=5&sortBy=price&category={category_id}")
    cursor = (link(NEXT_LINK, first) or "").split("after=")[1].split("&")[0]
    response = await client.get(f"/admin/product/list?pageSize=5&sortBy=name&after={cursor}")
    assert response.status_code == 400


async def test_counts_are_capped(
    new_client: ClientFactory, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    import admin.views.base

    monkeypatch.setattr(admin.views.base, "COUNT_CAP", 5)
    client = await new_client(superuser=True)
    category_id = await _products(session, 12)
    page = await client.get(f"/admin/product/list?pageSize=10&category={category_id}")
    assert "of 5+ items" in page.text or "of 10+ items" in page.text
    small = await client.get(f"/admin/product/list?pageSize=10&category={category_id}&search=KS-01")
    assert "of 2 items" in small.text  # under the cap: exact


async def test_search_escapes_wildcards(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    category = await make_category(session)
    await make_product(session, sku="PCT-1", name="100% cotton", category_id=category.id)
    await make_product(session, sku="PCT-2", name="1000 cotton", category_id=category.id)
    await session.commit()
    page = await client.get(f"/admin/product/list?category={category.id}&search=100%25")
    assert "PCT-1" in page.text and "PCT-2" not in page.text
    assert (await client.get("/admin/product/list?search=" + "\\\\" * 150)).status_code == 200
