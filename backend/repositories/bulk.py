"""Bulk writes: PostgreSQL COPY for generated rows; set-based INSERTs of objects the services built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import MANYTOONE, Mapper
from sqlalchemy.orm.attributes import set_committed_value

from backend.db import audit
from backend.models import AuditEntry


async def bulk_insert(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` in the session's transaction.

    On PostgreSQL this is COPY through asyncpg, the fastest path there is; on
    SQLite an executemany INSERT. No ORM objects are built, so no ORM events fire:
    callers use it only for data generation (benchmarks, seeding).
    """
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is None:
            raise RuntimeError("no driver connection for COPY")
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
        return
    await connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


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


async def _insert_links(session: AsyncSession, mapper: Mapper[Any], objects: Sequence[Any]) -> None:
    """The rows of the link tables (product_tag) for the many-to-many collections `objects` hold."""
    for relationship in mapper.relationships:
        secondary = relationship.secondary
        if secondary is None or not isinstance(secondary, Table):
            continue
        own = [
            (str(link.key), mapper.get_property_by_column(column).key)
            for column, link in relationship.synchronize_pairs
        ]
        other = [
            (str(link.key), relationship.mapper.get_property_by_column(column).key)
            for column, link in relationship.secondary_synchronize_pairs or ()
        ]
        rows: list[dict[str, Any]] = []
        for obj in objects:
            for related in inspect(obj).dict.get(relationship.key) or ():
                row = {link: getattr(obj, key) for link, key in own}
                row.update((link, getattr(related, key)) for link, key in other)
                rows.append(row)
        if rows:
            await session.execute(insert(secondary), rows)
