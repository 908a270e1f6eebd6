"""Export, then import of the same file, changes nothing: also for names holding the list separator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.models import AuditEntry, Product
from backend.services.exchange.exporting import export_headers, export_rows
from backend.services.exchange.fields import join_keys, split_keys
from backend.services.exchange.importing import confirm_import, preview_import
from backend.services.exchange.reading import ImportLimits, read_table
from backend.services.exchange.writing import encode
from tests.factories import make_category, make_product, make_tag, unique

LIMITS = ImportLimits(max_bytes=2**20, max_rows=1000, max_cell_chars=1000)


def test_keys_holding_a_comma_or_a_quote_are_quoted_and_split_back() -> None:
    assert join_keys(["new", "sale"]) == "new, sale"
    assert join_keys(["Red, blue", "green"]) == '"Red, blue", green'
    assert join_keys(['5" screen']) == '"5"" screen"'
    assert split_keys('"Red, blue", green') == ["Red, blue", "green"]
    assert split_keys('"5"" screen",,  plain ') == ['5" screen', "plain"]


def test_cells_typed_by_a_person_split_as_before() -> None:
    assert split_keys("new,sale , eco") == ["new", "sale", "eco"]
    assert split_keys('5" screen, red') == ['5" screen', "red"]  # a quote after the start is text
    assert split_keys('"unclosed, red') == ['"unclosed', "red"]  # no closing quote: taken as written
    assert split_keys("") == [] and split_keys(" , ") == []


@given(st.lists(st.text(min_size=1).map(str.strip).filter(bool), max_size=5))
def test_any_keys_survive_join_then_split(keys: list[str]) -> None:
    assert split_keys(join_keys(keys)) == keys


async def _file(uow: UnitOfWork, format: str) -> bytes:
    headers = export_headers(Product, uow.actor)

    async def rows() -> AsyncIterator[list[object]]:
        async for row in export_rows(uow, Product, criteria=[Product.sku.like("COMMA-%")]):
            yield row

    return b"".join([chunk async for chunk in encode(format, headers, rows())])  # type: ignore[arg-type]


async def _tags(session: AsyncSession) -> dict[str, list[str]]:
    stmt = select(Product).where(Product.sku.like("COMMA-%")).options(selectinload(Product.tags))
    products = (await session.execute(stmt.execution_options(populate_existing=True))).scalars()
    return {product.sku: sorted(tag.name for tag in product.tags) for product in products}


@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
async def test_tags_named_with_commas_and_quotes_round_trip(
    session: AsyncSession, settings: Settings, format: str
) -> None:
    category = await make_category(session, slug=unique("garden-"))
    red_blue = await make_tag(session, name=unique("Red, blue "))
    quoted = await make_tag(session, name=unique('The "best", '))
    green = await make_tag(session, name=unique("green-"))
    for tags in ([red_blue, quoted, green], [red_blue]):
        await make_product(session, sku=unique("COMMA-"), category_id=category.id, tags=tags)
    before = await _tags(session)
    uow = UnitOfWork(session, actor=Actor.system("tests"), settings=settings)

    data = await _file(uow, format)
    table = read_table(data, filename=f"products.{format}", limits=LIMITS)
    preview = await preview_import(uow, Product, table, file_name="p", file_hash="h")
    assert [row.status for row in preview.rows] == ["unchanged", "unchanged"], preview.rows
    entries = await session.scalar(select(func.count()).select_from(AuditEntry))
    report = await confirm_import(uow, Product, table, file_name="p", file_hash="h")

    assert report.written and report.totals["unchanged"] == 2
    assert await _tags(session) == before
    # Only the entry that says the file was imported: no row was written.
    assert await session.scalar(select(func.count()).select_from(AuditEntry)) == (entries or 0) + 1
