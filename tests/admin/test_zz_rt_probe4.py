from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import page_token, client_for, csrf_from
from tests.factories import make_product

BASE = "http://testserver"


async def test_probe(session: AsyncSession, new_client, app) -> None:
    sup = await new_client(superuser=True)
    p = await make_product(session, name="Orig")
    await session.commit()
    pid = p.id
    path = f"/admin/product/edit/{pid}"
    base = as_post_data(submitted_form((await sup.get(path)).text, BASE + path))
    data = {k: v[0] for k, v in base.items()}
    for field in ("name", "price", "category", "tags", "status", "_version", "description"):
        d = {**data, field: data.get(field, "1") + "\x00"}
        r = await sup.post(path, data=d, files={"dummy": ("", b"", "application/octet-stream")})
        print("nul multipart", field, r.status_code)
    r = await sup.post("/admin/product/create", data={**data, "sku": "A\x00"}, files={"dummy": ("", b"", "application/octet-stream")})
    print("nul create", r.status_code)
    anon = client_for(app)
    page = await anon.get("/admin/login")
    r = await anon.post("/admin/login", data={"username": "x\x00y", "password": "p", "csrf_token": csrf_from(page.text)}, files={"dummy": ("", b"", "application/octet-stream")})
    print("nul login", r.status_code)
    r = await sup.get("/admin/product/ajax/lookup?name=category&term=" + "a" * 6000)
    print("huge term", r.status_code)
