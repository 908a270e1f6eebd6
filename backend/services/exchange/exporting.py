"""A model's live rows as file cells, for one actor: masked, secrets left out, read fast.

The columns are the model's exchange fields (`fields.exchange_fields`), less
its secrets; personal data the actor may not see is exported as the masking
rule shows it everywhere else. A million rows are read as plain column values
in one streamed `SELECT` (no ORM objects), a related record's natural key
joined in; several references (a product's tags) are read with one more query
per batch of rows. Whether a column is shown or masked is decided once, not
per cell, and a masked value never leaves the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from inspect import isawaitable
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Enum,
    FromClause,
    Select,
    String,
    any_,
    bindparam,
    case,
    inspect,
    literal,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.actor import Actor
from backend.db.statistics import without_jit
from backend.db.uow import UnitOfWork
from backend.services import masking
from backend.services.exchange.csv_sql import (
    LINE_END,
    SqlCell,
    cell_text_sql,
    checked_line,
    csv_line_columns,
    key_list_sql,
)
from backend.services.exchange.fields import ExchangeField, cell_text, exchange_fields
from backend.services.exchange.reading_rows import Cell
from backend.services.exchange.writing import csv_header, encode

DEFAULT_BATCH = 5000
T = TypeVar("T")


def export_headers(model: type[Any], actor: Actor) -> list[str]:
    """The header row of `model`'s export (the fields' labels); needs `<table>.export`."""
    _require_export(model, actor)
    return [field.label for field in _exported_fields(model)]


async def export_rows(
    uow: UnitOfWork,
    model: type[Any],
    *,
    criteria: Iterable[ColumnElement[bool]] = (),
    order_by: Sequence[ColumnElement[Any]] = (),
    batch: int = DEFAULT_BATCH,
) -> AsyncIterator[list[Cell]]:
    """The cells of each live row of `model` matching `criteria`, in `order_by` order (default: id).

    Needs `<table>.export` (`PermissionDenied`). One cell per header of
    `export_headers`: text or None, a list of keys for several references.
    """
    _require_export(model, uow.actor)
    plan = _ExportPlan.of(model, uow.actor)
    stmt = plan.statement.where(*criteria).order_by(*(order_by or (model.__table__.c.id,)))
    # On the session's connection, in its transaction: plain rows, none of the ORM's result handling.
    connection = await uow.session.connection()
    result = await connection.stream(stmt.execution_options(yield_per=batch))
    try:
        async for rows in result.partitions():
            ids = [row[0] for row in rows]
            linked = [(field.position, await field.read(connection, ids)) for field in plan.many]
            for row in rows:
                cells = plan.cells(row)
                for position, keys in linked:
                    cells.insert(position, keys.get(row[0], []))
                yield cells
    finally:
        await result.close()


RowsDone = Callable[[int], Awaitable[None] | None]  # told how many rows are written so far


async def export_file(
    uow: UnitOfWork,
    model: type[Any],
    format: str,
    *,
    criteria: Iterable[ColumnElement[bool]] = (),
    order_by: Sequence[ColumnElement[Any]] = (),
    rows_done: RowsDone | None = None,
    batch: int = DEFAULT_BATCH,
) -> AsyncIterator[bytes]:
    """`model`'s live rows matching `criteria` as a file of `format`, headers first, in chunks of bytes.

    What the admin, the jobs and the CLI export. Needs `<table>.export`. The
    query has run and its first rows are read when this returns (`started`).
    A CSV file on PostgreSQL is written by the database (csv_sql.py), every
    other file from `export_rows` (writing.py); the bytes are the same.
    `rows_done` hears the count of rows written, a batch at a time.
    """
    headers = export_headers(model, uow.actor)
    ordering = list(order_by or (model.__table__.c.id,))
    plan = _ExportPlan.of(model, uow.actor)
    connection = await uow.session.connection()
    if format == "csv" and connection.dialect.name == "postgresql" and plan.csv_statement is not None:
        statement = plan.csv_statement.where(*criteria).order_by(*ordering)
        return await started(_csv_by_database(uow, statement, headers, rows_done, batch))
    rows = export_rows(uow, model, criteria=criteria, order_by=ordering, batch=batch)
    return encode(format, headers, await started(_counting(rows, rows_done, batch)))


async def _csv_by_database(
    uow: UnitOfWork,
    statement: Select[str, list[str | None]],
    headers: Sequence[str],
    rows_done: RowsDone | None,
    batch: int,
) -> AsyncIterator[bytes]:
    connection = await uow.session.connection()
    async with without_jit(uow.session):
        result = await connection.stream(statement.execution_options(yield_per=batch))
    try:
        head = csv_header(headers)
        done = 0
        async for rows in result.partitions():
            lines = [line if cells is None else checked_line(cells) for line, cells in rows]
            lines.append("")  # the last line's end
            yield head + LINE_END.join(lines).encode()
            head = b""
            done += len(rows)
            await _tell(rows_done, done)
        if head:
            yield head
        await _tell(rows_done, done)
    finally:
        await result.close()


async def _counting(
    rows: AsyncIterator[list[Cell]], rows_done: RowsDone | None, every: int
) -> AsyncIterator[list[Cell]]:
    done = 0
    async for row in rows:
        yield row
        done += 1
        if done % every == 0:
            await _tell(rows_done, done)
    await _tell(rows_done, done)


async def _tell(rows_done: RowsDone | None, done: int) -> None:
    if rows_done is not None:
        told = rows_done(done)
        if isawaitable(told):
            await told


async def started(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """`items` with the first one already read: a refusal or a failing query is raised here, before
    anything is written (a download not yet begun, a file not yet created), not half-way."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        empty = True
    else:
        empty = False

    async def chained() -> AsyncIterator[T]:
        if empty:
            return
        yield first
        async for item in items:
            yield item

    return chained()


