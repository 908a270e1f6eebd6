"""Which model and which of its rows a command names: `export product --filter category=phones`.

Models are named by table ("product", "order_item"); rows by filters on the
model's exchange fields (backend/services/exchange/fields.py), each given by
its name or its file header in any case ("category", "Category",
"category_id"), with a value as a file writes it:

- a value column: equality, the text parsed as the column's type (a price, a
  status, a date);
- a reference: the related record's natural key as files name it (a
  category's slug) or its id;
- several references (a product's tags): rows holding that one among them;
- an empty value: rows where the field is empty.

A value that cannot be the column's type, or a field that is not one of the
model's, is refused with a sentence naming what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Enum, Numeric, or_, select

from backend.auth.actor import Actor
from backend.auth.permissions import admin_models
from backend.db.uow import UnitOfWork
from backend.errors import NotFound, ValidationFailed
from backend.services import masking
from backend.services.exchange.fields import ExchangeField, exchange_fields, header_key
from backend.services.registry import service_for
from backend.values import (
    BIGINT_MAX,
    InvalidValue,
    is_id_text,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_id,
    parse_int,
)

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def exchange_models() -> list[type[Any]]:
    """The models whose rows travel in files (those with a service), in table-name order."""
    models = []
    for model in admin_models():
        try:
            service_for(model)
        except NotFound:
            continue  # shown by the admin without an id, so without a service either
        models.append(model)
    return models


def model_named(name: str) -> type[Any]:
    """The model of table `name` ("product", "order_item"; case and separators do not count)."""
    wanted = header_key(name)
    for model in exchange_models():
        if header_key(model.__tablename__) == wanted:
            return model
    known = ", ".join(str(model.__tablename__) for model in exchange_models())
    message = f"Unknown model: {name}. Choose one of: {known}."
    raise ValidationFailed({"model": [message]}, message)


def records(model: type[Any], count: int) -> str:
    """A count of `model`'s records as it reads: "1 product", "1,234 categories", "3 order items"."""
    noun = service_for(model).label or str(model.__tablename__).replace("_", " ")
    if count != 1:
        if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
            noun = noun[:-1] + "ies"
        else:
            noun += "es" if noun.endswith(("s", "x", "ch", "sh")) else "s"
    return f"{count:,} {noun}"


async def count_matching(uow: UnitOfWork, model: type[Any], criteria: Sequence[ColumnElement[bool]]) -> int:
    """How many live rows of `model` an export with `criteria` writes (needs `<table>.export`)."""
    uow.actor.require(f"{model.__tablename__}.export")
    return int(await uow.repo(model).count(where=criteria))


def filter_criteria(
    model: type[Any], actor: Actor, filters: Sequence[tuple[str, str]]
) -> list[ColumnElement[bool]]:
    """WHERE clauses for `filters`, pairs of (field name or header, value as a file writes it)."""
    return [_criterion(model, _field(model, actor, name), value.strip()) for name, value in filters]


def _field(model: type[Any], actor: Actor, name: str) -> ExchangeField:
    fields = exchange_fields(model)
    wanted = header_key(name)
    found = next((item for item in fields if wanted in item.header_keys), None)
    table = str(model.__tablename__)
    if found is None or masking.secret_fields(model) & {found.name, found.attribute}:
        labels = ", ".join(item.label for item in fields if not masking.secret_fields(model) & {item.name})
        message = f"No field {name} in {table} files. Filter on one of: {labels}."
        raise ValidationFailed({"filter": [message]}, message)
    if not masking.can_see(actor, table, found.name):
        # A filter on a value the actor may not see would tell it, one guess at a time.
        message = f"You may not filter on {found.label}: you do not see it."
        raise ValidationFailed({"filter": [message]}, message)
    return found


def _criterion(model: type[Any], field: ExchangeField, text: str) -> ColumnElement[bool]:
    if field.kind == "references":
        return _holding(model, field, text)
    column = model.__table__.c[field.attribute]
    criterion: ColumnElement[bool]
    if not text:
        criterion = column.is_(None)
        if _python_type(column) is str:
            criterion = or_(criterion, column == "")
    elif field.kind == "id":
        criterion = column == _parsed(field, lambda: parse_id(text, name=field.label))
    elif field.kind == "reference" and field.target is not None:
        criterion = column.in_(_related_ids(field, text))
    else:
        criterion = column == _value(field, column, text)
    return criterion


def _holding(model: type[Any], field: ExchangeField, text: str) -> ColumnElement[bool]:
    """Rows whose several references include the record `text` names (none named: rows with none)."""
    relation = getattr(model, field.attribute)
    target: Any = field.target
    criterion: ColumnElement[bool] = (
        ~relation.any() if not text else relation.any(target.id.in_(_related_ids(field, text)))
    )
    return criterion


def _related_ids(field: ExchangeField, text: str) -> Any:
    """The ids of the related records `text` names: by natural key, or by id."""
    target: Any = field.target
    conditions = []
    if field.target_key != "id":
        conditions.append(getattr(target, field.target_key) == text)
    if is_id_text(text):
        conditions.append(target.id == parse_id(text))
    if not conditions:
        message = f"{field.label} is given by its ID, a whole number: not {text}."
        raise ValidationFailed({"filter": [message]}, message)
    return select(target.id).where(or_(*conditions) if len(conditions) > 1 else conditions[0])


def _value(field: ExchangeField, column: Any, text: str) -> Any:
    """`text` as the column's type, or a refusal saying what the column takes."""
    sql_type = column.type
    if isinstance(sql_type, Enum):
        allowed = list(sql_type.enums)
        if text not in allowed:
            message = f"{field.label} is one of {', '.join(allowed)}, not {text}."
            raise ValidationFailed({"filter": [message]}, message)
        return sql_type.enum_class(text) if sql_type.enum_class is not None else text
    python_type = _python_type(column)
    if python_type is bool:
        folded = text.casefold()
        if folded not in _TRUE | _FALSE:
            message = f"{field.label} is true or false, not {text}."
            raise ValidationFailed({"filter": [message]}, message)
        return folded in _TRUE
    if python_type is int:
        return _parsed(
            field, lambda: parse_int(text, minimum=-BIGINT_MAX - 1, maximum=BIGINT_MAX, name=field.label)
        )
    if python_type is Decimal and isinstance(sql_type, Numeric) and sql_type.precision is not None:
        precision, scale = sql_type.precision, sql_type.scale or 0
        return _parsed(
            field, lambda: parse_decimal(text, max_digits=precision, decimal_places=scale, name=field.label)
        )
    if python_type is datetime:
        return _parsed(field, lambda: parse_datetime(text, name=field.label))
    if python_type is date:
        return _parsed(field, lambda: parse_date(text, name=field.label))
    if python_type is str:
        return text
    message = f"{field.label} cannot be filtered on."
    raise ValidationFailed({"filter": [message]}, message)


def _parsed(field: ExchangeField, parse: Any) -> Any:
    try:
        return parse()
    except InvalidValue as exc:
        raise ValidationFailed({"filter": [exc.message]}, exc.message) from exc


def _python_type(column: Any) -> type | None:
    try:
        python_type: type = column.type.python_type
    except NotImplementedError:
        return None
    return python_type
