"""A NUL character anywhere in a request is a 400 with a sentence, never a 500 or a cut-off export.

PostgreSQL refuses NUL in text; found by the parameter fuzzer (search, filters, ajax lookups,
audit-log filters, exports) and by hand (sign-in, create forms).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import Product, Tag
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_category, make_product

NUL_URLS = [
    "/admin/product/list?search=%00",
    "/admin/product/list?search=a%00b&category=1",
    "/admin/product/export/csv?search=%00",
    "/admin/audit-log?actor=%00",
    "/admin/audit-log/export?model=x%00",
    "/admin/trash?user=%00",
    "/admin/product/ajax/lookup?name=category&term=%00",
    "/admin/product/list?se%00arch=x",
    "/admin/product/details/1%00",
]


@pytest.mark.parametrize("url", NUL_URLS)
async def test_nul_in_a_url_is_a_bad_request(new_client: ClientFactory, url: str) -> None:
    client = await new_client(superuser=True)
    response = await client.get(url)
    assert response.status_code == 400, (url, response.status_code)
    assert "NUL character" in response.text


async def test_nul_at_sign_in_is_a_bad_request(new_client: ClientFactory) -> None:
    client = await new_client(signed_in=False)
    token = await page_token(client, "/admin/login")
    response = await client.post(
        "/admin/login", data={"username": "a\x00b", "password": "whatever-password", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "NUL character" in response.text


async def test_nul_in_a_multipart_form_is_a_field_error_and_writes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    token = await page_token(client, "/admin/tag/create")
    before = await session.scalar(select(func.count()).select_from(Tag))
    response = await client.post(
        "/admin/tag/create", files={"name": (None, "a\x00b"), "csrf_token": (None, token)}
    )
    assert response.status_code == 400
    assert "NUL character" in response.text
    assert await session.scalar(select(func.count()).select_from(Tag)) == before


async def test_nul_in_a_relationship_field_is_refused(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    category = await make_category(session)
    await session.commit()
    client = await new_client(superuser=True)
    token = await page_token(client, "/admin/product/create")
    fields = {
        "sku": "NUL-1",
        "name": "Nul",
        "price": "1.00",
        "stock": "1",
        "status": "active",
        "category": f"{category.id}\x00",
        "tags": "\x00",
        "csrf_token": token,
    }
    response = await client.post("/admin/product/create", files={k: (None, v) for k, v in fields.items()})
    assert 400 <= response.status_code < 500, response.status_code


async def test_nul_at_sign_in_in_a_multipart_form_is_a_bad_request(new_client: ClientFactory) -> None:
    """The sign-in form sent as multipart (as any form may be) with NUL: a 500 on PostgreSQL before."""
    client = await new_client(signed_in=False)
    token = await page_token(client, "/admin/login")
    fields = {"username": "a\x00b", "password": "whatever-password", "csrf_token": token}
    response = await client.post("/admin/login", files={k: (None, v) for k, v in fields.items()})
    assert response.status_code == 400
    assert "NUL character" in response.text


FILE_FIELDS = ["name", "price", "stock", "tags", "category", "csrf_token"]


@pytest.mark.parametrize("field", FILE_FIELDS)
async def test_a_file_in_a_form_field_is_a_bad_request_and_writes_nothing(
    new_client: ClientFactory, session: AsyncSession, field: str
) -> None:
    """No admin form takes a file; one sent in a text, number or select field was a 500."""
    category = await make_category(session)
    product = await make_product(session, name="Untouched", category=category)
    await session.commit()
    pk = product.id
    client = await new_client(superuser=True)
    token = await page_token(client, "/admin/product/create")
    fields = {
        "sku": "FILE-1",
        "name": "Sent",
        "price": "1.00",
        "stock": "1",
        "status": "active",
        "category": str(category.id),
        "_version": "1",
        "csrf_token": token,
        "save": "Save",
    }
    sent = {name: (None, value) for name, value in fields.items() if name != field}
    sent[field] = ("evil.txt", b"12", "text/plain")  # type: ignore[assignment]
    for path in ("/admin/product/create", f"/admin/product/edit/{pk}"):
        response = await client.post(path, files=sent)
        assert response.status_code == 400, (path, response.status_code)
        assert "takes no files" in response.text
    session.expire_all()
    assert await session.scalar(select(Product.name).where(Product.id == pk)) == "Untouched"
    assert await session.scalar(select(func.count()).where(Product.sku == "FILE-1")) == 0


async def test_a_form_body_over_the_forms_cap_is_refused_unread(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    token = await page_token(client, "/admin/tag/create")
    response = await client.post("/admin/tag/create", data={"csrf_token": token, "name": "x" * (1024 * 1024)})
    assert response.status_code == 413 and "larger than any form of this admin takes" in response.text


async def test_an_upload_without_a_session_is_held_to_the_small_forms_rules(
    new_client: ClientFactory,
) -> None:
    client = await new_client(signed_in=False)
    response = await client.post(
        "/admin/product/import/upload",
        data={"key": "sku"},
        files={"file": ("a.csv", b"SKU\nA\n", "text/csv")},
    )
    assert response.status_code == 400 and "takes no files" in response.text
