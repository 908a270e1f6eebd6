"""The CSV that PostgreSQL writes (csv_sql.py) is byte for byte the CSV the Python path writes.

Every exportable model, as an actor who sees personal data and one who does
not, over values chosen to break a hand-written CSV or formula check: quotes,
commas, line breaks, backslashes, formulas and their lookalikes, a quote
typed first, emoji, empty text, related keys with commas and quotes, prices
with and without cents, times with and without microseconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.models import Category, Customer, Order, Product
from backend.services import masking
from backend.services.exchange.exporting import _ExportPlan, export_file, export_headers, export_rows, started
from backend.services.exchange.writing import encode, spreadsheet_text
from backend.services.registry import declared_services
from tests.factories import make_category, make_customer, make_order, make_product, make_tag, unique

pytestmark = pytest.mark.postgres  # the database-written CSV is PostgreSQL's; SQLite takes the Python path

HOSTILE = [
    "plain",
    "",
    '=HYPERLINK("http://evil.example","click")',
    "+1 555",
    "-2",
    "@SUM(A1)",
    "'quoted first",
    "\ttab first",
    "\rreturn first",
    "\uff1dfullwidth equals",
    "\u200b=behind an invisible space",
    'a "quoted" word, and a comma',
    "two\r\nlines\nand\rmore",
    "back\\slash \\n not a newline",
    "emoji \U0001f600 and accents é",
    " leading space",
    "•••",
]


def everything(*extra: str) -> Actor:
    tables = [masking.table_of(model) for model in declared_services()]
    permissions = {f"{table}.{action}" for table in tables for action in ("view", "export", "view_pii")}
    return Actor(user_id=None, username="exporter", permissions=frozenset(permissions | set(extra)))


def without_personal_data() -> Actor:
    return Actor(
        user_id=None,
        username="exporter",
        permissions=frozenset(p for p in everything().permissions if not p.endswith(".view_pii")),
    )


async def by_python(uow: UnitOfWork, model: type[Any], **options: Any) -> bytes:
    rows = await started(export_rows(uow, model, **options))
    return b"".join([chunk async for chunk in encode("csv", export_headers(model, uow.actor), rows)])


async def by_database(uow: UnitOfWork, model: type[Any], **options: Any) -> bytes:
    chunks: AsyncIterator[bytes] = await export_file(uow, model, "csv", **options)
    return b"".join([chunk async for chunk in chunks])


async def hostile_store(session: AsyncSession) -> None:
    category = await make_category(session, name=HOSTILE[11], slug=unique("cat"))
    tags = [
        await make_tag(session, name=f"{unique('t')} {text}") for text in ("Red, blue", 'The "best"', "=x")
    ]
    for index, text in enumerate(HOSTILE):
        await make_product(
            session,
            name=text or "named",
            description=text,
            category_id=category.id,
            price=Decimal("10.00") if index % 2 else Decimal("7.5"),
            stock=index,
            tags=tags[: index % 4],
        )
    customer = await make_customer(session, name=HOSTILE[12], address=HOSTILE[2], phone="+44 20 7946 0000")
    order = await make_order(session, customer_id=customer.id)
    order.placed_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    other = await make_order(session, customer_id=customer.id)
    other.placed_at = datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC)
    await session.flush()
    await session.execute(update(Category).where(Category.id == category.id).values(name=HOSTILE[13]))


@pytest.mark.parametrize("who", [everything, without_personal_data], ids=["sees-pii", "masked"])
async def test_the_database_writes_the_same_csv_as_python_for_every_model(
    session: AsyncSession, settings: Settings, who: Any
) -> None:
    await hostile_store(session)
    uow = UnitOfWork(session, actor=who(), settings=settings, writes=False)
    compared = []
    for model in declared_services():
        if not uow.actor.has_perm(f"{masking.table_of(model)}.export"):
            continue
        if _ExportPlan.of(model, uow.actor).csv_statement is None:
            continue
        compared.append(model)
        assert await by_database(uow, model) == await by_python(uow, model), model.__name__
    assert {Product, Category, Customer, Order} <= set(compared)


async def test_flagged_rows_are_neutralised_and_plain_rows_kept(
    session: AsyncSession, settings: Settings
) -> None:
    await hostile_store(session)
    uow = UnitOfWork(session, actor=everything(), settings=settings, writes=False)
    text = (await by_database(uow, Product, criteria=[Product.description.in_(HOSTILE)])).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    descriptions = {row[3] for row in rows[1:]}
    assert descriptions == {spreadsheet_text(value) for value in HOSTILE}
    assert '\'=HYPERLINK("http://evil.example","click")' in descriptions
    assert "two\r\nlines\nand\rmore" in descriptions
    assert text.endswith("\r\n")


async def test_criteria_order_and_progress_apply(session: AsyncSession, settings: Settings) -> None:
    category = await make_category(session)
    made = [await make_product(session, category_id=category.id, name=f"n{index}") for index in range(7)]
    uow = UnitOfWork(session, actor=everything(), settings=settings, writes=False)
    told: list[int] = []
    data = await by_database(
        uow,
        Product,
        criteria=[Product.category_id == category.id],
        order_by=[Product.name.desc()],
        rows_done=told.append,
        batch=3,
    )
    names = [row[2] for row in csv.reader(io.StringIO(data.decode(), newline=""))][1:]
    assert names == [f"n{index}" for index in reversed(range(7))]
    assert told[-1] == len(made) and told == sorted(told)


async def test_an_empty_export_is_its_header_line(session: AsyncSession, settings: Settings) -> None:
    uow = UnitOfWork(session, actor=everything(), settings=settings, writes=False)
    data = await by_database(uow, Product, criteria=[Product.id < 0])
    assert data == await by_python(uow, Product, criteria=[Product.id < 0])


def test_the_mask_is_left_as_it_is_by_the_formula_rule() -> None:
    # The database does not flag masked cells for the check: this is why it need not.
    assert spreadsheet_text(masking.MASK) == masking.MASK
    assert not set(masking.MASK) & set(',"\r\n')  # nor does csv.writer quote it


async def test_a_flagged_row_with_a_cell_longer_than_a_csv_field_is_written_whole(
    session: AsyncSession, settings: Settings
) -> None:
    """The flagged row's cells come from the database as they are: nothing re-reads its CSV line, so
    the csv module's field limit (131,072 characters unless an import raised it) never applies."""
    category = await make_category(session)
    await make_product(session, name="=flagged", description="x" * 140_000, category_id=category.id)
    uow = UnitOfWork(session, actor=everything(), settings=settings, writes=False)
    limit = csv.field_size_limit(131_072)
    try:
        written = await by_database(uow, Product, criteria=[Product.category_id == category.id])
    finally:
        csv.field_size_limit(limit)
    assert written == await by_python(uow, Product, criteria=[Product.category_id == category.id])
    assert b"'=flagged" in written and b"x" * 140_000 in written


async def test_infinite_times_are_written_as_python_reads_them(
    session: AsyncSession, settings: Settings
) -> None:
    customer = await make_customer(session)
    later = await make_order(session, customer_id=customer.id)
    earlier = await make_order(session, customer_id=customer.id)
    for order, value in ((later, "'infinity'"), (earlier, "'-infinity'")):  # fixed literals, no input
        await session.execute(sql(f'UPDATE "order" SET placed_at = {value} WHERE id = :id'), {"id": order.id})
    uow = UnitOfWork(session, actor=everything(), settings=settings, writes=False)
    written = await by_database(uow, Order)
    assert written == await by_python(uow, Order)
    assert b"9999-12-31T23:59:59.999999+00:00" in written and b"0001-01-01T00:00:00+00:00" in written
