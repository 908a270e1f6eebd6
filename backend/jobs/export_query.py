"""Which rows an export job writes, in which order: a small query kept as JSON in the job's params.

A job runs later and elsewhere (a worker), so it cannot carry SQLAlchemy
clauses; it carries this instead, which the admin builds from its list's
filters, search and sort, and the CLI from its `--filter field=value`:

    {"filters": [["status", "active"], ["category", "phones"]],  # as `export --filter` takes them
     "equals": {"category_id": "12"},                              # column == value, as text
     "since": {"created_at": "2026-11-01T00:00:00+00:00"},        # column >= time
     "until": {"created_at": "2026-12-01T00:00:00+00:00"},        # column < time (a range's end)
     "search": {"term": "kettle", "fields": ["name", "sku"]},     # any of them contains the term
     "order_by": ["-price"]}                                       # "-" descending; id breaks ties

`filters` are the exchange service's own (backend/services/exchange/selection.py:
fields by name or header, related records by natural key or id). The rest
name the model's own columns, and only those the actor may see: choosing or
sorting rows by a masked column would tell its values. `equals` is what an
admin list filter selects: one column compared with one value as the list
compares it (a category chosen by id is never matched by a slug that reads
like that id, as `filters` would). Anything else is
refused at submit, with the field named, before a job exists.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Enum, false, inspect, or_

from backend.auth.actor import Actor
from backend.errors import ValidationFailed
from backend.services import masking
from backend.services.exchange.selection import filter_criteria
from backend.values import BIGINT_MAX, InvalidValue, parse_date, parse_datetime, parse_int

_TRUE, _FALSE = "true", "false"

MAX_TERM_CHARS = 200
PARAMS = "params"


def _refuse(message: str, where: str = PARAMS) -> ValidationFailed:
    return ValidationFailed({where: [message]}, message)


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in value
    ):
        raise _refuse("filters must list [field, value] pairs of text.")
    return tuple((str(name), str(text)) for name, text in value)


def _texts(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _refuse(f"{what} must map column names to text values.")
    return dict(value)


@dataclass(frozen=True)
class ExportQuery:
    filters: tuple[tuple[str, str], ...] = ()
    equals: dict[str, str] = field(default_factory=dict)
    since: dict[str, str] = field(default_factory=dict)
    until: dict[str, str] = field(default_factory=dict)
    search_term: str = ""
    search_fields: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ExportQuery:
        search = params.get("search") or {}
        if not isinstance(search, dict):
            raise _refuse("search must hold a term and the fields to search.")
        term, fields = search.get("term", ""), search.get("fields", [])
        if (
            not isinstance(term, str)
            or not isinstance(fields, list)
            or not all(isinstance(f, str) for f in fields)
        ):
            raise _refuse("search must hold a term and the fields to search.")
        order_by = params.get("order_by") or []
        if not isinstance(order_by, list) or not all(isinstance(name, str) for name in order_by):
            raise _refuse("order_by must list column names.")
        return cls(
            filters=_pairs(params.get("filters")),
            equals=_texts(params.get("equals"), "equals"),
            since=_texts(params.get("since"), "since"),
            until=_texts(params.get("until"), "until"),
            search_term=term[:MAX_TERM_CHARS],
            search_fields=tuple(fields),
            order_by=tuple(order_by),
        )

    def as_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.filters:
            params["filters"] = [list(pair) for pair in self.filters]
        if self.equals:
            params["equals"] = dict(self.equals)
        if self.since:
            params["since"] = dict(self.since)
        if self.until:
            params["until"] = dict(self.until)
        if self.search_term:
            params["search"] = {"term": self.search_term, "fields": list(self.search_fields)}
        if self.order_by:
            params["order_by"] = list(self.order_by)
        return params

    def check(self, model: type[Any], actor: Actor) -> None:
        """Refuse (`ValidationFailed`) what the job could not run for `actor`; builds every clause once."""
        self.criteria(model, actor)
        self.ordering(model, actor)

    def criteria(self, model: type[Any], actor: Actor) -> list[ColumnElement[bool]]:
        clauses = filter_criteria(model, actor, self.filters)
        for name, text in self.equals.items():
            column = _column(model, actor, name)
            clauses.append(column == _typed(column, name, text))
        for name, text in self.since.items():
            column = _column(model, actor, name)
            clauses.append(column >= _moment(name, text))
        for name, text in self.until.items():
            column = _column(model, actor, name)
            clauses.append(column < _moment(name, text))
        if self.search_term:
            pattern = (
                "%" + self.search_term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            columns = [_column(model, actor, name) for name in self.search_fields]
            # false() first: a search over no column finds nothing, as the admin's list does.
            clauses.append(or_(false(), *(column.ilike(pattern, escape="\\") for column in columns)))
        return clauses

    def ordering(self, model: type[Any], actor: Actor) -> list[ColumnElement[Any]]:
        order: list[ColumnElement[Any]] = []
        descending = False
        for entry in self.order_by:
            descending = entry.startswith("-")
            column = _column(model, actor, entry.removeprefix("-"))
            order.append(column.desc() if descending else column.asc())
        if "id" not in {entry.removeprefix("-") for entry in self.order_by}:
            identity = model.__table__.c.id
            order.append(identity.desc() if descending else identity.asc())
        return order


def _column(model: type[Any], actor: Actor, name: str) -> Any:
    attributes = inspect(model).column_attrs
    if name not in attributes:
        raise _refuse(f"{masking.table_of(model)} has no column {name[:64]!r} to export by.", name[:64])
    if name in masking.secret_fields(model) or not masking.can_see(actor, masking.table_of(model), name):
        raise _refuse(f"Rows cannot be chosen or sorted by {name}, which you may not see.", name)
    return attributes[name].columns[0]


def _moment(name: str, text: str) -> datetime:
    try:
        return parse_datetime(text, name=name)
    except InvalidValue as exc:
        raise _refuse(exc.message, name) from exc


def query_text(value: object) -> str:
    """A value an admin filter compares a column with, as `equals`, `since` and `until` keep it (`_typed`)."""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _typed(column: Any, name: str, text: str) -> Any:
    """`text` (from `query_text`) as a value of the column's type, or a refusal naming the column."""
    sql_type = column.type
    if isinstance(sql_type, Enum):
        if text not in sql_type.enums:
            raise _refuse(f"{name} is one of {', '.join(sql_type.enums)}, not {text[:64]}.", name)
        return text  # the stored value: the column's type binds it as the list's filter does
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        python_type = str
    try:
        if python_type is bool:
            if text not in (_TRUE, _FALSE):
                raise InvalidValue(f"{name} is true or false.")
            return text == _TRUE
        if python_type is int:
            return parse_int(text, minimum=-BIGINT_MAX - 1, maximum=BIGINT_MAX, name=name)
        if python_type is Decimal:
            return _decimal(name, text)
        if python_type is datetime:
            return parse_datetime(text, name=name)
        if python_type is date:
            return parse_date(text, name=name)
    except InvalidValue as exc:
        raise _refuse(exc.message, name) from exc
    return text


def _decimal(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidValue(f"{name} must be a number.") from exc
    if not value.is_finite():
        raise InvalidValue(f"{name} must be a number.")
    return value
