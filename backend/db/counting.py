"""Counting rows where a list may hold millions: up to a cap, never the whole of it.

One rule for the list page's "1,000+", the export's "more than the job threshold" and the dashboard's
counts: count no further than the cap, reading only a key, in no order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def count_up_to(session: AsyncSession, statement: Select[Any], *, key: Any, cap: int) -> int:
    """How many rows `statement` selects, counted no further than `cap`: `cap` means "that many or
    more". A list of a million rows is never counted whole; only `key` is read, in no order."""
    capped = statement.with_only_columns(key).order_by(None).limit(cap).subquery()
    return int(await session.scalar(select(func.count()).select_from(capped)) or 0)
