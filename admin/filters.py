"""List filters that refuse bad input with a 400 instead of a 500, and hide deleted rows."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from sqladmin.filters import ForeignKeyFilter, StaticValuesFilter, get_column_obj
from sqlalchemy import Select, or_, select
from starlette.exceptions import HTTPException
from starlette.requests import Request

from backend.values import InvalidValue, parse_id

ALL = "__all"
CHOICES_SHOWN = 25


class ChoiceFilter(StaticValuesFilter):
    """A fixed list of values; anything else in the URL is a 400."""

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value in (None, "", ALL):
            return query
        if value not in {key for key, _ in self.values}:
            raise HTTPException(status_code=400, detail=f"Unknown {self.title.lower()}.")
        return query.filter(get_column_obj(self.column, model) == value)


class LiveForeignKeyFilter(ForeignKeyFilter):
    """Filter by a related row; offers only live rows, and answers 400 for a malformed id."""

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select[Any]], Any]
    ) -> list[tuple[str, str]]:
        """The first choices by name, and the selected one: a sidebar of hundreds of links helps nobody.

        Any other value works from the URL (`?category=<id>`), e.g. from a link on a category.
        """
        target = self.foreign_model
        display = get_column_obj(self.foreign_display_field, target)
        selected = request.query_params.get(self.parameter_name, "")
        condition = target.deleted_at.is_(None)
        first = select(target.id).where(condition).order_by(display).limit(CHOICES_SHOWN)
        shown = target.id.in_(first.scalar_subquery())
        with suppress(InvalidValue):  # nothing selected, or text get_filtered_query refuses with a 400
            shown = or_(shown, target.id == parse_id(selected))
        rows = await run_query(select(target.id, display).where(condition, shown).order_by(display))
        return [(ALL, "All"), *((str(key), str(label)) for key, label in rows)]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value in (None, "", ALL):
            return query
        try:
            related = parse_id(str(value), name=self.title)
        except InvalidValue as exc:
            detail = f"{self.title} must be chosen from the list."
            raise HTTPException(status_code=400, detail=detail) from exc
        return query.filter(get_column_obj(self.foreign_key, model) == related)


DATE_RANGES = {"today": "Today", "7d": "Past 7 days", "30d": "Past 30 days", "year": "This year"}


class RecentDateFilter(StaticValuesFilter):
    """Django-style date ranges: today, the past 7 or 30 days, this year."""

    def __init__(self, column: Any, *, title: str, parameter_name: str) -> None:
        super().__init__(column, list(DATE_RANGES.items()), title=title, parameter_name=parameter_name)

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value in (None, "", ALL):
            return query
        now = datetime.now(UTC)
        starts = {
            "today": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "7d": now - timedelta(days=7),
            "30d": now - timedelta(days=30),
            "year": now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
        }
        if value not in starts:
            raise HTTPException(status_code=400, detail="Unknown date range.")
        return query.filter(get_column_obj(self.column, model) >= starts[value])
