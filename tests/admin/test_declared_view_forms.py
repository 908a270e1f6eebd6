"""The form of a view declared as the README shows (columns only, no `form_columns`), attacked.

SQLAdmin's default form has a field for every attribute of the model. The
framework's own columns (timestamps, soft delete, version) and the policy's
secrets must never be form fields, and a form with personal data is not
opened by an actor who may not see it. The store's views all declare their
forms, so a columns-only view is put in their place here.
"""

from __future__ import annotations

import re
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

import admin.app
from admin.views import discover
from admin.views.accounts import UserAdmin
from admin.views.base import ServiceModelView
from admin.views.store import CustomerAdmin
from backend.config import Settings
from backend.db.session import Database
from backend.models import Customer, User
from tests.admin.conftest import client_for, csrf_from, sign_in
from tests.factories import make_customer, make_role, make_user

PERSONAL_EMAIL = "only-with-view-pii@example.com"
_FIELD = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"')
PAGE_FIELDS = frozenset({"csrf_token", "_version", "save"})


class ColumnsOnlyCustomerAdmin(ServiceModelView, model=Customer):
    column_list: ClassVar = [Customer.id, Customer.name, Customer.email]


class ColumnsOnlyUserAdmin(ServiceModelView, model=User):
    column_list: ClassVar = [User.id, User.username]


@pytest.fixture
def declared_app(settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch) -> Starlette:
    swap = {CustomerAdmin: ColumnsOnlyCustomerAdmin, UserAdmin: ColumnsOnlyUserAdmin}
    views = [swap.get(view, view) for view in discover()]
    monkeypatch.setattr(admin.app, "discover", lambda: views)
    return admin.app.create_app(settings, database=database)


async def _client(app: Starlette, session: AsyncSession, **user: object) -> httpx.AsyncClient:
    signed_in = await make_user(session, **user)  # type: ignore[arg-type]
    await session.commit()
    client = client_for(app)
    assert (await sign_in(client, signed_in.username)).status_code == 302
    return client


def _form_fields(page: str) -> set[str]:
    return set(_FIELD.findall(page)) - PAGE_FIELDS


async def test_a_columns_only_form_has_only_the_fields_a_user_sets(
    declared_app: Starlette, session: AsyncSession
) -> None:
    customer = await make_customer(session)
    client = await _client(declared_app, session, is_superuser=True)
    try:
        edit = await client.get(f"/admin/customer/edit/{customer.id}")
        create = await client.get("/admin/customer/create")
    finally:
        await client.aclose()

    assert edit.status_code == create.status_code == 200
    assert _form_fields(edit.text) == _form_fields(create.text) == {"name", "email", "phone", "address"}


async def test_a_columns_only_form_never_shows_a_secret_and_stays_usable(
    declared_app: Starlette, session: AsyncSession
) -> None:
    client = await _client(declared_app, session, is_superuser=True)
    user_id = (await session.scalars(select(User.id).order_by(User.id.desc()))).first()
    stored_hash = await session.scalar(select(User.password_hash).where(User.id == user_id))
    try:
        edit = await client.get(f"/admin/user/edit/{user_id}")
    finally:
        await client.aclose()

    # A secret is shown to nobody, superusers included: the form leaves it out rather than refuse everyone.
    assert edit.status_code == 200
    assert "password_hash" not in _form_fields(edit.text)
    assert stored_hash and stored_hash not in edit.text


async def test_a_columns_only_form_with_personal_data_is_not_opened_without_view_pii(
    declared_app: Starlette, session: AsyncSession
) -> None:
    customer = await make_customer(session, email=PERSONAL_EMAIL)
    role = await make_role(session, permissions=["customer.view", "customer.add", "customer.change"])
    client = await _client(declared_app, session, roles=[role.name])
    try:
        token = csrf_from((await client.get("/admin/logout")).text)
        pages = [
            await client.get(f"/admin/customer/edit/{customer.id}"),
            await client.get("/admin/customer/create"),
            await client.post(
                f"/admin/customer/edit/{customer.id}",
                data={"name": "Changed", "_version": "1", "csrf_token": token, "save": "Save"},
            ),
            await client.get("/admin/customer/list"),
        ]
    finally:
        await client.aclose()

    assert [page.status_code for page in pages] == [403, 403, 403, 200]
    for page in pages:
        assert PERSONAL_EMAIL not in page.text
    assert f"/admin/customer/edit/{customer.id}" not in pages[-1].text
