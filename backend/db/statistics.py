"""Planner statistics: what a bulk write must refresh before the data is queried.

A bulk load (COPY) or bulk delete leaves the query planner's row counts and
value distributions describing the table as it was. Autovacuum catches up
eventually, or never where it is turned off, and until then the planner picks
slow plans (seconds instead of milliseconds on a million products). Every bulk
path (seed, purge, an import or fixture of 1,000 rows or more) ends by calling `analyze`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession


async def analyze(session: AsyncSession, tables: Iterable[Table]) -> None:
    """Refresh the planner statistics of `tables`, in the session's transaction.

    PostgreSQL's ANALYZE samples the rows this transaction wrote too, and its
    statistics are visible to others once the transaction commits; SQLite's
    fills `sqlite_stat1` the same way. Each table once, in the order given.
    """
    connection = await session.connection()
    preparer = connection.dialect.identifier_preparer
    seen: set[str] = set()
    for table in tables:
        if table.fullname in seen:
            continue
        seen.add(table.fullname)
        # A quoted identifier, never user input: "order" and "user" are reserved words.
        await connection.exec_driver_sql(f"ANALYZE {preparer.format_table(table)}")