def _require_export(model: type[Any], actor: Actor) -> None:
    actor.require(f"{masking.table_of(model)}.export")


def _exported_fields(model: type[Any]) -> list[ExchangeField]:
    secrets = masking.secret_fields(model)
    return [field for field in exchange_fields(model) if not {field.name, field.attribute} & secrets]


@dataclass(frozen=True)
class _ManyReferences:
    """A "references" field (a product's tags): each row's related keys, a batch of rows at a time."""

    position: int  # where its cell goes in a row
    statement: Select[Any]  # (row id, related key) over the link table, in key order
    row_id: ColumnElement[Any]  # the link table's column holding the row's id
    joined_sql: SqlCell  # the cell as text, for the row of the outer query (csv_sql.py)

    @classmethod
    def of(cls, model: type[Any], field: ExchangeField, position: int) -> _ManyReferences:
        relation: Any = inspect(model).relationships[field.attribute]
        ((own_id, row_id),) = relation.synchronize_pairs  # (product.id, product_tag.product_id)
        ((related_id, link_id),) = relation.secondary_synchronize_pairs  # (tag.id, product_tag.tag_id)
        key = related_id.table.c[field.target_key]
        links = relation.secondary.join(related_id.table, related_id == link_id)
        statement = select(row_id, key).select_from(links).order_by(row_id, key)
        joined_sql = SqlCell(
            select(key_list_sql(key))
            .select_from(links)
            .where(row_id == own_id)
            .correlate(own_id.table)  # the outer query's row, however deep this is placed
            .scalar_subquery()
        )
        return cls(position, statement, row_id, joined_sql)

    async def read(self, connection: AsyncConnection, ids: list[Any]) -> dict[Any, list[str]]:
        """Row id -> its related keys, for the rows `ids` (a row without any is left out)."""
        if connection.dialect.name == "postgresql":
            # One array parameter: `IN (...)` would compile a statement of thousands of parameters a batch.
            among = self.row_id == any_(bindparam("ids", ids, type_=ARRAY(self.row_id.type)))
        else:
            among = self.row_id.in_(ids)
        keys: dict[Any, list[str]] = {}
        for row_id, key in await connection.execute(self.statement.where(among)):
            keys.setdefault(row_id, []).append(str(cell_text(key)))
        return keys


