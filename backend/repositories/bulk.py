"""Bulk writes: PostgreSQL COPY for generated rows; set-based INSERTs of objects the services built."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, Column, Dialect, Integer, Table, any_, bindparam, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import MANYTOONE, Mapper
from sqlalchemy.orm.attributes import set_committed_value

from backend.db import audit
from backend.models import AuditEntry


async def bulk_insert(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` in the session's transaction.

    On PostgreSQL this is COPY through asyncpg, the fastest path there is (each
    value bound as the column's type binds it: JSON serialised, an enum by its
    value); on SQLite an executemany INSERT. No ORM objects are built, so no ORM
    events fire: callers write rows that need none (generated data, link-table
    rows, audit entries they made themselves).
    """
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is None:
            raise RuntimeError("no driver connection for COPY")
        records = _bound(connection.dialect, table, columns, rows)
        try:
            await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _as_integrity_error(exc, f"COPY {table.name}") from exc
        return
    await connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def _as_integrity_error(error: Exception, statement: str) -> IntegrityError:
    """A driver's constraint error, raised where SQLAlchemy does not translate it (COPY goes to asyncpg
    directly), as the `IntegrityError` a statement would have raised: the callers' savepoints and
    messages (backend/db/integrity.py) read the driver's error as its cause."""
    original = Exception(str(error))
    original.__cause__ = error
    return IntegrityError(statement, None, original)


