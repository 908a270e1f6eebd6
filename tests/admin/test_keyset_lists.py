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


async def test_a_cursor_for_another_sort_starts_at_the_first_page(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _products(session, 12)
    first = await client.get(f"/admin/product/list?pageSize=5&sortBy=price&category={category_id}")
    cursor = (link(NEXT_LINK, first) or "").split("after=")[1].split("&")[0]
    response = await client.get(f"/admin/product/list?pageSize=5&sortBy=name&after={cursor}&page=2")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/product/list?pageSize=5&sortBy=name")


async def test_counts_are_capped(
    new_client: ClientFactory, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    import admin.listing

    monkeypatch.setattr(admin.listing, "COUNT_CAP", 5)
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


# Every list, every sortable column, both directions ------------------------------------------

LIST_ROW_ID = re.compile(r'<tr><td><input type="hidden" value="(\d+)"')
SHOWING = re.compile(r"Showing (\d+) to (\d+) of (\d+)\+? items")
PAGE_SIZE = 3
MAX_PAGES = 12


def row_ids(page: httpx.Response) -> list[int]:
    body = page.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return [int(pk) for pk in LIST_ROW_ID.findall(body)]


async def _rows_of_every_kind(session: AsyncSession) -> None:
    """Rows for every list, with ties in each sortable column so the id has to break them."""
    from datetime import timedelta

    from tests.factories import make_customer, make_order, make_role, make_tag, make_user

    placed = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for n in range(7):
        customer = await make_customer(session, name=f"Same name {n % 3}")
        # Ties in placed_at and total; microseconds and UTC offsets must survive the cursor.
        order = await make_order(
            session, customer_id=customer.id, placed_at=placed + timedelta(microseconds=(n % 3) * 250_001)
        )
        order.total = Decimal(n % 2) + Decimal("0.05")
        await make_tag(session, name=f"tag-keyset-{n}")
        await make_user(session, username=f"keyset-user-{n}")
        await make_role(session, name=f"keyset-role-{n}")
    category = await make_category(session, name="Same category")
    for n in range(4):
        await make_product(
            session, name=f"Same product {n % 2}", price=Decimal("9.99"), category_id=category.id
        )
    await session.commit()


def _every_sortable_column() -> list[tuple[str, str]]:
    from admin.views import model_views

    return [(view.identity, column.key) for view in model_views() for column in view.column_sortable_list]


async def _expected_ids(session: AsyncSession, identity: str, column: str, *, descending: bool) -> list[int]:
    from sqlalchemy import select

    from admin.views import model_views

    model = next(view.model for view in model_views() if view.identity == identity)
    sort_column, pk = getattr(model, column), model.id
    stmt = select(pk).order_by(*((sort_column.desc(), pk.desc()) if descending else (sort_column, pk)))
    deleted_at = getattr(model, "deleted_at", None)
    if deleted_at is not None:
        stmt = stmt.where(deleted_at.is_(None))
    return list((await session.execute(stmt)).scalars())


async def _walk(client: httpx.AsyncClient, first_url: str) -> list[list[int]]:
    """The pages from `first_url` by "next", checked against the "previous" links on the way back."""
    pages: list[list[int]] = []
    responses: list[httpx.Response] = []
    url: str | None = first_url
    while url is not None:
        page = await client.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        pages.append(row_ids(page))
        responses.append(page)
        shown = SHOWING.search(page.text)
        assert shown is not None
        start = sum(len(ids) for ids in pages[:-1]) + 1
        assert (int(shown.group(1)), int(shown.group(2))) == (start, start + len(pages[-1]) - 1), url
        url = link(NEXT_LINK, page)
        assert len(pages) <= MAX_PAGES, "too many pages"
    for index in range(len(pages) - 1, 0, -1):
        back = await client.get(link(PREVIOUS_LINK, responses[index]) or "")
        assert back.status_code == 200
        assert row_ids(back) == pages[index - 1], f"previous from page {index + 1}"
    assert link(PREVIOUS_LINK, responses[0]) is None
    return pages


@pytest.mark.parametrize(("identity", "column"), _every_sortable_column())
async def test_every_list_pages_forwards_and_back_by_every_sort(
    new_client: ClientFactory, session: AsyncSession, identity: str, column: str
) -> None:
    await _rows_of_every_kind(session)
    client = await new_client(superuser=True)
    for direction in ("asc", "desc"):
        expected = await _expected_ids(session, identity, column, descending=direction == "desc")
        assert len(expected) > 2 * PAGE_SIZE, "not enough rows for three pages"
        pages = await _walk(
            client, f"/admin/{identity}/list?pageSize={PAGE_SIZE}&sortBy={column}&sort={direction}"
        )
        assert all(len(ids) == PAGE_SIZE for ids in pages[:-1]) and pages[-1]
        walked = [pk for ids in pages for pk in ids]
        assert walked == expected, (
            f"{identity} by {column} {direction}: rows repeated, skipped or out of order"
        )


def test_every_sortable_column_is_not_null() -> None:
    """A NULL in a keyset column would end the walk early: (NULL, id) > (x, id) is never true."""
    from admin.views import model_views

    nullable = [
        f"{view.identity}.{column.key}"
        for view in model_views()
        for column in view.column_sortable_list
        if column.property.columns[0].nullable
    ]
    assert nullable == []


@pytest.mark.parametrize("identity", sorted({identity for identity, _ in _every_sortable_column()}))
async def test_every_list_pages_by_its_default_sort(
    new_client: ClientFactory, session: AsyncSession, identity: str
) -> None:
    from admin.views import model_views

    await _rows_of_every_kind(session)
    client = await new_client(superuser=True)
    view = next(view for view in model_views() if view.identity == identity)
    default = view.column_default_sort
    column, descending = (default[0][0].key, bool(default[0][1])) if default else ("id", False)
    expected = await _expected_ids(session, identity, column, descending=descending)
    pages = await _walk(client, f"/admin/{identity}/list?pageSize={PAGE_SIZE}")
    assert [pk for ids in pages for pk in ids] == expected
