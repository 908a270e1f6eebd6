"""What the dashboard shows: row counts, recent changes, the store's orders per day and low stock.

Every read is bounded, so the page costs the same on a million rows: counts
stop at a cap (and PostgreSQL's planner estimate stands in above it), lists
have a LIMIT, the orders chart reads a 30-day range over the placed_at index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from backend.db.uow import UnitOfWork
from backend.models import Product
from backend.repositories.dashboard import DashboardQueries, DayTotal
from backend.services import account
from backend.services.auth import SESSION_EVENTS
from backend.services.history import AuditFilters, AuditLog, AuditRecord
from backend.services.registry import service_for

COUNT_CAP = 10_000
RECENT_LIMIT = 10
LOW_STOCK_BELOW = 5
CHART_DAYS = 30


class CountKind(StrEnum):
    EXACT = "exact"
    CAPPED = "capped"  # at least `value`: more than the cap, and no estimate to offer
    ESTIMATE = "estimate"  # the planner's estimate, above the cap


@dataclass(frozen=True)
class RowCount:
    value: int
    kind: CountKind

    def __str__(self) -> str:
        if self.kind is CountKind.CAPPED:
            return f"{self.value:,}+"
        if self.kind is CountKind.ESTIMATE:
            return f"about {_short(self.value)}"
        return f"{self.value:,}"


@dataclass(frozen=True)
class OrdersChart:
    days: list[DayTotal]  # one per day, oldest first, days without orders included

    @property
    def orders(self) -> int:
        return sum(day.orders for day in self.days)

    @property
    def revenue(self) -> Decimal:
        return sum((day.revenue for day in self.days), Decimal("0.00"))


class DashboardService:
    """The dashboard's figures for the unit of work's actor; each method checks its own permission
    and raises `PermissionDenied` without it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.actor = uow.actor
        self.queries = DashboardQueries(uow.session)

    async def count(self, table: str, *, cap: int = COUNT_CAP) -> RowCount:
        """Live rows of `table` (needs `<table>.view`): exact up to `cap`, estimated above it on
        PostgreSQL, else shown as "cap+"."""
        self.actor.require(f"{table}.view")
        model = service_for(table).model
        found = await self.queries.capped_count(model, cap=cap)
        if found <= cap:
            return RowCount(found, CountKind.EXACT)
        estimate = await self.queries.estimated_count(model)
        # Statistics older than the rows (no ANALYZE since a bulk load) may undercount: the cap is the floor.
        if estimate is None or estimate <= cap:
            return RowCount(cap, CountKind.CAPPED)
        return RowCount(estimate, CountKind.ESTIMATE)

    async def own_changes(self, *, limit: int = RECENT_LIMIT) -> list[AuditRecord]:
        """The actor's own newest changes (audit entries, not their sign-ins and sign-outs), masked as the
        audit log masks them for this actor."""
        if self.actor.user_id is None:
            return []
        entries = await self.queries.entries_by(
            self.actor.user_id, limit=limit, excluding=(*SESSION_EVENTS, *account.EVENTS)
        )
        return [AuditRecord.shown_to(self.actor, entry) for entry in entries]

    async def latest_activity(self, *, limit: int = RECENT_LIMIT) -> list[AuditRecord]:
        """Everyone's newest audit entries (needs `audit.view`), masked for the actor."""
        return await AuditLog(self.uow).search(AuditFilters(), limit=limit)

    async def orders_per_day(self, *, days: int = CHART_DAYS, today: date | None = None) -> OrdersChart:
        """Orders placed (cancelled ones left out) and their revenue per UTC day, the last `days` days
        up to today included (needs `order.view`)."""
        self.actor.require("order.view")
        last = today or datetime.now(UTC).date()
        first = last - timedelta(days=days - 1)
        since = datetime.combine(first, time.min, UTC)
        until = datetime.combine(last + timedelta(days=1), time.min, UTC)
        found = {total.day: total for total in await self.queries.orders_per_day(since, until)}
        empty = Decimal("0.00")
        series = [first + timedelta(days=offset) for offset in range(days)]
        return OrdersChart([found.get(day) or DayTotal(day, 0, empty) for day in series])

    async def low_stock(self, *, below: int = LOW_STOCK_BELOW, limit: int = RECENT_LIMIT) -> list[Product]:
        """Live products not archived whose stock is below `below`, emptiest first (needs `product.view`)."""
        self.actor.require("product.view")
        return list(await self.queries.low_stock(below=below, limit=limit))


def _short(value: int) -> str:
    """1234567 -> "1.2M", 45600 -> "46K": an estimate is not worth more digits."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if value >= size:
            shown = f"{value / size:.1f}" if value < size * 10 else f"{value / size:.0f}"
            return f"{shown.removesuffix('.0')}{suffix}"
    return f"{value:,}"
