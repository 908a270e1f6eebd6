"""Numbers, ids, dates and cursors from URLs: a malformed one is a 400 or 404 with a message, never a 500."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.values import InvalidValue, parse_date, parse_datetime, parse_decimal, parse_id, parse_int
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_order, make_product

HOSTILE_NUMBERS = [
    "²",
    "١٢",
    "1_0",
    " 1",
    "+1",
    "-1",
    "1e3",
    "0x1",
    "99999999999999999999999",
    "\x00",
    "1" * 10_000,
]
NEXT_LINK = re.compile(r'<a class="page-link" href="([^"]+)">\s*next')


@pytest.mark.parametrize("text", HOSTILE_NUMBERS)
def test_parse_id_takes_ascii_digits_in_the_bigint_range_only(text: str) -> None:
    with pytest.raises(InvalidValue, match="whole number"):
        parse_id(text)


def test_the_parsers_accept_what_they_should() -> None:
    assert parse_id("9223372036854775807") == 2**63 - 1
    assert parse_id("0" * 5000 + "7") == 7
    assert parse_int("-5", minimum=-10, maximum=10) == -5
    assert str(parse_decimal("12.50", max_digits=12, decimal_places=2)) == "12.50"
    assert parse_date("2026-01-31").isoformat() == "2026-01-31"
    assert parse_datetime("2026-01-31T09:30:00+05:00").isoformat() == "2026-01-31T04:30:00+00:00"
    for bad in ("1e3", "NaN", "Infinity", "１２", "12.345", "1234567890123"):
        with pytest.raises(InvalidValue):
            parse_decimal(bad, max_digits=12, decimal_places=2)
    for bad in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "２026-01-01", "2026-02-30"):
        with pytest.raises(InvalidValue):
            parse_datetime(bad)


def _cursor(state: str, value: object, id_: object = 1) -> str:
    raw = json.dumps([state, value, id_]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _state_of(page: httpx.Response) -> str:
    found = NEXT_LINK.search(page.text)
    assert found, "no next link"
    token = html.unescape(found.group(1)).split("after=")[1].split("&")[0]
    return str(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))[0])


def _assert_refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, (response.request.url, response.status_code, response.text[:300])
    assert message in html.unescape(response.text), response.text[:500]
    assert "Traceback" not in response.text


LIST_QUERIES = [
    ("page=²", "page must be a whole number"),
    ("page=99999999999999999999999", "page must be a whole number"),
    ("pageSize=²", "pageSize must be a whole number"),
    ("pageSize=0", "pageSize must be a whole number"),
    ("pageSize=99999999999999999999999", "pageSize must be a whole number"),
    ("category=²", "Category must be chosen from the list"),
    ("category=99999999999999999999999", "Category must be chosen from the list"),
    ("category=-1", "Category must be chosen from the list"),
    ("sortBy=price&sort=sideways", "sort must be asc or desc"),
    ("after=%%%", "This page link is not valid"),
    ("after=bm90IGpzb24", "This page link is not valid"),  # "not json"
    ("before=" + "A" * 5000, "This page link is not valid"),
    ("after=" + _cursor("x", 1, 1)[:-2], "This page link is not valid"),
]


@pytest.mark.parametrize(("query", "message"), LIST_QUERIES)
async def test_malformed_list_parameters_are_400(
    new_client: ClientFactory, session: AsyncSession, query: str, message: str
) -> None:
    client = await new_client(superuser=True)
    _assert_refused(await client.get(f"/admin/product/list?{query}"), 400, message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("category=²", "Category must be chosen from the list"),
        ("category=99999999999999999999999", "Category must be chosen from the list"),
        ("status=sold", "Unknown status"),
    ],
)
async def test_the_export_refuses_the_same_filters(
    new_client: ClientFactory, session: AsyncSession, query: str, message: str
) -> None:
    client = await new_client(superuser=True)
    _assert_refused(await client.get(f"/admin/product/export/csv?{query}"), 400, message)


CURSOR_VALUES = {
    # sortBy -> hostile values for the cursor's sort value
    "id": [1e400, 2**63, -(2**63) - 1, "12", True, None, [1], {"a": 1}],
    "price": ["1e400", "NaN", "Infinity", "１２", 12.5, "9" * 40, "0.001"],
    "name": [12, None, "x" * 10_000],
}


@pytest.mark.parametrize(
    ("sort_by", "value"), [(sort_by, value) for sort_by, values in CURSOR_VALUES.items() for value in values]
)
async def test_hostile_cursor_values_are_400(
    new_client: ClientFactory, session: AsyncSession, sort_by: str, value: object
) -> None:
    for _ in range(3):
        await make_product(session)
    await session.commit()
    client = await new_client(superuser=True)
    first = await client.get(f"/admin/product/list?pageSize=2&sortBy={sort_by}&sort=asc")
    state = _state_of(first)
    url = f"/admin/product/list?pageSize=2&sortBy={sort_by}&sort=asc&after={_cursor(state, value)}"
    _assert_refused(await client.get(url), 400, "This page link is not valid")


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "2026-02-30T00:00:00",
        "yesterday",
        1e400,
        20260101,
    ],
)
@pytest.mark.parametrize("cursor_id", [1, 2**63, 1e400, "1", 0])
async def test_hostile_order_cursors_are_400(
    new_client: ClientFactory, session: AsyncSession, value: object, cursor_id: object
) -> None:
    for _ in range(3):
        await make_order(session)
    await session.commit()
    client = await new_client(superuser=True)
    first = await client.get("/admin/order/list?pageSize=2&sortBy=placed_at&sort=desc")
    state = _state_of(first)
    url = f"/admin/order/list?pageSize=2&sortBy=placed_at&sort=desc&after={_cursor(state, value, cursor_id)}"
    _assert_refused(await client.get(url), 400, "This page link is not valid")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/admin/trash?days=999999999", "days must be a whole number from 1 to"),
        ("/admin/trash?days=²", "days must be a whole number"),
        ("/admin/trash?page=²", "page must be a whole number"),
        ("/admin/trash?page=0", "page must be a whole number"),
        ("/admin/trash?page=99999999999999999999999", "page must be a whole number"),
        ("/admin/audit-log?before=²", "before must be a whole number"),
        ("/admin/audit-log?before=99999999999999999999999", "before must be a whole number"),
        ("/admin/audit-log?since=２026-01-01", "since must be a date"),
        ("/admin/audit-log?until=2026-02-30", "until must be a date"),
        ("/admin/audit-log/export?since=²", "since must be a date"),
    ],
)
async def test_malformed_review_page_parameters_are_400(
    new_client: ClientFactory, session: AsyncSession, path: str, message: str
) -> None:
    client = await new_client(superuser=True)
    _assert_refused(await client.get(path), 400, message)


async def test_the_last_day_there_is_is_a_date_like_any_other(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    assert (await client.get("/admin/audit-log?since=0001-01-01&until=9999-12-31")).status_code == 200
    assert (await client.get("/admin/trash?days=36600&page=2")).status_code == 200


BAD_IDS = ["²", "١٢", "0", "-1", "99999999999999999999999", "1e3", "abc"]


@pytest.mark.parametrize("pk", BAD_IDS)
async def test_ids_in_paths_that_cannot_exist_are_404(
    new_client: ClientFactory, session: AsyncSession, pk: str
) -> None:
    client = await new_client(superuser=True)
    for path in (
        f"/admin/product/details/{pk}",
        f"/admin/product/edit/{pk}",
        f"/admin/history/product/{pk}",
        f"/admin/user/set-password/{pk}",
    ):
        response = await client.get(path)
        assert response.status_code == 404, (path, response.status_code)
    token = await page_token(client)
    for what in ("restore", "purge"):
        response = await client.post(
            f"/admin/trash/product/{pk}/restore".replace("restore", what), data={"csrf_token": token}
        )
        # The 404 page's wording belongs to the error pages; the status is what matters here.
        assert response.status_code == 404 and "Traceback" not in response.text


@pytest.mark.parametrize("pks", ["²", "1,²", "99999999999999999999999", "1,-1"])
async def test_ids_in_lists_that_cannot_exist_are_404(
    new_client: ClientFactory, session: AsyncSession, pks: str
) -> None:
    client = await new_client(superuser=True)
    token = await page_token(client)
    response = await client.delete(f"/admin/product/delete?pks={pks}", headers={"X-CSRF-Token": token})
    assert response.status_code == 404
    response = await client.post(f"/admin/product/action/mark-draft?pks={pks}", data={"csrf_token": token})
    assert response.status_code == 404


async def test_an_empty_id_list_is_400(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    token = await page_token(client)
    response = await client.delete("/admin/product/delete?pks=,", headers={"X-CSRF-Token": token})
    _assert_refused(response, 400, "Select at least one record")


# A link can put any sentence in a URL; a page that printed it back would lend it the admin's trust.
PHISHING = "Call 555-0100 to unlock"
PLANTED = quote(PHISHING, safe="")


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", f"/admin/product/details/{PLANTED}", 404, "No such product exists."),
        ("GET", f"/admin/product/edit/{PLANTED}", 404, "No such product exists."),
        ("GET", f"/admin/user/set-password/{PLANTED}", 404, "No such user exists."),
        ("GET", f"/admin/history/product/{PLANTED}", 404, ""),
        ("GET", f"/admin/history/{PLANTED}/1", 404, "No such kind of record."),
        ("GET", f"/admin/product/list?status={PLANTED}", 400, "Unknown status."),
        ("GET", f"/admin/product/export/csv?status={PLANTED}", 400, "Unknown status."),
        ("GET", f"/admin/order/list?placed={PLANTED}", 400, "Unknown date range."),
        ("GET", f"/admin/product/list?sortBy={PLANTED}", 400, "The list cannot be sorted by that column."),
        ("GET", f"/admin/product/list?category={PLANTED}", 400, "Category must be chosen from the list."),
        ("GET", f"/admin/audit-log?action={PLANTED}", 400, "Unknown action."),
        ("GET", f"/admin/audit-log?since={PLANTED}", 400, "since must be a date"),
        ("GET", f"/admin/trash?model={PLANTED}", 404, "No such kind of record in the trash."),
        ("POST", f"/admin/trash/{PLANTED}/1/restore", 404, "No such kind of record in the trash."),
    ],
)
async def test_error_pages_never_print_text_from_the_url(
    new_client: ClientFactory, session: AsyncSession, method: str, path: str, status: int, message: str
) -> None:
    client = await new_client(superuser=True)
    data = {"csrf_token": await page_token(client)} if method == "POST" else None
    response = await client.request(method, path, data=data)
    _assert_refused(response, status, message)
    assert "555-0100" not in html.unescape(response.text), path


async def test_a_missing_record_is_named_by_its_parsed_id(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    response = await client.get("/admin/product/details/000999999999")
    _assert_refused(response, 404, "No product 999999999 exists.")
    assert "000999999999" not in response.text
