"""Counting rows where a list may hold millions: up to a cap, never the whole of it.

One rule for the list page's "1,000+", the export's "more than the job threshold" and the dashboard's
counts: count no further than the cap, reading only a key, in no order. Where even that costs too
much (a search for a frequent word), `estimate_rows` asks PostgreSQL's planner instead.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement


async def count_up_to(session: AsyncSession, statement: Select[Any], *, key: Any, cap: int) -> int:
    """How many rows `statement` selects, counted no further than `cap`: `cap` means "that many or
    more". A list of a million rows is never counted whole; only `key` is read, in no order."""
    capped = statement.with_only_columns(key).order_by(None).limit(cap).subquery()
    return int(await session.scalar(select(func.count()).select_from(capped)) or 0)


class _Explained(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <statement>`, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explained, "postgresql")
def _explain(element: _Explained, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.statement, **kw))


async def estimate_rows(session: AsyncSession, statement: Select[Any], *, key: Any) -> int | None:
    """PostgreSQL's planner estimate of how many rows `statement` selects, from the statistics
    ANALYZE keeps; None on other databases. Planning runs nothing, so it costs the same for a word
    in every tenth row as for one in no row: what a count up to a cap cannot promise."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return None
    plan = (await session.execute(_Explained(statement.with_only_columns(key).order_by(None)))).scalar_one()
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0]["Plan"]["Plan Rows"])
