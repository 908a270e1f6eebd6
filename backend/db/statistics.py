"""Planner statistics: what a bulk write must refresh before the data is queried.

A bulk load (COPY) or bulk delete leaves the query planner's row counts and
value distributions describing the table as it was. Autovacuum catches up
eventually, or never where it is turned off, and until then the planner picks
slow plans (seconds instead of milliseconds on a million products). Every bulk
path (seed, purge, an import or fixture of 1,000 rows or more) ends by calling `analyze`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import Table, text
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


@asynccontextmanager
async def btree_lookups(session: AsyncSession) -> AsyncIterator[None]:
    """Inside the block, PostgreSQL finds rows by a key (`sku = ANY(...)`) through a btree index.

    pg_trgm's GIN operator class answers `=` as well as `ILIKE`, and the planner
    prices a bitmap scan of it far below what it costs when the keys share
    trigrams, as a family of SKUs does: 500 SKUs took 600 ms through the product's
    trigram index and 1 ms through its unique btree index, statistics fresh. A GIN
    index is only ever read by a bitmap scan, so the block turns bitmap scans off.
    """
    async with _planner_setting(session, "enable_bitmapscan", "off"):
        yield


@asynccontextmanager
async def without_jit(session: AsyncSession) -> AsyncIterator[None]:
    """Inside the block, PostgreSQL compiles no query to machine code (JIT).

    For a long streamed read whose first rows must come at once: the planner
    JIT-compiles a million-row export's per-row expressions first, which took
    0.3 to 0.75 s before the first row, for a gain of no more than that.
    """
    async with _planner_setting(session, "jit", "off"):
        yield


@asynccontextmanager
async def _planner_setting(session: AsyncSession, name: str, value: str) -> AsyncIterator[None]:
    """`name` set to `value` for the block (SET LOCAL: this transaction only), then put back when the
    block ends normally."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    before = await connection.scalar(
        text("SELECT current_setting(:name), set_config(:name, :value, true)"), {"name": name, "value": value}
    )
    yield
    # Not in a `finally`: after an error the transaction may be aborted, and a statement sent then would
    # fail and hide the error; the SET LOCAL ends with the transaction or savepoint the error ends.
    await connection.execute(
        text("SELECT set_config(:name, :before, true)"), {"name": name, "before": before}
    )
