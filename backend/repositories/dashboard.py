"""The dashboard's queries: each one bounded (a capped count, a LIMIT, a date range over an index)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Select, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.counting import count_up_to
from backend.models import AuditEntry, Order, OrderStatus, Product, ProductStatus


@dataclass(frozen=True)
class DayTotal:
    day: date
    orders: int
    revenue: Decimal


class DashboardQueries:
    """Reads for the dashboard; permissions are the service's business (backend/services/dashboard.py)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def capped_count(self, model: Any, *, cap: int) -> int:
        """Live rows of `model`, counted no further than `cap + 1` (the answer when there are more)."""
        stmt = select(model.id)
        if hasattr(model, "deleted_at"):
            stmt = stmt.where(model.deleted_at.is_(None))
        return await count_up_to(self.session, stmt, key=model.id, cap=cap + 1)

    async def estimated_count(self, model: Any) -> int | None:
        """PostgreSQL's planner estimate of the live rows (from ANALYZE's statistics); None elsewhere.

        EXPLAIN plans the query without running it, so this costs the same at any size, and
        the estimate honours the live-rows condition, which `pg_class.reltuples` alone does not.
        """
        connection = await self.session.connection()
        if connection.dialect.name != "postgresql":
            return None
        stmt: Select[Any] = select(model.id)
        if hasattr(model, "deleted_at"):
            stmt = stmt.where(model.deleted_at.is_(None))
        compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
        plan = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}")
        raw = plan.scalar_one()
        document = json.loads(raw) if isinstance(raw, str) else raw
        return int(document[0]["Plan"]["Plan Rows"])

    async def entries_by(
        self, actor_id: int, *, limit: int, excluding: Sequence[str] = ()
    ) -> list[AuditEntry]:
        """The actor's newest entries but those of the `excluding` actions, through the (actor_id,
        created_at) index."""
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.action.not_in(excluding))
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def orders_per_day(self, since: datetime, until: datetime) -> list[DayTotal]:
        """Live orders placed in [since, until), not cancelled, and their revenue, per UTC day.

        The range is read through the live (placed_at, id) index; only the days that had orders come back.
        """
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            day: Any = cast(func.timezone("UTC", Order.placed_at), Date)
        else:
            day = func.date(Order.placed_at)  # SQLite keeps UTC text: its date part is the UTC day
        stmt = (
            select(day.label("day"), func.count(), func.coalesce(func.sum(Order.total), 0))
            .where(
                Order.deleted_at.is_(None),
                Order.placed_at >= since,
                Order.placed_at < until,
                Order.status != OrderStatus.CANCELLED,
            )
            .group_by(day)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            DayTotal(
                day=_as_date(found),
                orders=int(count),
                revenue=Decimal(str(revenue)).quantize(Decimal("0.01")),
            )
            for found, count, revenue in rows
        ]

    async def low_stock(self, *, below: int, limit: int) -> Sequence[Product]:
        """Live, unarchived products with stock below `below`: the emptiest first, then the newest.

        The live (stock, id) index is read from stock 0 upwards, so the query stops after `limit` rows.
        """
        stmt = (
            select(Product)
            .where(
                Product.deleted_at.is_(None),
                Product.stock < below,
                Product.status != ProductStatus.ARCHIVED,
            )
            .order_by(Product.stock, Product.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)