def _bound(
    dialect: Dialect, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> Sequence[tuple[Any, ...]]:
    processors = [
        (index, process)
        for index, name in enumerate(columns)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if not processors:
        return rows
    # Only the columns that need it are bound (an audit entry's changes, a status): a generator over
    # every value of every row cost more than the binding itself.
    bound = []
    for row in rows:
        values = list(row)
        for index, process in processors:
            values[index] = process(values[index])
        bound.append(tuple(values))
    return bound


async def insert_built(session: AsyncSession, objects: Sequence[Any]) -> list[Any]:
    """Insert new objects of one model, as a flush would, with one multi-row INSERT a shape of row.

    For an import's batch of objects its service built (`build`, rules and
    all): the ORM's unit of work spends about 0.2 ms an object on what is here
    one `INSERT ... RETURNING` for the rows, one INSERT for their many-to-many
    links and one for their audit entries (`audit.inserted_entries`, the
    entries the flush would have written). Each object gets its columns as
    inserted (id, defaults) but stays out of the session: the caller reads its
    id, nothing more. An object this cannot write the same way (already in a
    session, or holding a related object not yet inserted, or children of its
    own) is returned for the caller to add to the session instead. A constraint
    failure raises `IntegrityError`, as a flush does.
    """
    if not objects:
        return []
    mapper: Mapper[Any] = inspect(type(objects[0]))
    if not isinstance(mapper.local_table, Table) or mapper.inherits is not None:
        return list(objects)
    table: Table = mapper.local_table
    shapes: dict[tuple[str, ...], list[tuple[Any, dict[str, Any]]]] = {}
    left: list[Any] = []
    for obj in objects:
        values = _row_values(mapper, obj)
        if values is None:
            left.append(obj)
        else:
            shapes.setdefault(tuple(values), []).append((obj, values))
    written: list[Any] = []
    for group in shapes.values():
        statement = insert(table).returning(*table.c, sort_by_parameter_order=True)
        result = await session.execute(statement, [values for _obj, values in group])
        keys = [mapper.get_property_by_column(column).key for column in table.c]
        for (obj, values), row in zip(group, result, strict=True):
            for column, key, value in zip(table.c, keys, row, strict=True):
                if column.key not in values:  # the id and the defaults; what was set stays as set,
                    set_committed_value(obj, key, value)  # as after a flush
            written.append(obj)
    await _insert_links(session, mapper, written)
    entries = audit.inserted_entries(session.sync_session, written)
    if entries:
        await session.execute(insert(AuditEntry.__table__), entries)  # type: ignore[arg-type]  # mapped Table
    return left


def _row_values(mapper: Mapper[Any], obj: Any) -> dict[str, Any] | None:
    """The column values a flush would insert for `obj` (those it sets), or None when it cannot be
    inserted on its own: in a session already, or naming a related object that has no id yet."""
    state = inspect(obj)
    if state.session_id is not None or state.key is not None:
        return None
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        if prop.key in state.dict and len(prop.columns) == 1:
            column, value = prop.columns[0], state.dict[prop.key]
            if value is None and (column.default is not None or column.server_default is not None):
                continue  # as a flush does: None given for a column with a default takes the default
            values[column.key] = value
    for relationship in mapper.relationships:
        if relationship.key not in state.dict:
            continue
        value = state.dict[relationship.key]
        related = list(value) if relationship.uselist else [] if value is None else [value]
        if any(inspect(item).key is None for item in related):
            return None
        if relationship.direction is MANYTOONE and value is not None:
            for local, remote in relationship.local_remote_pairs:
                remote_key = relationship.mapper.get_property_by_column(remote).key
                values[str(local.key)] = getattr(value, remote_key)
        elif relationship.secondary is None and related:
            return None  # children of its own (an order's items): the flush orders those writes
    return values


async def insert_values(
    session: AsyncSession,
    model: type[Any],
    rows: Sequence[dict[str, Any]],
    related: Sequence[dict[str, list[Any]]],
) -> list[dict[str, Any]]:
    """Insert new rows of `model` from their column values, audited, with no ORM object at all.

    For an import's batch of new records its service checked in bulk
    (`references.check_new`): `rows` are column values, `related` the records
    each row's many-to-many collections (relationship key -> records) hold.
    On PostgreSQL the rows go by COPY (ids drawn from their sequence first, what
    the server filled read back), elsewhere by a multi-row `INSERT ... RETURNING`
    a shape of row; then the link rows and the audit entries. Returns the rows as inserted (every
    column: the id, the defaults), in the order given. A constraint failure
    raises `IntegrityError`, as a flush does.
    """
    if not rows:
        return []
    mapper: Mapper[Any] = inspect(model)
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    inserted: list[dict[str, Any] | None] = [None] * len(rows)
    shapes: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    # As a flush does: None given for a column with a default takes the default.
    defaulted = {
        column.key for column in table.c if column.default is not None or column.server_default is not None
    }
    for index, row in enumerate(rows):
        values = {key: value for key, value in row.items() if value is not None or key not in defaulted}
        shapes.setdefault(tuple(values), []).append((index, values))
    connection = await session.connection()
    for shape, group in shapes.items():
        # Back come only the columns the database filled (the id, server defaults): as after a flush,
        # what was given stays as given.
        filled = [column for column in table.c if column.key not in shape]
        if connection.dialect.name == "postgresql" and _copyable(table, filled):
            returned_rows = await _copy_rows(session, table, filled, [values for _index, values in group])
        else:
            statement = insert(table).returning(*filled, sort_by_parameter_order=True)
            result = await session.execute(statement, [values for _index, values in group])
            returned_rows = [dict(returned._mapping) for returned in result]
        for (index, values), returned in zip(group, returned_rows, strict=True):
            inserted[index] = {**values, **returned}
    written = [row for row in inserted if row is not None]
    await _insert_link_rows(
        session, mapper, [(row.get, held) for row, held in zip(written, related, strict=True)]
    )
    entries = audit.inserted_row_entries(session.sync_session, model, written, related)
    if entries:
        audit_table: Table = AuditEntry.__table__  # type: ignore[assignment]  # mapped Table
        columns = list(entries[0])
        await bulk_insert(
            session, audit_table, columns, [tuple(entry[name] for name in columns) for entry in entries]
        )
    return written


def _copyable(table: Table, filled: Sequence[Column[Any]]) -> bool:
    """Whether COPY can write these rows: one integer key drawn from a sequence, and every other column
    not given filled by the database itself (a Python-side default, which COPY would not run, must have
    a server default beside it, as the timestamps do)."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or keys[0] not in filled or not isinstance(keys[0].type, Integer):
        return False
    return all(column.default is None or column.server_default is not None for column in filled)


async def _copy_rows(
    session: AsyncSession, table: Table, filled: Sequence[Column[Any]], rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert `rows` with COPY (PostgreSQL): their ids drawn from the key's sequence first, then what the
    server filled read back by id. In the caller's transaction; a refusal is an `IntegrityError`."""
    key = next(iter(table.primary_key.columns))
    sequence = func.pg_get_serial_sequence(table.name, key.name)
    drawn = await session.execute(
        select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
    )
    ids = [id_ for (id_,) in drawn]
    columns = [key.key, *rows[0]]
    await bulk_insert(
        session, table, columns, [(id_, *row.values()) for id_, row in zip(ids, rows, strict=True)]
    )
    others = [column for column in filled if column is not key]
    if not others:
        return [{key.key: id_} for id_ in ids]
    found = {
        row[0]: dict(zip([column.key for column in others], row[1:], strict=True))
        for row in await session.execute(
            select(key, *others).where(key == any_(bindparam(None, ids, type_=ARRAY(key.type))))
        )
    }
    return [{key.key: id_, **found[id_]} for id_ in ids]


async def _insert_links(session: AsyncSession, mapper: Mapper[Any], objects: Sequence[Any]) -> None:
    """The rows of the link tables (product_tag) for the many-to-many collections `objects` hold."""
    owners = [
        (
            partial(_attribute_of_column, mapper, obj),
            {key: inspect(obj).dict.get(key) or [] for key in _linked(mapper)},
        )
        for obj in objects
    ]
    await _insert_link_rows(session, mapper, owners)


def _attribute_of_column(mapper: Mapper[Any], obj: Any, column_key: str) -> Any:
    return getattr(obj, mapper.get_property_by_column(mapper.local_table.c[column_key]).key)


def _linked(mapper: Mapper[Any]) -> list[str]:
    return [
        relationship.key for relationship in mapper.relationships if isinstance(relationship.secondary, Table)
    ]


async def _insert_link_rows(
    session: AsyncSession,
    mapper: Mapper[Any],
    owners: Sequence[tuple[Callable[[str], Any], Mapping[str, Any]]],
) -> None:
    """The link-table rows for owners given as (their column value by column key, relationship key ->
    the records its collection holds)."""
    for relationship in mapper.relationships:
        secondary = relationship.secondary
        if secondary is None or not isinstance(secondary, Table):
            continue
        own = [(str(link.key), str(column.key)) for column, link in relationship.synchronize_pairs]
        other = [
            (str(link.key), relationship.mapper.get_property_by_column(column).key)
            for column, link in relationship.secondary_synchronize_pairs or ()
        ]
        columns = [link for link, _key in own] + [link for link, _key in other]
        rows: list[tuple[Any, ...]] = []
        for value_of, held in owners:
            related_records = held.get(relationship.key)
            if not related_records:
                continue
            owner = tuple(value_of(key) for _link, key in own)
            rows.extend(
                owner + tuple(getattr(related, key) for _link, key in other) for related in related_records
            )
        if rows:
            await bulk_insert(session, secondary, columns, rows)
