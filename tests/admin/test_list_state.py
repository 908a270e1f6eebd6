"""List state: a new search, filter, sort or page size starts at page 1; an export holds the list's rows."""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import ProductStatus
from tests.admin.conftest import ClientFactory
from tests.factories import make_category, make_product

NEXT_LINK = re.compile(r'<a class="page-link" href="([^"]+)">\s*next')
ROW_ID = re.compile(r'<tr><td><input type="hidden" value="(\d+)"')
SHOWING = re.compile(r"Showing (\d+) to (\d+) of (\d+)\+? items")
PAGE_CONTROL = re.compile(r'<a\s+class="page-link" href="[^"]*">(-?\d+)</a>')
EXPORT_LINK = re.compile(r'href="([^"]*/export/[^"]*)"')


def hrefs(page: httpx.Response, pattern: str) -> list[str]:
    """Every link on the page whose text matches `pattern`."""
    found = re.findall(r'<a[^>]*href="([^"]+)"[^>]*>\s*' + pattern, page.text)
    return [html.unescape(href) for href in found]


def next_link(page: httpx.Response) -> str | None:
    found = NEXT_LINK.search(page.text)
    return html.unescape(found.group(1)) if found and found.group(1) != "#" else None


def row_ids(page: httpx.Response) -> list[int]:
    body = page.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return [int(pk) for pk in ROW_ID.findall(body)]


def showing(page: httpx.Response) -> tuple[int, int, int]:
    found = SHOWING.search(page.text)
    assert found, "no 'Showing' label"
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


async def _catalog(session: AsyncSession) -> int:
    """25 products in one category: 5 drafts, and 2 whose name holds "needle"."""
    category = await make_category(session)
    for n in range(25):
        await make_product(
            session,
            sku=f"LS-{n:03d}",
            name=f"needle {n}" if n in (3, 17) else f"Item {n}",
            price=Decimal(n + 1),
            status=ProductStatus.DRAFT if n % 5 == 0 else ProductStatus.ACTIVE,
            category_id=category.id,
        )
    await session.commit()
    return category.id


async def _all_rows(client: httpx.AsyncClient, url: str) -> list[int]:
    ids: list[int] = []
    next_url: str | None = url
    while next_url:
        page = await client.get(next_url)
        assert page.status_code == 200
        ids.extend(row_ids(page))
        next_url = next_link(page)
    return ids


async def _second_page(client: httpx.AsyncClient, category_id: int) -> httpx.Response:
    first = await client.get(f"/admin/product/list?category={category_id}")
    second = await client.get(next_link(first) or "")
    assert showing(second)[:2] == (11, 20)
    return second


async def test_a_filter_chosen_on_page_two_starts_at_the_first_page(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    second = await _second_page(client, category_id)
    (draft_link,) = hrefs(second, "Draft")
    assert "after=" not in draft_link and "page=" not in draft_link
    drafts = await client.get(draft_link)
    assert showing(drafts) == (1, 5, 5)
    assert len(row_ids(drafts)) == 5


async def test_a_search_typed_on_page_two_starts_at_the_first_page(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    second = await _second_page(client, category_id)
    # SQLAdmin's search box appends `&search=` to the current address, position and all.
    typed = str(second.request.url) + "&search=needle"
    redirected = await client.get(typed)
    assert redirected.status_code == 302
    assert "after=" not in redirected.headers["location"] and "page=" not in redirected.headers["location"]
    found = await client.get(typed, follow_redirects=True)
    assert showing(found) == (1, 2, 2) and len(row_ids(found)) == 2


async def test_a_page_size_chosen_on_page_two_starts_at_the_first_page(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    second = await _second_page(client, category_id)
    (size_link,) = hrefs(second, r"25 / Page")
    resized = await client.get(size_link, follow_redirects=True)
    assert resized.status_code == 200
    assert showing(resized) == (1, 25, 25)
    assert len(row_ids(resized)) == 25
    assert "0" not in PAGE_CONTROL.findall(resized.text)  # no "page 0"
    everything = await _all_rows(client, f"/admin/product/list?category={category_id}&pageSize=25")
    assert row_ids(resized) == everything


async def test_a_sort_chosen_on_page_two_starts_at_the_first_page(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    second = await _second_page(client, category_id)
    (price_link,) = hrefs(second, "Price")
    assert "after=" not in price_link and "page=" not in price_link
    by_price = await client.get(price_link)
    assert showing(by_price)[:2] == (1, 10)


async def _exported_ids(client: httpx.AsyncClient, list_page: httpx.Response) -> list[int]:
    links = [html.unescape(href) for href in EXPORT_LINK.findall(list_page.text)]
    # One link per format, each with the list's query.
    assert [link.split("?")[0].rsplit("/", 1)[-1] for link in links] == ["csv", "xlsx", "json"], links
    assert len({link.split("?", 1)[-1] for link in links}) == 1, links
    export = await client.get(links[0])
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    return [int(row["ID"]) for row in rows]


async def test_an_export_from_a_searched_list_holds_exactly_its_rows(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    url = f"/admin/product/list?category={category_id}&search=needle&sortBy=price&sort=desc"
    page = await client.get(url)
    listed = await _all_rows(client, url)
    assert len(listed) == 2
    assert await _exported_ids(client, page) == listed


async def test_an_export_from_a_filtered_list_on_page_two_holds_exactly_its_rows(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    category_id = await _catalog(session)
    url = f"/admin/product/list?category={category_id}&status=active&pageSize=10"
    listed = await _all_rows(client, url)
    assert len(listed) == 20
    second = await client.get(next_link(await client.get(url)) or "")
    assert await _exported_ids(client, second) == listed  # the whole list, not just the page shown


async def test_the_list_never_prints_an_error_from_its_url(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    # SQLAdmin's list endpoint shows `?error=`; a link could make a trusted page say anything.
    client = await new_client(superuser=True)
    await _catalog(session)
    response = await client.get("/admin/product/list?error=Call-zq7x-to-unlock")
    assert response.status_code == 200
    shown_text = re.sub(r"<[^>]*>", " ", response.text)  # links keep the query; no sentence may repeat it
    assert "zq7x" not in shown_text
    assert len(row_ids(response)) == 10
