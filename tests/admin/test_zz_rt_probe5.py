from __future__ import annotations

import re
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

import admin.app as admin_app
from admin.app import create_app
from admin.views import discover
from admin.views.accounts import UserAdmin
from admin.views.store import CustomerAdmin
from admin.views.base import ServiceModelView
from backend.models import Customer, User
from tests.admin.conftest import client_for, sign_in
from tests.factories import make_customer, make_user


class PlainCustomerAdmin(ServiceModelView, model=Customer):
    column_list: ClassVar = [Customer.id, Customer.name, Customer.email]


class PlainUserAdmin(ServiceModelView, model=User):
    column_list: ClassVar = [User.id, User.username]


async def test_probe(settings, database, session: AsyncSession, monkeypatch) -> None:
    swap = {CustomerAdmin: PlainCustomerAdmin, UserAdmin: PlainUserAdmin}
    views = [swap.get(v, v) for v in discover()]
    monkeypatch.setattr(admin_app, "discover", lambda: views)
    app = create_app(settings, database=database)
    cust = await make_customer(session, email="secret-pii@example.com")
    user = await make_user(session, is_superuser=True)
    await session.commit()
    c = client_for(app)
    assert (await sign_in(c, user.username)).status_code == 302
    for path in [f"/admin/customer/edit/{cust.id}", f"/admin/user/edit/{user.id}", "/admin/user/create"]:
        r = await c.get(path)
        print(path, r.status_code, "argon" in r.text)
        print(" fields:", re.findall(r'name="([^"]+)"', r.text))
