from __future__ import annotations

import html
import re
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.app import create_app
from admin.views.base import ServiceModelView
from backend.models import Customer, Product, Category, Tag
from tests.admin.conftest import client_for, sign_in, page_token, csrf_from
from tests.factories import make_customer, make_product, make_user, make_category, make_tag


class PlainCustomerAdmin(ServiceModelView, model=Customer):
    name = "Plain customer"
    column_list: ClassVar = [Customer.id, Customer.name, Customer.email]


async def test_probe(settings, database, session: AsyncSession, new_client) -> None:
    import admin.app as admin_app
    from admin.views import discover
    from admin.views.store import CustomerAdmin
    views = [PlainCustomerAdmin if v is CustomerAdmin else v for v in discover()]
    orig = admin_app.discover
    admin_app.discover = lambda: views
    try:
        app = create_app(settings, database=database)
    finally:
        admin_app.discover = orig
    cust = await make_customer(session, email="secret-pii@example.com")
    from tests.factories import make_role
    role = await make_role(session, permissions=["customer.view", "customer.change", "customer.add"])
    user = await make_user(session, roles=[role.name])
    await session.commit()
    c = client_for(app)
    assert (await sign_in(c, user.username)).status_code == 302
    for path in [f"/admin/customer/edit/{cust.id}", "/admin/customer/create", f"/admin/customer/details/{cust.id}"]:
        r = await c.get(path)
        print(path, r.status_code, "secret-pii" in r.text)
        names = re.findall(r'name="([^"]+)"', r.text)
        print(" fields:", names)
    # action GET/HEAD
    sup = await new_client(superuser=True)
    for m in ("GET", "HEAD", "PUT"):
        r = await sup.request(m, "/admin/product/action/mark-active?pks=1")
        print("action", m, r.status_code)
    r = await sup.post("/admin/product/ajax/lookup?name=category&term=a", data={"csrf_token": await page_token(sup)})
    print("ajax POST", r.status_code)
