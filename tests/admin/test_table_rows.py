"""The list's `<tbody>` (`KeysetListing.table_rows`) is written as it was before it was made cheaper.

Every list page asked here renders its rows twice on the same rows and
request, with the code as it is and with the copy kept in
tests/admin/table_rows_before.py, and the two must be the same bytes: for
roles that see every control, none, some (the account-authority rule on the
user list), or no personal data; in English and German; with a query string
the edit links carry.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request

from admin.columns import ViewColumns, html_text
from admin.listing import KeysetListing
from backend.models import ProductStatus
from tests.admin.conftest import ClientFactory
from tests.admin.table_rows_before import table_rows_before
from tests.factories import (
    make_category,
    make_customer,
    make_order,
    make_product,
    make_role,
    make_tag,
    make_user,
)

AWKWARD = "<b>&\"'x</b>"
NO_PII = "orders-and-customers-without-pii"
ORDERS_ONLY = "orders-only"
ROLES = ["superuser", "manager", "editor", "viewer", "auditor", NO_PII, ORDERS_ONLY]
QUERIES = ["", "?search=&pageSize=10", "?search=%3Cb%3E%26", "?lang=de"]
_TBODY = re.compile(r"<tbody>(.*?)</tbody>", re.DOTALL)

Rendering = tuple[str, str, str]  # (view identity, the code's tbody, the kept copy's tbody)


@pytest.fixture
def renderings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Rendering]]:
    """Each `table_rows` the pages call, written by the code and by the kept copy on the same rows."""
    seen: list[Rendering] = []
    current = KeysetListing.table_rows

    async def both(self: KeysetListing, rows: Sequence[Any], request: Request) -> Markup:
        written = await current(self, rows, request)
        seen.append((self.identity, str(written), str(await table_rows_before(self, rows, request))))
        return written

    monkeypatch.setattr(KeysetListing, "table_rows", both)
    yield seen


async def seed(session: AsyncSession) -> None:
    parent = await make_category(session, name=AWKWARD)
    child = await make_category(session, parent_id=parent.id)
    binned = await make_category(session, name="In the trash", deleted_at=datetime.now(UTC))
    await make_product(session, name=AWKWARD, sku="A&B<1>", category_id=parent.id, price=Decimal("1234.5"))
    await make_product(session, category_id=child.id, price=Decimal("0.10"), status=ProductStatus.DRAFT)
    await make_product(session, category_id=binned.id, price=Decimal("7"), stock=0)
    await make_product(session, category_id=child.id, price=Decimal("19999.99"))
    customer = await make_customer(session, name=AWKWARD, email="pia.private@example.com")
    await make_order(
        session, items=2, customer_id=customer.id, placed_at=datetime(2026, 11, 7, 6, 40, tzinfo=UTC)
    )
    await make_order(session, items=1)
    await make_tag(session, name="a&b")
    await make_user(session, roles=["viewer"])
    await make_user(session, roles=["manager"])
    await make_user(session, is_superuser=True)
    await make_role(session, name=NO_PII, permissions=["order.view", "customer.view", "customer.change"])
    await make_role(session, name=ORDERS_ONLY, permissions=["order.view", "order.change"])
    await session.commit()


async def signed_in(new_client: ClientFactory, role: str) -> httpx.AsyncClient:
    return await new_client(superuser=True) if role == "superuser" else await new_client(roles=[role])


def model_identities(app: Starlette) -> list[str]:
    return [view.identity for view in app.state.admin.views if isinstance(view, KeysetListing)]


@pytest.mark.parametrize("role", ROLES)
async def test_every_list_writes_the_rows_it_wrote_before(
    role: str, app: Starlette, new_client: ClientFactory, session: AsyncSession, renderings: list[Rendering]
) -> None:
    await seed(session)
    client = await signed_in(new_client, role)
    shown: set[str] = set()
    for identity in model_identities(app):
        for query in QUERIES:
            page = await client.get(f"/admin/{identity}/list{query}")
            if page.status_code == 403:
                break
            assert page.status_code == 200, (identity, query, page.status_code)
            body = _TBODY.search(page.text)
            assert body and renderings and renderings[-1][0] == identity, (identity, query)
            assert renderings[-1][1] in body.group(1)
            if renderings[-1][1]:
                shown.add(identity)
    for identity, written, before in renderings:
        assert written == before, identity
    expected = {"order"} if role in (ORDERS_ONLY, NO_PII) else {"product", "order", "category"}
    assert expected <= shown, (role, shown)


async def test_values_are_escaped_and_personal_data_masked(
    new_client: ClientFactory, session: AsyncSession, renderings: list[Rendering]
) -> None:
    await seed(session)
    manager = await signed_in(new_client, "manager")
    products = (await manager.get("/admin/product/list")).text
    assert "&lt;b&gt;&amp;&#34;&#39;x&lt;/b&gt;" in products  # the product's name and its category's
    assert "A&amp;B&lt;1&gt;" in products and AWKWARD not in products
    assert "1,234.5" in products and "19,999.99" in products
    customers = (await manager.get("/admin/customer/list")).text
    assert "pia.private@example.com" in customers
    without_pii = await signed_in(new_client, NO_PII)
    for path in ("/admin/customer/list", "/admin/order/list"):
        page = await without_pii.get(path)
        assert page.status_code == 200 and "pia.private" not in page.text, path
    orders_only = await signed_in(new_client, ORDERS_ONLY)
    orders = (await orders_only.get("/admin/order/list")).text
    assert "/admin/customer/details/" not in orders and "&lt;b&gt;&amp;" in orders


class Shade(enum.Enum):
    DARK = "<dark & deep>"


class Level(enum.IntEnum):
    HIGH = 3


AWKWARD_TEXTS = ["", "plain", AWKWARD, "&amp;", "'\"<>&", "Übergrößen ☂ & co", "\x00<\ud800>"]


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_html_text_escapes_as_markupsafe(text: str) -> None:
    assert html_text(text) == str(escape(text))
    assert html_text(Markup(text)) == text  # noqa: S704 - already HTML: kept, as escape keeps it


def test_html_text_escapes_as_markupsafe_for_random_text() -> None:
    alphabet = "ab &<>\"'#;é\n"
    texts = ["".join(random.Random(seed).choices(alphabet, k=seed % 40)) for seed in range(500)]
    assert [html_text(text) for text in texts] == [str(escape(text)) for text in texts]


def columns_with(type_formatters: dict[type, Any]) -> ViewColumns:
    return ViewColumns(
        list=(),
        export=(),
        relations=frozenset(),
        searchable=(),
        sortable=frozenset(),
        default_sort=("id", False),
        labels={},
        list_formatters={},
        type_formatters=type_formatters,
    )


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -42,
    12_345_678_901,
    1.5,
    Decimal("1234.50"),
    Decimal("-0.10"),
    datetime(2026, 11, 7, 6, 40, tzinfo=UTC),
    date(2026, 11, 7),
    *AWKWARD_TEXTS,
    Markup("<i>kept</i>"),
    Shade.DARK,
    Level.HIGH,
    ProductStatus.ACTIVE,
]


@pytest.mark.parametrize(
    "type_formatters",
    [
        {},
        {type(None): lambda value: Markup(""), bool: lambda value: Markup("<i>%s</i>") % value},
        {
            int: lambda value: f"#{value}&",
            str: lambda value: value.upper(),
            Decimal: lambda value: f"{value}<",
        },
    ],
)
def test_a_plain_cell_is_the_escaped_shown_value(type_formatters: dict[type, Any]) -> None:
    # The cell as the list wrote it before: an enum's value through `shown_value`, escaped.
    columns = columns_with(type_formatters)
    for value in [*VALUES, *VALUES]:  # twice: the writers chosen on first use are reused
        shown = columns.shown_value(value.value if isinstance(value, enum.Enum) else value)
        assert columns.cell_html(value) == str(escape(shown)), value
