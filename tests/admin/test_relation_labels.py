"""A related record's label goes through the masking rule on every page, form, lookup and message.

Customer's label is its name; a model's label may well show personal data
(`Customer.__str__` made to show the email here). Then a role that may see
orders but not customers' personal data must never get the email: not on an
order's details or edit page, not from the customer lookup of the order form,
not in the list or the export, not in a message. (Files name a customer by id, never by a label:
its natural key, the email, is personal data.)
"""

from __future__ import annotations

import csv
import html
import io
import json
import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request

from admin import outcomes
from admin.views.base import ServiceModelView
from backend.auth.actor import Actor
from backend.models import Customer
from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_customer, make_order, make_role

EMAIL = "pia.private@example.com"
ORDER_CLERK = ["order.view", "order.change", "order.export", "customer.view"]
_DATA_JSON = re.compile(r'data-json="([^"]*)"')
EXPORT = "/admin/order/export/csv"


async def _clerk(new_client: ClientFactory, session: AsyncSession, *, pii: bool) -> httpx.AsyncClient:
    role = await make_role(session, permissions=[*ORDER_CLERK, *(["customer.view_pii"] if pii else [])])
    await session.commit()
    return await new_client(roles=[role.name])


async def _order_of_pia(session: AsyncSession) -> tuple[int, int]:
    customer = await make_customer(session, name="Pia Private", email=EMAIL)
    order = await make_order(session, customer_id=customer.id)
    await session.commit()
    return customer.id, order.id


async def _pages(client: httpx.AsyncClient, order_id: int) -> dict[str, str]:
    urls = [
        f"/admin/order/details/{order_id}",
        f"/admin/order/edit/{order_id}",
        "/admin/order/ajax/lookup?name=customer&term=Pia Priv",
        "/admin/order/list",
        EXPORT,
    ]
    pages = {}
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        pages[url] = response.text
    # The edit form sent back without its version: refused, and shown again from what was sent.
    path = f"/admin/order/edit/{order_id}"
    form = as_post_data(submitted_form((await client.get(path)).text, f"http://testserver{path}"))
    form.pop("_version")
    refused = await client.post(path, data=form)
    assert refused.status_code == 409, refused.text
    pages["edit form sent back"] = refused.text
    return pages


def _exported_customers(body: str) -> list[str]:
    return [row["Customer"] for row in csv.DictReader(io.StringIO(body))]


def _preselected_customer(page: str) -> list[dict[str, str]]:
    (data_json,) = _DATA_JSON.findall(page)
    found: list[dict[str, str]] = json.loads(html.unescape(data_json))
    return found


@pytest.mark.usefixtures("customer_label_with_email")
async def test_a_label_made_of_personal_data_is_never_shown_without_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    customer_id, order_id = await _order_of_pia(session)
    clerk = await _clerk(new_client, session, pii=False)
    neutral = f"customer {customer_id}"
    pages = await _pages(clerk, order_id)
    assert [url for url, body in pages.items() if EMAIL in html.unescape(body)] == []
    # The customer is on every page, by a label that shows nothing personal; in the export, by id.
    labelled = {url: body for url, body in pages.items() if url != EXPORT}
    assert [url for url, body in labelled.items() if neutral not in html.unescape(body)] == []
    assert _exported_customers(pages[EXPORT]) == [str(customer_id)]
    lookup = json.loads(pages["/admin/order/ajax/lookup?name=customer&term=Pia Priv"])
    assert lookup == {"results": [{"id": str(customer_id), "text": neutral}]}
    for page in (f"/admin/order/edit/{order_id}", "edit form sent back"):
        assert _preselected_customer(pages[page]) == [{"id": str(customer_id), "text": neutral}], page


@pytest.mark.usefixtures("customer_label_with_email")
async def test_the_same_label_is_shown_whole_with_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    customer_id, order_id = await _order_of_pia(session)
    clerk = await _clerk(new_client, session, pii=True)
    label = f"Pia Private <{EMAIL}>"
    pages = await _pages(clerk, order_id)
    for url, body in pages.items():
        if url != EXPORT:
            assert label in html.unescape(body), url
    assert _exported_customers(pages[EXPORT]) == [str(customer_id)]
    lookup = json.loads(pages["/admin/order/ajax/lookup?name=customer&term=Pia Priv"])
    assert lookup == {"results": [{"id": str(customer_id), "text": label}]}
    for page in (f"/admin/order/edit/{order_id}", "edit form sent back"):
        assert _preselected_customer(pages[page]) == [{"id": str(customer_id), "text": label}], page


@pytest.mark.usefixtures("customer_label_with_email")
async def test_a_message_names_the_record_as_its_reader_may_see_it(
    new_client: ClientFactory, session: AsyncSession, app: Starlette
) -> None:
    customer = await make_customer(session, name="Pia Private", email=EMAIL)
    role = await make_role(session, permissions=["customer.view", "customer.delete"])
    await session.commit()
    deleter = await new_client(roles=[role.name])
    token = await page_token(deleter)
    response = await deleter.delete(
        f"/admin/customer/delete?pks={customer.id}", headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200, response.text
    page = html.unescape((await deleter.get("/admin/customer/list")).text)
    assert f"Customer {customer.id} was moved to the trash" in page
    assert EMAIL not in page

    # The delete dialog's refusal ("Your roles do not allow you to delete …") names it the same way.
    view = next(v for v in app.state.admin.views if isinstance(v, ServiceModelView) and v.model is Customer)
    no_pii = Actor(user_id=1, username="clerk", permissions=frozenset({"customer.view"}))
    pii = Actor(user_id=2, username="manager", permissions=frozenset({"customer.view", "customer.view_pii"}))
    assert outcomes.record_label(_request_as(no_pii), view, customer) == f"Customer {customer.id}"
    assert EMAIL in outcomes.record_label(_request_as(pii), view, customer)


def _request_as(actor: Actor) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {"actor": actor}})


async def test_the_lookup_of_related_records_needs_their_view_permission(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """Searching customers from the order form is viewing customers (as Django's autocomplete rules)."""
    await _order_of_pia(session)
    role = await make_role(session, permissions=[p for p in ORDER_CLERK if p != "customer.view"])
    await session.commit()
    clerk = await new_client(roles=[role.name])
    response = await clerk.get("/admin/order/ajax/lookup?name=customer&term=Pia Priv")
    assert response.status_code == 403
    assert "customer.view" in response.text and "Pia" not in response.text
