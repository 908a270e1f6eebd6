"""Bulk writes: PostgreSQL COPY, or a Core multi-row INSERT elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession


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
