"""Reverting from a record's history page, over HTTP, as the roles that may and may not."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.models import AuditEntry, Product
from backend.services.catalog import ProductService
from backend.services.customers import CustomerService
from tests.admin.conftest import ClientFactory, csrf_from
from tests.factories import make_category, make_role


async def _entry_ids(session: AsyncSession, table: str, pk: int) -> list[int]:
    stmt = select(AuditEntry.id).where(AuditEntry.model == table, AuditEntry.object_id == str(pk))
    return list((await session.execute(stmt.order_by(AuditEntry.id))).scalars())


async def _edited_product(session: AsyncSession, settings: Settings) -> tuple[Product, int]:
    """A product created as "Kettle" at 10.00 and then edited; the id of its first version."""
    uow = UnitOfWork(session, actor=Actor.system("tests"), settings=settings)
    category = await make_category(session, name="Kettles")
    service = ProductService(uow)
    product = await service.create(
        {"sku": "HTTP-1", "name": "Kettle", "price": "10.00", "category_id": category.id}
    )
    await service.update(product.id, {"name": "Steel kettle", "price": "12.50"})
    await session.commit()
    return product, (await _entry_ids(session, "product", product.id))[0]


def _version(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no version on the page"
    return match.group(1)


async def _confirm(client: httpx.AsyncClient, url: str) -> httpx.Response:
    page = await client.get(url)
    assert page.status_code == 200, page.text
    return await client.post(url, data={"csrf_token": csrf_from(page.text), "version": _version(page.text)})


async def test_manager_reverts_a_product_from_its_history(
    new_client: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    product, first = await _edited_product(session, settings)
    manager = await new_client(roles=["manager"])
    history = await manager.get(f"/admin/history/product/{product.id}")
    url = f"http://testserver/admin/history/product/{product.id}/revert/{first}"
    assert f'href="{url}"' in history.text
    assert history.text.count("revert-link") == 1  # the newest version is today's
    assert 'class="related-record"' in history.text and "Kettles" in history.text  # the category by label

    page = await manager.get(url)
    assert page.status_code == 200
    assert 'data-field="price"' in page.text and "12.50" in page.text and "10.00" in page.text
    assert 'data-field="category_id"' not in page.text  # unchanged fields are not listed
    done = await _confirm(manager, url)
    assert done.status_code == 303 and done.headers["location"].endswith(
        f"/admin/history/product/{product.id}"
    )
    after = (await manager.get(done.headers["location"])).text
    assert "was reverted to the state of" in after
    assert "history-revert" in after and "reverted to the state of" in after
    await session.refresh(product)
    assert (product.name, str(product.price)) == ("Kettle", "10.00")
    audit = await (await new_client(roles=["auditor"])).get("/admin/audit-log?action=revert")
    assert audit.status_code == 200 and "reverted to the state of" in audit.text


async def test_a_stale_confirmation_is_refused_with_the_usual_message(
    new_client: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    product, first = await _edited_product(session, settings)
    manager = await new_client(roles=["manager"])
    url = f"/admin/history/product/{product.id}/revert/{first}"
    page = await manager.get(url)
    edit = await manager.get(f"/admin/product/edit/{product.id}")
    assert edit.status_code == 200
    uow = UnitOfWork(session, actor=Actor.system("tests"), settings=settings)
    await ProductService(uow).update(product.id, {"stock": 7})
    await session.commit()
    refused = await manager.post(
        url, data={"csrf_token": csrf_from(page.text), "version": _version(page.text)}
    )
    assert refused.status_code == 303
    shown = await manager.get(refused.headers["location"])
    assert "since you opened it" in shown.text
    await session.refresh(product)
    assert product.name == "Steel kettle"


async def test_a_trashed_category_is_refused_and_nothing_is_offered_in_the_trash(
    new_client: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    product, first = await _edited_product(session, settings)
    uow = UnitOfWork(session, actor=Actor.system("tests"), settings=settings)
    old_category = product.category_id
    other = await make_category(session)
    await ProductService(uow).update(product.id, {"category_id": other.id})
    from backend.services.catalog import CategoryService

    await CategoryService(uow).delete(old_category)
    await session.commit()
    manager = await new_client(roles=["manager"])
    url = f"/admin/history/product/{product.id}/revert/{first}"
    page = await manager.get(url)
    assert page.status_code == 200 and "is in the trash now: restore it first" in page.text
    assert 'id="revert-form"' not in page.text
    token = csrf_from(page.text)
    refused = await manager.post(url, data={"csrf_token": token, "version": "999"})
    assert refused.status_code == 303  # a stale version is named first; either way nothing is written
    await ProductService(uow).delete(product.id)
    await session.commit()
    history = await manager.get(f"/admin/history/product/{product.id}")
    assert "revert-link" not in history.text and "restore it from the trash first" in history.text
    assert (await manager.get(url)).status_code == 409


async def test_who_may_not_revert_sees_no_button_and_gets_403(
    new_client: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    product, first = await _edited_product(session, settings)
    viewer = await new_client(roles=["viewer"])
    history = await viewer.get(f"/admin/history/product/{product.id}")
    assert history.status_code == 200 and "revert-link" not in history.text
    url = f"/admin/history/product/{product.id}/revert/{first}"
    assert (await viewer.get(url)).status_code == 403
    token = csrf_from(history.text)
    assert (await viewer.post(url, data={"csrf_token": token, "version": "1"})).status_code == 403
    manager = await new_client(roles=["manager"])
    assert (await manager.get(f"/admin/history/no_such/{product.id}/revert/{first}")).status_code == 404
    assert (
        await manager.get(f"/admin/history/product/{product.id + 10_000}/revert/{first}")
    ).status_code == 404
    assert (
        await manager.get(f"/admin/history/product/{product.id}/revert/{first + 10_000}")
    ).status_code == 404
    assert (await manager.get(f"/admin/history/product/{product.id}/revert/abc")).status_code == 404
    no_token = await manager.post(url, data={"version": "1"})
    assert no_token.status_code == 403
    await session.refresh(product)
    assert product.name == "Steel kettle"


async def test_masked_fields_are_neither_revealed_nor_reverted(
    new_client: ClientFactory, session: AsyncSession, settings: Settings
) -> None:
    uow = UnitOfWork(session, actor=Actor.system("tests"), settings=settings)
    customers = CustomerService(uow)
    customer = await customers.create({"name": "Pia", "email": "pia@example.com"})
    await customers.update(customer.id, {"name": "Pia B", "email": "pia.b@example.com"})
    role = await make_role(session, permissions=["customer.view", "customer.change"])
    await session.commit()
    first = (await _entry_ids(session, "customer", customer.id))[0]
    clerk = await new_client(roles=[role.name])
    url = f"/admin/history/customer/{customer.id}/revert/{first}"
    page = await clerk.get(url)
    assert page.status_code == 200 and "example.com" not in page.text
    assert 'data-field="email"' in page.text and "you may not see this field" in page.text
    done = await _confirm(clerk, url)
    assert done.status_code == 303
    await session.refresh(customer)
    assert (customer.name, customer.email) == ("Pia", "pia.b@example.com")
