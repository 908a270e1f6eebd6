from __future__ import annotations

import html
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import Customer, Product, Category, Tag, User
from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import page_token
from tests.factories import make_customer, make_product, make_user, make_category, make_tag

BASE = "http://testserver"


async def test_probe(session: AsyncSession, new_client) -> None:
    sup = await new_client(superuser=True)
    p = await make_product(session, name="Orig")
    await session.commit()
    pid = p.id
    path = f"/admin/product/edit/{pid}"
    form = as_post_data(submitted_form((await sup.get(path)).text, BASE + path))
    print("form keys", list(form))
    base = dict(form)
    # mass assignment
    extra = {**base, "name": ["Changed"], "id": ["999999"], "version": ["77"], "deleted_at": ["2020-01-01T00:00:00"],
             "created_at": ["2001-01-01T00:00:00"], "deleted_by_id": ["1"], "category_id": ["424242"]}
    r = await sup.post(path, data=extra)
    print("mass edit", r.status_code)
    session.expire_all()
    row = (await session.execute(select(Product.id, Product.name, Product.version, Product.deleted_at, Product.created_at, Product.category_id).where(Product.name == "Changed"))).all()
    print(row)
    # repeated fields / version garbage
    for v in (["abc"], ["99999999999999999999999"], ["-1"], ["2", "1"], ["1", "2"], [""], ["1.0"], ["٢"]):
        f = {**base, "name": ["X"], "_version": v}
        r = await sup.post(path, data=f)
        print("version", v, r.status_code, re.findall(r'alert[^>]*>(.*?)<', r.text, re.S)[:2])
    r = await sup.post(path, data={**base, "name": ["A", "B"], "_version": ["2"]})
    print("repeated name", r.status_code)
    # huge pk
    for pk in ("99999999999999999999", "9223372036854775808", "-1", "0", "1e3", "%20", "１"):
        r = await sup.get(f"/admin/product/edit/{pk}")
        r2 = await sup.post(f"/admin/product/edit/{pk}", data=base)
        print("pk", pk, r.status_code, r2.status_code)
    token = await page_token(sup)
    for q in ("", "1,,2", ",", "-1", "99999999999999999999", f"{pid}&pks=1", "a", " 1", "1 ", "+1", "0x1", ",".join(["1"] * 5000)):
        r = await sup.delete(f"/admin/product/delete?pks={q}", headers={"X-CSRF-Token": token})
        print("delete", q[:30], r.status_code, r.text[:80])
    # file upload in a text field
    files = {"name": ("x.txt", b"hello", "text/plain")}
    data = {k: v[0] for k, v in base.items() if k != "name"}
    r = await sup.post(path, data=data, files=files)
    print("file as name", r.status_code, r.text[:100] if r.status_code >= 500 else "")
    r = await sup.post("/admin/product/create", data=data, files=files)
    print("file as name create", r.status_code)
    # json
    r = await sup.post(path, json={"name": "J"}, headers={"X-CSRF-Token": token})
    print("json", r.status_code)
    r = await sup.post(path, content=b"name=Q", headers={"X-CSRF-Token": token, "content-type": "text/plain"})
    print("text/plain", r.status_code)
    r = await sup.post(path, content=b"--x\r\nbroken", headers={"X-CSRF-Token": token, "content-type": "multipart/form-data; boundary=x"})
    print("broken multipart", r.status_code)
    r = await sup.post(path, content=b"name=Q", headers={"X-CSRF-Token": token, "content-type": "multipart/form-data"})
    print("multipart no boundary", r.status_code)
