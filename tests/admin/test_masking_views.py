"""Personal data never reaches a role without `customer.view_pii`: pages, CSV, history, messages."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from admin.views.base import ServiceModelView
from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.services import masking
from backend.services.customers import CustomerService
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_role

EMAIL, PHONE, ADDRESS = "pia.private@example.com", "+44 20 7946 0999", "12 Hidden Lane, Leeds"
NEW_PHONE = "+44 20 7946 0998"
PRIVATE = (EMAIL, PHONE, ADDRESS, NEW_PHONE)
READER = ["audit.view", "customer.view", "customer.export", "customer.restore", "trash.view"]


async def _reader(new_client: ClientFactory, session: AsyncSession, *, pii: bool) -> httpx.AsyncClient:
    role = await make_role(session, permissions=[*READER, *(["customer.view_pii"] if pii else [])])
    await session.commit()
    return await new_client(roles=[role.name])


async def _customer_with_history(database: Database) -> int:
    async with unit_of_work(database, Actor.system("tests")) as uow:
        customers = CustomerService(uow)
        customer = await customers.create(
            {"name": "Pia Private", "email": EMAIL, "phone": PHONE, "address": ADDRESS}
        )
        await customers.update(customer.id, {"phone": NEW_PHONE})
        await uow.commit()
    return customer.id


async def _bodies(client: httpx.AsyncClient, customer_id: int) -> dict[str, str]:
    urls = [
        "/admin/audit-log",
        "/admin/audit-log?model=customer",
        "/admin/audit-log/export",
        f"/admin/audit-log/export?model=customer&object_id={customer_id}",
        f"/admin/history/customer/{customer_id}",
        "/admin/customer/list",
        f"/admin/customer/details/{customer_id}",
        "/admin/customer/export/csv",
    ]
    bodies = {}
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        bodies[url] = response.text
    return bodies


async def test_no_page_or_export_shows_personal_data_without_view_pii(
    new_client: ClientFactory, session: AsyncSession, database: Database
) -> None:
    customer_id = await _customer_with_history(database)
    reader = await _reader(new_client, session, pii=False)
    for url, body in (await _bodies(reader, customer_id)).items():
        assert "Pia Private" in body or url == "/admin/audit-log/export", url  # the record is there
        leaked = [value for value in PRIVATE if value in body]
        assert not leaked, (url, leaked)


async def test_the_same_pages_show_it_with_view_pii(
    new_client: ClientFactory, session: AsyncSession, database: Database
) -> None:
    customer_id = await _customer_with_history(database)
    reader = await _reader(new_client, session, pii=True)
    bodies = await _bodies(reader, customer_id)
    for url in ("/admin/audit-log?model=customer", f"/admin/history/customer/{customer_id}"):
        assert all(value in bodies[url] for value in PRIVATE), url
    assert all(
        value in bodies[f"/admin/audit-log/export?model=customer&object_id={customer_id}"]
        for value in PRIVATE
    )
    assert (
        EMAIL in bodies["/admin/customer/export/csv"]
        and ADDRESS in bodies[f"/admin/customer/details/{customer_id}"]
    )


async def test_a_restore_clash_does_not_repeat_a_masked_email(
    new_client: ClientFactory, session: AsyncSession, database: Database
) -> None:
    async with unit_of_work(database, Actor.system("tests")) as uow:
        customers = CustomerService(uow)
        old = await customers.create({"name": "Old Pia", "email": EMAIL})
        await customers.delete(old.id)
        await customers.create({"name": "New Pia", "email": EMAIL})
        await uow.commit()
    for pii in (False, True):
        client = await _reader(new_client, session, pii=pii)
        token = await page_token(client, "/admin/trash")
        response = await client.post(f"/admin/trash/customer/{old.id}/restore", data={"csrf_token": token})
        assert response.status_code == 303
        page = await client.get(response.headers["location"])
        if pii:
            assert f"A customer with the email {EMAIL} already exists." in page.text
        else:
            assert "Cannot restore this customer: A customer with this email already exists." in page.text
            assert EMAIL not in response.headers["location"] and EMAIL not in page.text


def _names(attributes: Any) -> set[str]:
    return {str(getattr(attribute, "key", attribute)) for attribute in attributes}


def test_every_view_masks_what_its_model_declares_sensitive(app: Starlette) -> None:
    """Every model view: a sensitive column shown in the list or details has a masking formatter,
    and none can be searched or sorted on (a search would tell who has which email)."""
    for view in app.state.admin.views:
        if not isinstance(view, ServiceModelView):
            continue
        sensitive = masking.sensitive_fields(masking.table_of(view.model))
        shown_in_list = sensitive & set(view.get_list_columns())
        shown_in_details = sensitive & set(view.get_details_columns())
        assert shown_in_list <= _names(view.column_formatters), view.name
        assert shown_in_details <= _names(view.column_formatters_detail), view.name
        assert not sensitive & _names(view.column_searchable_list), view.name
        assert not sensitive & _names(view.column_sortable_list), view.name
        for relation, ref in view.form_ajax_refs.items():
            target = getattr(view.model, relation).property.mapper.class_
            searched = _names(ref.get("fields", ()))
            assert not searched & masking.sensitive_fields(masking.table_of(target)), (view.name, relation)
