"""A record's details page and edit form: the row and its related records come in one statement,
whatever the record holds, and the page still shows them all, in order."""

from __future__ import annotations

import html
import json
import re

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.models import Product
from tests.admin.conftest import ClientFactory
from tests.admin.test_store_views import counting_statements
from tests.factories import make_category, make_customer, make_order, make_tag, unique

_FROM_PRODUCT = re.compile(r"\bFROM product\b(?!_)", re.IGNORECASE)
_FROM_ORDER = re.compile(r'\bFROM "order"', re.IGNORECASE)
# The session check (one SELECT), then the record with every related record the page shows.
PAGE_STATEMENTS = 2


async def _product_with_tags(session: AsyncSession, tag_names: list[str]) -> tuple[Product, str]:
    """A new product with tags of these names, and its category's name."""
    category = await make_category(session, name=unique("Shelf "))
    tags = [await make_tag(session, name=name) for name in tag_names]
    product = Product(sku=unique("SKU-"), name=unique("Tagged "), price=1, category_id=category.id, tags=tags)
    session.add(product)
    await session.commit()
    return product, category.name


async def test_details_page_loads_a_product_its_category_and_tags_in_one_statement(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["viewer"])
    counts = {}
    for tag_names in ([], [unique("zeta-"), unique("alpha-"), unique("mid-")]):
        product, category_name = await _product_with_tags(session, tag_names)
        path = f"/admin/product/details/{product.id}"
        assert (await client.get(path)).status_code == 200  # a session stamp that is due is written here
        with counting_statements(engine) as statements:
            page = await client.get(path)
        assert page.status_code == 200 and category_name in page.text
        product_reads = [s for s in statements if _FROM_PRODUCT.search(s)]
        assert len(product_reads) == 1, statements
        counts[len(tag_names)] = len(statements)
        shown = [page.text.index(name) for name in sorted(tag_names)]
        assert shown == sorted(shown), "tags are listed by name"
    assert counts == {0: PAGE_STATEMENTS, 3: PAGE_STATEMENTS}, counts


async def test_edit_form_loads_a_product_and_its_form_relations_in_one_statement(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=["editor"])
    tag_names = [unique("bolt-"), unique("anchor-")]
    product, category_name = await _product_with_tags(session, tag_names)
    path = f"/admin/product/edit/{product.id}"
    assert (await client.get(path)).status_code == 200
    with counting_statements(engine) as statements:
        page = await client.get(path)
    assert page.status_code == 200 and category_name in page.text
    assert len(statements) == PAGE_STATEMENTS, statements
    chosen = re.search(r'<select[^>]*data-json="([^"]*)"[^>]*id="tags"', page.text)
    assert chosen, "no tags field"
    assert [tag["text"] for tag in json.loads(html.unescape(chosen.group(1)))] == sorted(tag_names)


async def test_order_details_load_the_order_with_its_customer_in_one_statement(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    """The customer comes joined; the lines and their products, shown below, in one statement each."""
    client = await new_client(roles=["viewer"])
    customer = await make_customer(session, name=unique("Joined customer "))
    order = await make_order(session, customer_id=customer.id, items=2)
    await session.commit()
    path = f"/admin/order/details/{order.id}"
    assert (await client.get(path)).status_code == 200
    with counting_statements(engine) as statements:
        page = await client.get(path)
    assert page.status_code == 200 and customer.name in page.text
    assert len([s for s in statements if _FROM_ORDER.search(s)]) == 1, statements
    assert len(statements) == PAGE_STATEMENTS + 2, statements
