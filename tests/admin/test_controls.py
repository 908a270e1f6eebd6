"""A control that is shown must work: no link, button or menu entry leads to a 403 or a 404.

Also the words around them: readable column labels, a delete confirmation that
says what a delete does, menu groups only when something inside opens, and
error pages inside the admin layout that say what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx
import pytest
from sqladmin import ModelView
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.auth.permissions import BUILTIN_ROLES
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_order, make_role, make_tag, make_user

NO_PII_EDITOR = "customer-editor-without-pii"
ROLES = [*sorted(BUILTIN_ROLES), "superuser", NO_PII_EDITOR]
_TBODY = re.compile(r"<tbody>(.*?)</tbody>", re.DOTALL)
_HREF = re.compile(r'href="((?:https?://testserver)?/admin/[^"#]+)"')
_DELETE_URL = re.compile(r'data-url="((?:https?://testserver)?/admin/[^"]+/delete\?pks=[^"]+)"')
_CARD = re.compile(r'<div class="card-footer container">(.*?)</div>\s*</div>\s*</div>\s*</div>', re.DOTALL)


async def signed_in(new_client: ClientFactory, session: AsyncSession, role: str) -> httpx.AsyncClient:
    if role == "superuser":
        return await new_client(superuser=True)
    if role == NO_PII_EDITOR:
        await make_role(session, name=NO_PII_EDITOR, permissions=["customer.view", "customer.change"])
    return await new_client(roles=[role])


async def seed(session: AsyncSession) -> None:
    await make_order(session, items=2)
    await make_tag(session)
    await make_user(session, roles=["viewer"])
    await session.commit()


def model_identities(app: Starlette) -> list[str]:
    return [view.identity for view in app.state.admin.views if isinstance(view, ModelView)]


def links_in(fragment: str) -> list[str]:
    urls = {re.sub(r"^https?://testserver", "", url).replace("&amp;", "&") for url in _HREF.findall(fragment)}
    return sorted(urls)


async def assert_all_open(client: httpx.AsyncClient, urls: Sequence[str], where: str) -> None:
    for url in urls:
        response = await client.get(url)
        assert response.status_code not in (403, 404) and response.status_code < 500, (
            f"{where}: {url} -> {response.status_code}"
        )


@pytest.mark.parametrize("role", ROLES)
async def test_every_control_on_every_list_and_details_page_works(
    role: str, app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    await seed(session)
    client = await signed_in(new_client, session, role)
    token = await page_token(client)
    for identity in model_identities(app):
        listing = await client.get(f"/admin/{identity}/list")
        if listing.status_code == 403:
            continue
        assert listing.status_code == 200, (identity, listing.status_code)
        body = _TBODY.search(listing.text)
        assert body, identity
        row_links = links_in(body.group(1))  # view and edit icons, related records
        await assert_all_open(client, row_links, f"{role} on the {identity} list")
        delete_urls = _DELETE_URL.findall(body.group(1))
        for details in [url for url in row_links if f"/{identity}/details/" in url][:2]:
            page = (await client.get(details)).text
            table = page.split('id="modal-delete"')[0]
            await assert_all_open(client, links_in(table), f"{role} on {details}")
            delete_urls = [*_DELETE_URL.findall(table), *delete_urls]
        # One delete per list, from the page just read (a delete may take children with it).
        for url in delete_urls[:1]:
            response = await client.delete(url, headers={"X-CSRF-Token": token})
            assert response.status_code not in (403, 404) and response.status_code < 500, (
                f"{role}: DELETE {url} -> {response.status_code} {response.text[:200]}"
            )


async def test_a_role_that_cannot_see_personal_data_gets_no_customer_edit_controls(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    await seed(session)
    client = await signed_in(new_client, session, NO_PII_EDITOR)
    listing = await client.get("/admin/customer/list")
    assert listing.status_code == 200
    body = _TBODY.search(listing.text)
    assert body and 'aria-label="View"' in body.group(1)
    assert "/admin/customer/edit/" not in listing.text
    details_url = next(url for url in links_in(body.group(1)) if "/customer/details/" in url)
    details = await client.get(details_url)
    assert "/admin/customer/edit/" not in details.text
    refused = await client.get(details_url.replace("/details/", "/edit/"))
    assert refused.status_code == 403
    assert "Your roles do not allow you to edit this customer." in refused.text


async def test_related_records_are_links_only_when_they_open(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    order = await make_order(session)
    await make_role(session, name="orders-only", permissions=["order.view"])
    await session.commit()
    client = await new_client(roles=["orders-only"])
    listing = (await client.get("/admin/order/list")).text
    assert "/admin/customer/details/" not in listing  # the customer's name is shown as text
    details = (await client.get(f"/admin/order/details/{order.id}")).text
    assert "/admin/customer/details/" not in details
    manager = await new_client(roles=["manager"])
    assert "/admin/customer/details/" in (await manager.get("/admin/order/list")).text


async def test_columns_have_readable_labels(new_client: ClientFactory, session: AsyncSession) -> None:
    order = await make_order(session)
    await session.commit()
    manager = await new_client(roles=["manager"])
    listing = (await manager.get("/admin/order/list")).text
    assert "Placed at</a>" in listing and "placed_at</a>" not in listing
    details = (await manager.get(f"/admin/order/details/{order.id}")).text
    assert "<td>Placed at</td>" in details
    product = (await manager.get("/admin/product/list")).text
    assert re.search(r"<th>\s*SKU\s*</th>", product)
    root = await new_client(superuser=True)
    assert re.search(r"<th>\s*Superuser\s*</th>", (await root.get("/admin/user/list")).text)


async def test_the_delete_confirmation_says_it_moves_to_the_trash(new_client: ClientFactory) -> None:
    manager = await new_client(roles=["manager"])
    page = (await manager.get("/admin/product/list")).text
    modal = page[page.index('id="modal-delete"') :]
    assert "Move to the trash?" in modal and "restored from the Trash" in modal
    assert "permanently" not in page.lower()


def menu_groups(page: str) -> set[str]:
    return set(re.findall(r'data-sqladmin-menu-category="([^"]+)"', page))


async def test_menu_groups_show_only_when_something_inside_opens(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    await make_role(session, name="customers-only", permissions=["customer.view"])
    await session.commit()
    client = await new_client(roles=["customers-only"])
    page = (await client.get("/admin/customer/list")).text
    assert menu_groups(page) == {"Sales"}
    assert "/admin/order/list" not in page and "/admin/trash" not in page
    root = await new_client(superuser=True)
    assert menu_groups((await root.get("/admin/")).text) >= {"Catalog", "Sales", "Accounts", "Review"}


async def test_a_refusal_page_keeps_the_menu_and_names_the_permission(new_client: ClientFactory) -> None:
    viewer = await new_client(roles=["viewer"])
    response = await viewer.get("/admin/product/create")
    assert response.status_code == 403
    assert 'id="navbar-menu"' in response.text
    assert "You need the permission product.add to add products." in response.text
    trash = await viewer.get("/admin/trash")
    assert trash.status_code == 403
    assert "You need the permission trash.view to open the trash." in trash.text


async def test_a_missing_record_page_names_it(new_client: ClientFactory) -> None:
    manager = await new_client(roles=["manager"])
    response = await manager.get("/admin/customer/details/99999999")
    assert response.status_code == 404
    assert 'id="navbar-menu"' in response.text
    assert "No customer 99999999 exists." in response.text
    nowhere = await manager.get("/admin/no/such/page/here")
    assert nowhere.status_code == 404
    assert 'id="navbar-menu"' in nowhere.text and "There is no page at this address." in nowhere.text


async def test_an_error_page_shows_no_menu_before_sign_in(new_client: ClientFactory) -> None:
    anonymous = await new_client(signed_in=False)
    response = await anonymous.get("/admin/no/such/page/here")
    assert response.status_code == 404
    assert 'id="navbar-menu"' not in response.text
    assert "There is no page at this address." in response.text


async def test_a_bad_request_page_says_what_was_wrong(new_client: ClientFactory) -> None:
    manager = await new_client(roles=["manager"])
    response = await manager.get("/admin/product/list?sortBy=nonsense")
    assert response.status_code == 400
    assert 'id="navbar-menu"' in response.text
    assert 'id="error-message"' in response.text


async def test_head_asks_for_a_form_page_like_get(new_client: ClientFactory, session: AsyncSession) -> None:
    """HEAD is a GET without the body: it never runs the form's write branch (that answered 400)."""
    client = await new_client(superuser=True)
    tag = await make_tag(session)
    await session.commit()
    for url in ("/admin/tag/create", f"/admin/tag/edit/{tag.id}", "/admin/login"):
        response = await client.head(url)
        assert response.status_code == 200, (url, response.status_code)
