"""Random, hostile and huge input at the services and the admin forms: never a 500, never a partial write."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.models import Customer, Product
from backend.services.catalog import ProductService
from backend.services.customers import CustomerService
from tests.admin.conftest import ClientFactory, page_token
from tests.factories import make_category

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=400),
    st.sampled_from(
        ["", " ", "0", "-1", "1e309", "NaN", "=1+1", "'; DROP TABLE product;--", "\x00", "😀" * 80]
    ),
    st.lists(st.integers(), max_size=3),
)


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@FUZZ
@given(sku=anything, name=anything, price=anything, stock=anything, status=anything, tag_ids=anything)
async def test_product_service_refuses_cleanly(
    system_uow: UnitOfWork,
    session: AsyncSession,
    sku: Any,
    name: Any,
    price: Any,
    stock: Any,
    status: Any,
    tag_ids: Any,
) -> None:
    category = await make_category(session)
    before = await _count(session, Product)
    data = {
        "sku": sku,
        "name": name,
        "price": price,
        "stock": stock,
        "status": status,
        "tag_ids": tag_ids,
        "category_id": category.id,
    }
    try:
        await ProductService(system_uow).create(data)
    except AppError:
        assert await _count(session, Product) == before  # nothing half-written
    else:
        assert await _count(session, Product) == before + 1


@FUZZ
@given(
    product_id=anything, changes=st.dictionaries(st.sampled_from(["price", "stock", "sku", "name"]), anything)
)
async def test_product_updates_refuse_cleanly(
    system_uow: UnitOfWork, session: AsyncSession, product_id: Any, changes: dict[str, Any]
) -> None:
    with contextlib.suppress(AppError):  # refusing is fine; anything else fails the test
        await ProductService(system_uow).update(product_id, changes)


@FUZZ
@given(name=anything, email=anything, phone=anything, address=anything)
async def test_customer_service_refuses_cleanly(
    system_uow: UnitOfWork, session: AsyncSession, name: Any, email: Any, phone: Any, address: Any
) -> None:
    before = await _count(session, Customer)
    try:
        await CustomerService(system_uow).create(
            {"name": name, "email": email, "phone": phone, "address": address}
        )
    except AppError:
        assert await _count(session, Customer) == before


form_value = st.one_of(
    st.text(max_size=200),
    st.text(min_size=300, max_size=600),
    st.sampled_from(
        ["", "-1", "0", "1e309", "NaN", "99999999999999999999", "abc", "\x00", "=cmd|' /C calc'!A0"]
    ),
)


HTTP_FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.too_slow,
    ],
)


async def _client_for_all_examples(
    session: AsyncSession, new_client: ClientFactory, **kwargs: Any
) -> httpx.AsyncClient:
    """One signed-in client per test, reused by every hypothesis example (signing in is slow)."""
    client: httpx.AsyncClient | None = session.info.get("fuzz_client")
    if client is None:
        client = await new_client(**kwargs)
        session.info["fuzz_client"] = client
    return client


@HTTP_FUZZ
@given(
    sku=form_value,
    name=form_value,
    price=form_value,
    stock=form_value,
    status=form_value,
    category=form_value,
)
async def test_admin_product_form_never_fails_with_500(
    new_client: ClientFactory,
    session: AsyncSession,
    sku: str,
    name: str,
    price: str,
    stock: str,
    status: str,
    category: str,
) -> None:
    client = await _client_for_all_examples(session, new_client, roles=["editor"])
    before = await _count(session, Product)
    response = await client.post(
        "/admin/product/create",
        data={
            "sku": sku,
            "name": name,
            "price": price,
            "stock": stock,
            "status": status,
            "category": category,
            "save": "Save",
        },
        headers={"X-CSRF-Token": await page_token(client)},
    )
    assert response.status_code in {302, 400, 409}, response.text[:300]
    after = await _count(session, Product)
    assert after == before + (1 if response.status_code == 302 else 0)


@HTTP_FUZZ
@given(
    identifier=st.one_of(
        st.text(max_size=50), st.integers().map(str), st.sampled_from(["-1", "1e9", "%00", ".."])
    )
)
async def test_malformed_ids_in_urls_are_never_500(
    new_client: ClientFactory, session: AsyncSession, identifier: str
) -> None:
    client = await _client_for_all_examples(session, new_client, superuser=True)

    for path in ("product/details", "product/edit", "order/details", "history/product"):
        response = await client.get(f"/admin/{path}/{quote(identifier, safe='')}")
        assert response.status_code < 500, (path, identifier, response.status_code)
