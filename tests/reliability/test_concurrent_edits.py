"""Parallel saves of one edit form: exactly one wins, on PostgreSQL and on SQLite.

Each test builds the app on an engine of its own over a committed, throwaway
database, so the parallel requests run on separate connections and really
race each other (the usual fixtures share one rolled-back connection).
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from admin.app import create_app
from backend.db.session import Database
from backend.models import AuditEntry, Product, ProductStatus, Tag
from tests.admin.conftest import client_for, csrf_from, sign_in
from tests.databases import make_settings, migrated_database
from tests.factories import make_product, make_tag, make_user

PARALLEL = 6


@dataclass
class Site:
    app: Starlette
    database: Database
    product_id: int
    tag_ids: list[int]

    @property
    def edit_url(self) -> str:
        return f"/admin/product/edit/{self.product_id}"


@pytest.fixture
async def site(fresh_url: str) -> AsyncIterator[Site]:
    settings = make_settings(fresh_url)
    async with migrated_database(settings) as uow:
        await make_user(uow.session, username="racer", is_superuser=True)
        tags = [await make_tag(uow.session) for _ in range(PARALLEL)]
        product = await make_product(uow.session, status=ProductStatus.ARCHIVED, price=Decimal("5.00"))
    product_id, tag_ids = product.id, [tag.id for tag in tags]
    database = Database(settings)  # the app's own engine and pool, disposed below
    try:
        yield Site(create_app(settings, database=database), database, product_id, tag_ids)
    finally:
        await database.dispose()


def _form(product: Product, csrf: str, **changes: str) -> dict[str, str]:
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": str(product.price),
        "stock": str(product.stock),
        "status": product.status.value,
        "category": str(product.category_id),
        "_version": str(product.version),
        "csrf_token": csrf,
        "save": "Save",
        **changes,
    }


async def _stored(site: Site) -> Product:
    async with site.database.sessions() as session:
        product = await session.get(Product, site.product_id)
        assert product is not None
        return product


async def _updates(site: Site) -> list[AuditEntry]:
    async with site.database.sessions() as session:
        stmt = select(AuditEntry).where(
            AuditEntry.model == "product",
            AuditEntry.object_id == str(site.product_id),
            AuditEntry.action == "update",
        )
        return list((await session.execute(stmt)).scalars())


async def _save_in_parallel(site: Site, changes: list[dict[str, str]]) -> list[httpx.Response]:
    """One signed-in user per change, each opens the form, then all save at once."""
    before = await _stored(site)
    clients = [client_for(site.app) for _ in changes]
    try:
        forms = []
        for client, change in zip(clients, changes, strict=True):
            assert (await sign_in(client, "racer")).status_code == 302
            page = await client.get(site.edit_url)
            forms.append(_form(before, csrf_from(page.text), **change))
        saves = (client.post(site.edit_url, data=form) for client, form in zip(clients, forms, strict=True))
        return list(await asyncio.gather(*saves))
    finally:
        for client in clients:
            await client.aclose()


def _the_one_saved(responses: list[httpx.Response]) -> int:
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [302] + [409] * (len(responses) - 1), statuses
    return next(n for n, response in enumerate(responses) if response.status_code == 302)


async def test_parallel_saves_of_one_version_save_exactly_one(site: Site) -> None:
    before = await _stored(site)

    responses = await _save_in_parallel(site, [{"name": f"Racer {n}"} for n in range(PARALLEL)])

    winner = _the_one_saved(responses)
    for n, response in enumerate(responses):
        if n != winner:
            # The refused user's input is kept, with a sentence saying why nothing was saved.
            assert f'value="Racer {n}"' in response.text
            assert "since you opened it" in html.unescape(response.text)
    after = await _stored(site)
    assert (after.name, after.version, after.status) == (
        f"Racer {winner}",
        before.version + 1,
        ProductStatus.ARCHIVED,
    )
    updates = await _updates(site)
    assert [entry.changes for entry in updates] == [{"name": [before.name, f"Racer {winner}"]}]


async def test_parallel_saves_that_only_change_tags_save_exactly_one(site: Site) -> None:
    """A change to a many-to-many collection alone goes through the version check too."""
    before = await _stored(site)

    responses = await _save_in_parallel(site, [{"tags": str(tag_id)} for tag_id in site.tag_ids])

    winner = _the_one_saved(responses)
    async with site.database.sessions() as session:
        stmt = select(Tag.id).join(Product.tags).where(Product.id == site.product_id)
        assert list((await session.execute(stmt)).scalars()) == [site.tag_ids[winner]]
    assert (await _stored(site)).version == before.version + 1
    assert len(await _updates(site)) == 1


async def test_parallel_saves_of_an_old_version_save_nothing(site: Site) -> None:
    before = await _stored(site)
    client = client_for(site.app)
    try:
        assert (await sign_in(client, "racer")).status_code == 302
        csrf = csrf_from((await client.get(site.edit_url)).text)
        first = await client.post(site.edit_url, data=_form(before, csrf, name="First"))
        assert first.status_code == 302
        late = (
            client.post(site.edit_url, data=_form(before, csrf, name=f"Late {n}")) for n in range(PARALLEL)
        )
        responses = await asyncio.gather(*late)
    finally:
        await client.aclose()

    assert [response.status_code for response in responses] == [409] * PARALLEL
    after = await _stored(site)
    assert (after.name, after.version) == ("First", before.version + 1)
    assert len(await _updates(site)) == 1
