from __future__ import annotations

import logging
from sqlalchemy.ext.asyncio import AsyncSession

from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import page_token
from tests.factories import make_product

BASE = "http://testserver"


async def test_probe(session: AsyncSession, new_client, caplog) -> None:
    sup = await new_client(superuser=True)
    p = await make_product(session, name="Orig")
    await session.commit()
    pid = p.id
    path = f"/admin/product/edit/{pid}"
    base = as_post_data(submitted_form((await sup.get(path)).text, BASE + path))
    token = await page_token(sup)
    data = {k: v[0] for k, v in base.items() if k != "name"}
    for field in ("name", "price", "stock", "status", "category", "tags", "_version", "csrf_token"):
        d = {k: v for k, v in data.items() if k != field}
        files = {field: ("x.txt", b"hello", "text/plain")}
        if field == "csrf_token":
            r = await sup.post(path, data=d, files=files)
        else:
            r = await sup.post(path, data=d, files=files)
        r2 = await sup.post("/admin/product/create", data=d, files=files)
        print("file as", field, r.status_code, r2.status_code)
    r = await sup.post(path, json={"name": "J"}, headers={"X-CSRF-Token": token})
    print("json", r.status_code)
    r = await sup.post(path, content=b"name=Q", headers={"X-CSRF-Token": token, "content-type": "text/plain"})
    print("text/plain", r.status_code)
    r = await sup.post(path, content=b"--x\r\nbroken", headers={"X-CSRF-Token": token, "content-type": "multipart/form-data; boundary=x"})
    print("broken multipart", r.status_code)
    r = await sup.post(path, content=b"name=Q", headers={"X-CSRF-Token": token, "content-type": "multipart/form-data"})
    print("multipart no boundary", r.status_code)
    r = await sup.post(path, data={k: v for k, v in base.items()}, headers={"content-type": "application/x-www-form-urlencoded; charset=utf-16"})
    print("utf16", r.status_code)
    r = await sup.post(path, content=b"name=%ff%fe&csrf_token=" + token.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    print("bad utf8", r.status_code)
    for rec in caplog.records:
        if rec.levelno >= logging.ERROR:
            print("LOG", rec.name, rec.getMessage()[:200], rec.exc_info and repr(rec.exc_info[1])[:300])