@dataclass(frozen=True)
class _ExportPlan:
    """What to select for one model and actor, and how each selected value becomes a cell."""

    statement: Select[Any]  # the row's id first, then one column per single-valued field
    conversions: tuple[tuple[int, Callable[[Any], Cell]], ...]  # (index, how) of the values not yet text
    many: tuple[_ManyReferences, ...]  # in ascending position
    # (needs the formula check, CSV line) per row, written by PostgreSQL (csv_sql.py); None when a
    # column's text cannot be given there exactly as `fields.cell_text` gives it
    csv_statement: Select[str, list[str | None]] | None

    def cells(self, row: Sequence[Any]) -> list[Cell]:
        cells = list(row)
        for index, convert in self.conversions:
            cells[index] = convert(cells[index])
        return cells

    @classmethod
    def of(cls, model: type[Any], actor: Actor) -> _ExportPlan:
        table = model.__table__
        hidden = masking.hidden_fields(actor, masking.table_of(model))
        columns: list[ColumnElement[Any]] = []
        conversions: list[tuple[int, Callable[[Any], Cell]]] = []
        many: list[_ManyReferences] = []
        texts: list[SqlCell | None] = []  # each cell as SQL text, for csv_statement
        source: FromClause = table
        outer: list[FromClause] = [table]  # what the cells' LATERAL subquery refers to
        for position, field in enumerate(_exported_fields(model)):
            if field.kind == "references":
                many.append(_ManyReferences.of(model, field, position))
                texts.append(many[-1].joined_sql)
                continue
            column = table.c[field.attribute]
            if field.name in hidden:
                # The database answers the mask itself: the value is never read.
                mask = case((column.is_(None), null()), else_=literal(masking.MASK))
                columns.append(mask)
                # The mask is a constant the formula rule leaves as it is (test_csv_sql checks).
                texts.append(SqlCell(mask, quoted=False, checked=False))
                continue
            if field.kind == "reference" and field.target is not None and field.target_key != "id":
                # Aliased: a model may refer to itself (a category's parent).
                related = field.target.__table__.alias(f"{field.relationship}_related")
                source = source.outerjoin(related, related.c.id == column)
                outer.append(related)
                column = related.c[field.target_key]
            selected, convert = _as_text(column, joined=column.table is not table)
            if convert is not None:
                conversions.append((len(columns), convert))
            columns.append(selected)
            texts.append(cell_text_sql(column))
        live = [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []
        statement = select(*columns).select_from(source).where(*live)
        csv_statement: Select[str, list[str | None]] | None = None
        if texts and all(text is not None for text in texts):
            # Each cell's text once per row, in a LATERAL subquery that OFFSET 0 keeps the planner from
            # folding into the outer query: the line and the flag use each cell several times, and a
            # folded query would run the tags' subquery once per use.
            known = [text for text in texts if text is not None]
            labelled = [cell.text.label(f"cell_{index}") for index, cell in enumerate(known)]
            cells = select(*labelled).correlate(*outer).offset(0).lateral("cells")
            line, to_check = csv_line_columns(list(cells.c), known)
            csv_statement = select(line, to_check).select_from(source.join(cells, true())).where(*live)
        return cls(statement, tuple(conversions), tuple(many), csv_statement)


def _as_text(column: Any, *, joined: bool) -> tuple[ColumnElement[Any], Callable[[Any], Cell] | None]:
    """What to select for a column, and how its values become cell text (`fields.cell_text`): chosen
    once per column, the cheapest way that gives the same text (None: the values are text already)."""
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        if list(column.type.enums) == [cell_text(member) for member in column.type.enum_class]:
            # Stored as the members' values: the stored text is the cell, no enum object in between.
            return type_coerce(column, String()), None
        return column, cell_text
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str:
        return column, None
    if python_type in (int, Decimal) and not (joined or column.nullable):
        return column, str  # a number, never None: what cell_text does, without its checks
    return column, cell_text
