"""List filters that scale: active filters as chips, date ranges from/to, searchable relationship filters."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from admin import listing
from backend.jobs.runner import run_job
from backend.models import OrderStatus, ProductStatus, User
from backend.models.jobs import JobStatus
from tests.admin.conftest import Apps, ClientFactory, client_for, sign_in
from tests.factories import make_category, make_order, make_product, make_role, make_user, unique

CHIP = re.compile(r'<span class="badge bg-blue-lt filter-chip">(.*?)\s*<a href="([^"]+)"', re.S)
CLEAR_ALL = re.compile(r'<a href="([^"]+)" class="ms-1" id="clear-filters">')
ROW_ID = re.compile(r'<tr><td><input type="hidden" value="(\d+)"')
NEXT_LINK = re.compile(r'<a class="page-link" href="([^"#]+)">\s*next')
PREVIOUS_LINK = re.compile(
    r'<a class="page-link" href="([^"#]+)">\s*<i class="fa-solid fa-chevron-left"></i>'
)

# A day long past, so rows the other tests make never fall in its ranges.
DAY = datetime(2011, 5, 10, tzinfo=UTC)


def chips(page: httpx.Response) -> dict[str, list[tuple[str, str]]]:
    """Chip text -> the query of its × link, as (name, value) pairs."""
    return {
        " ".join(text.split()): parse_qsl(urlsplit(html.unescape(href)).query, keep_blank_values=True)
        for text, href in CHIP.findall(page.text)
    }


def row_ids(page: httpx.Response) -> list[int]:
    body = page.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return [int(pk) for pk in ROW_ID.findall(body)]


def link(pattern: re.Pattern[str], page: httpx.Response) -> str | None:
    found = pattern.search(page.text)
    return html.unescape(found.group(1)) if found else None


def csv_ids(content: bytes) -> list[int]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    return [int(row[0]) for row in rows[1:]]


async def test_each_chip_removes_exactly_its_filter_and_clear_all_keeps_the_sort(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    category = await make_category(session, name="<b>Lamps</b> & co")
    await make_product(session, category_id=category.id, status=ProductStatus.DRAFT, name="kettle")
    await session.commit()
    client = await new_client(roles=["viewer"])
    state = [
        ("status", "draft"),
        ("category", str(category.id)),
        ("created", "30d"),
        ("created_from", "2011-01-01"),
        ("created_to", "2031-12-31"),
        ("search", "ket<t>le"),
        ("sortBy", "price"),
        ("sort", "desc"),
        ("pageSize", "25"),
    ]

    page = await client.get("/admin/product/list", params=state)

    assert page.status_code == 200
    # Labels are the chosen values' labels, escaped: no markup from a category's name reaches the page.
    assert "<b>Lamps</b>" not in page.text
    found = chips(page)
    assert set(found) == {
        "Status: Draft",
        "Category: &lt;b&gt;Lamps&lt;/b&gt; &amp; co",
        "Created: Past 30 days",
        "Created between: 2011-01-01 to 2031-12-31",
        "Search: ket&lt;t&gt;le",
    }
    removed = {
        "Status: Draft": {"status"},
        "Category: &lt;b&gt;Lamps&lt;/b&gt; &amp; co": {"category"},
        "Created: Past 30 days": {"created"},
        "Created between: 2011-01-01 to 2031-12-31": {"created_from", "created_to"},
        "Search: ket&lt;t&gt;le": {"search"},
    }
    for text, query in found.items():
        assert query == [pair for pair in state if pair[0] not in removed[text]], text
        without = await client.get("/admin/product/list", params=query)
        assert without.status_code == 200 and text not in chips(without) and len(chips(without)) == 4
    clear = link(CLEAR_ALL, page)
    assert clear is not None
    assert parse_qsl(urlsplit(clear).query) == [("sortBy", "price"), ("sort", "desc"), ("pageSize", "25")]
    plain = await client.get("/admin/product/list")
    assert chips(plain) == {} and 'id="clear-filters"' not in plain.text


async def test_a_date_range_holds_both_whole_days_in_utc(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    times = {
        "before": DAY - timedelta(seconds=1),
        "first moment": DAY,
        "middle": DAY + timedelta(days=1, hours=12),
        "last moment": DAY + timedelta(days=3) - timedelta(microseconds=1),
        "after": DAY + timedelta(days=3),
    }
    orders = {name: (await make_order(session, items=0, placed_at=at)).id for name, at in times.items()}
    await session.commit()
    client = await new_client(roles=["viewer"])

    both = await client.get("/admin/order/list?placed_from=2011-05-10&placed_to=2011-05-12")
    since = await client.get("/admin/order/list?placed_from=2011-05-12&placed_to=2011-05-31")
    until = await client.get("/admin/order/list?placed_from=2011-01-01&placed_to=2011-05-09")
    one_day = await client.get("/admin/order/list?placed_from=2011-05-13&placed_to=2011-05-13")

    assert set(row_ids(both)) == {orders["first moment"], orders["middle"], orders["last moment"]}
    assert set(row_ids(since)) == {orders["last moment"], orders["after"]}
    assert set(row_ids(until)) == {orders["before"]}
    assert set(row_ids(one_day)) == {orders["after"]}
    assert "Placed between: 2011-05-10 to 2011-05-12" in " ".join(chips(both))
    # The sidebar's form shows the range chosen.
    assert re.search(r'name="placed_from" id="placed_from"\s+value="2011-05-10"', both.text)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("placed_from=2011-13-01", "Placed between from must be a date like 2026-01-31."),
        ("placed_to=yesterday", "Placed between to must be a date like 2026-01-31."),
        ("placed_from=2011-5-1", "Placed between from must be a date like 2026-01-31."),
        ("placed_from=%EF%BC%92011-05-01", "Placed between from must be a date like 2026-01-31."),
        (
            "placed_from=2011-05-12&placed_to=2011-05-10",
            "Placed between: the from date is after the to date.",
        ),
        ("placed_to=0000-01-01", "Placed between to must be a date like 2026-01-31."),
    ],
)
async def test_a_bad_date_is_a_400_saying_which(
    new_client: ClientFactory, session: AsyncSession, query: str, message: str
) -> None:
    client = await new_client(roles=["viewer"])
    response = await client.get(f"/admin/order/list?{query}")
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    exported = await (await new_client(superuser=True)).get(f"/admin/order/export/csv?{query}")
    assert exported.status_code == 400


async def test_the_last_day_there_is_ends_no_range_with_an_error(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    order = await make_order(session, items=0, placed_at=DAY)
    await session.commit()
    client = await new_client(roles=["viewer"])
    response = await client.get("/admin/order/list?placed_from=2011-05-10&placed_to=9999-12-31")
    assert response.status_code == 200 and order.id in row_ids(response)


async def test_keyset_pages_keep_the_range_both_ways_and_the_export_holds_its_rows(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    inside = [
        (await make_order(session, items=0, placed_at=DAY + timedelta(hours=5 * n))).id for n in range(12)
    ]
    for outside in (DAY - timedelta(days=1), DAY + timedelta(days=4)):
        await make_order(session, items=0, placed_at=outside)
    await session.commit()
    client = await new_client(superuser=True)
    first_url = "/admin/order/list?placed_from=2011-05-10&placed_to=2011-05-12&pageSize=10"

    first = await client.get(first_url)
    forward = link(NEXT_LINK, first)
    assert forward is not None and "placed_from=2011-05-10" in forward and "placed_to=2011-05-12" in forward
    second = await client.get(forward)
    assert second.status_code == 200 and link(NEXT_LINK, second) is None
    listed = row_ids(first) + row_ids(second)
    assert sorted(listed) == sorted(inside)
    back = link(PREVIOUS_LINK, second)
    assert back is not None and "placed_to=2011-05-12" in back
    assert row_ids(await client.get(back)) == row_ids(first)

    # A cursor made for the range is refused for another range: that list starts at its first page.
    other = forward.replace("placed_to=2011-05-12", "placed_to=2011-05-11")
    moved = await client.get(other)
    assert moved.status_code in (302, 303) and "after=" not in moved.headers["location"]

    exported = await client.get(
        "/admin/order/export/csv?placed_from=2011-05-10&placed_to=2011-05-12", headers={"referer": ""}
    )
    assert exported.status_code == 200
    assert csv_ids(exported.content) == listed


@pytest.mark.postgres
async def test_an_export_job_of_a_date_ranged_list_holds_exactly_the_listed_rows(
    make_app: Apps, session: AsyncSession
) -> None:
    app, database = make_app(job_threshold_rows=2)
    inside = [
        (await make_order(session, items=0, placed_at=DAY + timedelta(hours=7 * n))).id for n in range(6)
    ]
    late = await make_order(session, items=0, placed_at=DAY + timedelta(days=2, hours=23, minutes=59))
    for outside in (DAY - timedelta(microseconds=1), DAY + timedelta(days=3)):
        await make_order(session, items=0, placed_at=outside)
    user = await make_user(session, is_superuser=True)
    await session.commit()
    state = {"placed_from": "2011-05-10", "placed_to": "2011-05-12", "sortBy": "id", "sort": "asc"}
    async with client_for(app) as client:
        client.headers["referer"] = "http://testserver/admin/"  # as the list page's export menu sends it
        assert (await sign_in(client, user.username)).status_code == 302
        listed = row_ids(await client.get("/admin/order/list", params=state))

        answer = await client.get("/admin/order/export/csv", params=state)

        assert answer.status_code == 303, answer.text[:300]
        job_id = int(answer.headers["location"].rsplit("/", 1)[1])
        job = await run_job(database, job_id, live_progress=False)
        assert job is not None and job.status is JobStatus.DONE, job and job.error
        download = await client.get(f"/admin/jobs/{job_id}/download")
    assert download.status_code == 200
    assert csv_ids(download.content) == listed == [*inside, late.id]


async def _user_with(session: AsyncSession, permissions: list[str]) -> User:
    role = await make_role(session, permissions=permissions)
    user = await make_user(session)
    user.roles = [role]
    await session.commit()
    return user


@pytest.fixture
async def signed_in(app: Starlette) -> AsyncIterator[Callable[[User], Any]]:
    opened: list[httpx.AsyncClient] = []

    async def sign(user: User) -> httpx.AsyncClient:
        client = client_for(app)
        opened.append(client)
        assert (await sign_in(client, user.username)).status_code == 302
        return client

    yield sign
    for client in opened:
        await client.aclose()


async def test_the_relationship_filter_searches_live_categories_for_who_may_list_and_view_them(
    new_client: ClientFactory, session: AsyncSession, signed_in: Callable[[User], Any]
) -> None:
    prefix = unique("Fsearch")
    live = await make_category(session, name=f"{prefix} lamps", slug=unique("fs-"))
    by_slug = await make_category(session, name=unique("Other "), slug=f"{prefix.lower()}-slug")
    await make_category(session, name=f"{prefix} gone", slug=unique("fs-"), deleted_at=datetime.now(UTC))
    await session.commit()
    lookup = f"/admin/product/filter/lookup?filter=category&term={prefix}"

    viewer = await new_client(roles=["viewer"])  # may list products and view categories, edits nothing
    answer = await viewer.get(lookup)

    assert answer.status_code == 200
    assert answer.json() == {
        "results": sorted(
            [{"id": str(live.id), "text": live.name}, {"id": str(by_slug.id), "text": by_slug.name}],
            key=lambda item: item["text"],
        )
    }
    page = await viewer.get("/admin/product/list")
    assert 'class="form-control form-control-sm mb-1 filter-search" hidden' in page.text
    assert 'data-lookup-url="http://testserver/admin/product/filter/lookup?filter=category"' in page.text
    assert 'data-parameter="category"' in page.text

    # Listing products without viewing categories, or the reverse, opens no search of categories.
    products_only = await signed_in(await _user_with(session, ["product.view"]))
    refused = await products_only.get(lookup)
    assert refused.status_code == 403 and prefix not in refused.text
    categories_only = await signed_in(await _user_with(session, ["category.view"]))
    refused = await categories_only.get(lookup)
    assert refused.status_code == 403 and prefix not in refused.text
    anonymous = await new_client(signed_in=False)
    assert (await anonymous.get(lookup)).status_code in (302, 303, 401)

    for query in ("filter=category&term=", "filter=category", "filter=status&term=a", "filter=nope&term=a"):
        assert (await viewer.get(f"/admin/product/filter/lookup?{query}")).status_code == 400
    # A view without relationship filters has the route and answers 400, never a 500.
    assert (await viewer.get("/admin/tag/filter/lookup?filter=category&term=a")).status_code == 400


FACET = re.compile(
    r'href="[^"]*[?;]status=(\w+)"[^>]*>\s*\w+ '
    r'<span class="badge bg-secondary-lt filter-facet">([\d,+]+)</span>'
)


async def test_facet_counts_follow_the_other_filters_and_are_capped(
    new_client: ClientFactory, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = list(OrderStatus)
    for n in range(7):
        await make_order(session, items=0, placed_at=DAY + timedelta(hours=n), status=statuses[n % 2])
    await make_order(session, items=0, placed_at=DAY + timedelta(days=5), status=statuses[0])
    await session.commit()
    client = await new_client(roles=["viewer"])

    page = await client.get("/admin/order/list?placed_from=2011-05-10&placed_to=2011-05-10")

    counts = dict(FACET.findall(page.text))
    assert counts[statuses[0].value] == "4" and counts[statuses[1].value] == "3"
    assert all(counts[status.value] == "0" for status in statuses[2:])
    # The status filter chosen: the others' counts still show what choosing them would list.
    chosen = await client.get(
        f"/admin/order/list?placed_from=2011-05-10&placed_to=2011-05-10&status={statuses[1].value}"
    )
    assert dict(FACET.findall(chosen.text))[statuses[0].value] == "4"
    assert (
        f'{statuses[1].value.title()} <span class="badge bg-secondary-lt filter-facet">3</span>'
        in chosen.text
    )

    monkeypatch.setattr(listing, "FACET_CAP", 2)
    capped = await client.get("/admin/order/list?placed_from=2011-05-10&placed_to=2011-05-10")
    assert dict(FACET.findall(capped.text))[statuses[0].value] == "2+"
    # Off by default: the product list counts nothing.
    products = await client.get("/admin/product/list")
    assert "filter-facet" not in products.text
