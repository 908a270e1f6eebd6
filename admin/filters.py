"""List filters that refuse bad input with a 400 instead of a 500, and hide deleted rows.

Each filter speaks the request's language: its title and its choices are translated each time
they are shown (the views declare them in English, admin/locale/names.py lists them for the
catalog), and so are its refusals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqladmin._types import _UNSET, UnsetAny
from sqladmin.filters import ForeignKeyFilter, StaticValuesFilter, get_column_obj
from sqlalchemy import DateTime, Select, or_, select
from starlette.exceptions import HTTPException
from starlette.requests import Request

from admin.formatting import day
from admin.i18n import gettext, lazy_gettext, noun, translated
from admin.keyset import sort_type
from backend.values import InvalidValue, parse_date, parse_id

ALL = "__all"
CHOICES_SHOWN = 25


def _localised(title: str) -> str:
    """A filter's title, shown in the request's language (the views declare it in English)."""
    return title if not isinstance(title, str) else lazy_gettext(title)


def _choices(values: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """A fixed filter's links: "All", then each value's label, in the request's language."""
    return [(ALL, gettext("All")), *((key, gettext(label)) for key, label in values)]


class ChoiceFilter(StaticValuesFilter):
    """A fixed list of values; anything else in the URL is a 400."""

    def __init__(self, column: Any, values: list[tuple[str, str]], **options: Any) -> None:
        super().__init__(column, values, **options)
        self.title = _localised(self.title)

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select[Any]], Any]
    ) -> list[tuple[str, str]]:
        return _choices(self.values)

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value in (None, "", ALL):
            return query
        if value not in {key for key, _ in self.values}:
            detail = translated("Unknown %(filter)s.", filter=noun(str(self.title)))
            raise HTTPException(status_code=400, detail=detail)
        return query.filter(get_column_obj(self.column, model) == value)


class LiveForeignKeyFilter(ForeignKeyFilter):
    """Filter by a related row; offers only live rows, and answers 400 for a malformed id.

    The sidebar links the first `CHOICES_SHOWN` rows by name (all a browser
    without script gets) and has a search box over `search_fields` (the
    display field unless given), answered by the list's `filter_lookup`.
    """

    def __init__(
        self,
        foreign_key: Any,
        foreign_display_field: Any,
        *,
        foreign_model: Any,
        title: str,
        parameter_name: str,
        search_fields: Sequence[str] = (),
    ) -> None:
        super().__init__(
            foreign_key, foreign_display_field, foreign_model, title=title, parameter_name=parameter_name
        )
        self.title = _localised(self.title)
        display = get_column_obj(foreign_display_field, foreign_model)
        self.search_fields = tuple(search_fields) or (display.key,)

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
        return [(ALL, gettext("All")), *((str(key), str(label)) for key, label in rows)]

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if value in (None, "", ALL):
            return query
        try:
            related = parse_id(str(value), name=self.title)
        except InvalidValue as exc:
            detail = translated("%(filter)s must be chosen from the list.", filter=self.title)
            raise HTTPException(status_code=400, detail=detail) from exc
        return query.filter(get_column_obj(self.foreign_key, model) == related)


DATE_RANGES = {
    "today": lazy_gettext("Today"),
    "7d": lazy_gettext("Past 7 days"),
    "30d": lazy_gettext("Past 30 days"),
    "year": lazy_gettext("This year"),
}


class RecentDateFilter(StaticValuesFilter):
    """Django-style date ranges: today, the past 7 or 30 days, this year."""

    def __init__(self, column: Any, *, title: str, parameter_name: str) -> None:
        super().__init__(column, list(DATE_RANGES.items()), title=title, parameter_name=parameter_name)
        self.title = _localised(self.title)

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select[Any]], Any]
    ) -> list[tuple[str, str]]:
        return _choices(self.values)

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
            raise HTTPException(status_code=400, detail=gettext("Unknown date range."))
        return query.filter(get_column_obj(self.column, model) >= starts[value])


class DateRangeFilter:
    """Rows whose date falls between two days, from and to both included (whole days, UTC).

    The sidebar sends two parameters, `<name>_from` and `<name>_to`
    (`parameter_names`); `filter_value` reads them as one value, a
    (from, to) pair of texts, which `get_filtered_query` parses: a date that
    is not YYYY-MM-DD, or a from after the to, is a 400.
    """

    has_operator = False
    template = "sqladmin/filters/date_range_filter.html"
    default_value: UnsetAny = _UNSET  # no range unless the URL chooses one

    def __init__(
        self, column: Any, *, title: str, parameter_name: str, parameter_names: tuple[str, str] | None = None
    ) -> None:
        self.column = column
        self.title = _localised(title)
        self.parameter_name = parameter_name
        self.parameter_names = parameter_names or (f"{parameter_name}_from", f"{parameter_name}_to")

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Select[Any]], Any]
    ) -> list[tuple[str, str]]:
        """None: the days are typed into the sidebar's form, not chosen from links."""
        return []

    def bounds(self, value: tuple[str, str]) -> tuple[date | None, date | None]:
        """The (from, to) days of `value`; a 400 naming the bad one otherwise."""
        days: list[date | None] = []
        names = (
            translated("%(filter)s from", filter=self.title),
            translated("%(filter)s to", filter=self.title),
        )
        for text, name in zip(value, names, strict=True):
            try:
                days.append(parse_date(text, name=name) if text else None)
            except InvalidValue as exc:
                raise HTTPException(status_code=400, detail=gettext(exc.message)) from exc
        first, last = days
        if first is not None and last is not None and first > last:
            detail = translated("%(filter)s: the from date is after the to date.", filter=self.title)
            raise HTTPException(status_code=400, detail=detail)
        return first, last

    def label(self, value: tuple[str, str]) -> str:
        """The chosen range as its chip says it, days in the request's language."""
        first, last = self.bounds(value)
        if first is not None and last is not None:
            return translated("%(first)s to %(last)s", first=day(first), last=day(last))
        if first is not None:
            return translated("from %(first)s", first=day(first))
        return translated("until %(last)s", last=day(last)) if last is not None else ""

    async def get_filtered_query(self, query: Select[Any], value: Any, model: Any) -> Select[Any]:
        if not isinstance(value, tuple) or len(value) != 2:
            return query
        first, last = self.bounds(value)
        column = get_column_obj(self.column, model)
        # `to` takes its whole day: rows before the next midnight (UTC). A DATE column compares days.
        moments = isinstance(sort_type(column.type), DateTime)  # a DateTime, or a TypeDecorator over one
        if first is not None:
            query = query.filter(column >= (_midnight(first) if moments else first))
        if last is not None and last < date.max:
            following = last + timedelta(days=1)
            query = query.filter(column < (_midnight(following) if moments else following))
        return query


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def filter_value(list_filter: Any, params: Mapping[str, str]) -> Any:
    """What the URL chose for `list_filter`: its parameter's text, or a date range's (from, to) pair.

    None when nothing is chosen ("All" included), so every reader of the
    list's state (its query, its cursor binding, its export) skips it alike.
    """
    if isinstance(list_filter, DateRangeFilter):
        pair = tuple(params.get(name, "") for name in list_filter.parameter_names)
        return pair if any(pair) else None
    value = params.get(list_filter.parameter_name, "")
    return None if value in ("", ALL) else value


def parameter_names(list_filter: Any) -> tuple[str, ...]:
    """The URL parameters `list_filter` reads."""
    names: tuple[str, ...] = getattr(list_filter, "parameter_names", (list_filter.parameter_name,))
    return names
