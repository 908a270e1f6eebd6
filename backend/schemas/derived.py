"""Input schemas derived from a model's columns, for services that declare none.

`create_schema_for(Supplier)` and `update_schema_for(Supplier)` are Pydantic
models (subclasses of `Input`: unknown fields refused, no NUL) with one field
per mapped column the user may set: the id, the timestamps, the soft-delete
columns and the version are left out. Each field takes its limits from its
column: a String(n)'s length, and not blank when the column is NOT NULL
without a default; an integer's range; a Numeric(p, s)'s digits; an enum's
members; an aware datetime for a timezone column; a foreign key as an id.
NULL is refused for a NOT NULL column. In the update schema every field is
optional: the service applies only the fields the caller set.

A column the database or the model fills in itself (a callable or server
default) is optional on create, and left out of `model_dump()` when not
given, so the column's own default applies. Numbers and ids given as text
(forms, the CLI) go through `backend.values`, which takes ASCII digits only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
)
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Time,
    Uuid,
    inspect,
)
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.types import TypeDecorator, TypeEngine

from backend.schemas.base import Input
from backend.values import BIGINT_MAX, as_id, parse_decimal, parse_int

# Columns the framework maintains: never input.
MANAGED_COLUMNS = frozenset({"id", "created_at", "updated_at", "deleted_at", "deleted_by_id", "version"})
REQUIRED_MESSAGE = "This field is required."

_INT_RANGES: tuple[tuple[type[Integer], int], ...] = (
    (BigInteger, BIGINT_MAX),
    (SmallInteger, 2**15 - 1),
    (Integer, 2**31 - 1),
)


class DerivedInput(Input):
    """The base of the derived schemas; `database_defaults` are left out of a dump when not given."""

    # Text is trimmed as in the hand-written schemas; columns may be called `model_*`.
    model_config = ConfigDict(str_strip_whitespace=True, protected_namespaces=())

    database_defaults: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_defaults_to_the_database(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.database_defaults - self.model_fields_set:
            data.pop(name, None)
        return data


@cache
def create_schema_for(model: type[Any]) -> type[DerivedInput]:
    """`<Model>Create`: what creating a `model` row takes."""
    fields: dict[str, Any] = {}
    database_defaults = set()
    for key, column in input_columns(model, creating=True):
        annotation = _annotation(key, column)
        default = column.default
        if column.nullable:
            fields[key] = (annotation | None, None)
        elif isinstance(default, ScalarElementColumnDefault):
            fields[key] = (annotation, default.arg)
        elif default is not None or column.server_default is not None:
            fields[key] = (annotation, None)
        else:
            fields[key] = (annotation, ...)
        scalar = isinstance(default, ScalarElementColumnDefault)
        if (default is not None and not scalar) or (default is None and column.server_default is not None):
            database_defaults.add(key)
    schema = _schema(f"{model.__name__}Create", fields)
    schema.database_defaults = frozenset(database_defaults)
    return schema


@cache
def update_schema_for(model: type[Any]) -> type[DerivedInput]:
    """`<Model>Update`: every field optional; only the fields given are changed."""
    fields: dict[str, Any] = {}
    for key, column in input_columns(model, creating=False):
        annotation = _annotation(key, column)
        fields[key] = (annotation | None if column.nullable else annotation, None)
    return _schema(f"{model.__name__}Update", fields)


def input_columns(model: type[Any], *, creating: bool) -> list[tuple[str, Column[Any]]]:
    """The mapped columns of `model` a caller may set, by attribute name, in mapping order."""
    columns = []
    for attr in inspect(model).column_attrs:
        column = attr.columns[0]
        if not isinstance(column, Column) or attr.key in MANAGED_COLUMNS or column.computed is not None:
            continue  # an expression, a framework column, or one the database computes
        if column.primary_key and (not creating or column.default is not None or _is_integer(column)):
            continue  # generated keys; a natural key is set once, on create
        columns.append((attr.key, column))
    return columns


def _schema(name: str, fields: dict[str, Any]) -> type[DerivedInput]:
    schema: type[DerivedInput] = create_model(name, __base__=DerivedInput, __module__=__name__, **fields)
    return schema


def _required(column: Column[Any]) -> bool:
    """NOT NULL with no default anywhere: the caller must give a value (and not blank text)."""
    return not column.nullable and column.default is None and column.server_default is None


def _annotation(key: str, column: Column[Any]) -> Any:
    """The field type of `column`, with its limits; NULL refused for a NOT NULL column."""
    annotation = _value_type(key, column)
    if not column.nullable:
        annotation = Annotated[annotation, BeforeValidator(_refuse_null)]
    return annotation


def _value_type(key: str, column: Column[Any]) -> Any:
    sql_type = _base_type(column.type)
    label = key.replace("_", " ").capitalize()
    if column.foreign_keys and isinstance(sql_type, Integer):
        return Annotated[int, BeforeValidator(_IdText(label))]
    if isinstance(sql_type, Enum):  # before String: an Enum is a String
        if sql_type.enum_class is not None:
            return sql_type.enum_class
        return Literal.__getitem__(tuple(sql_type.enums))
    if isinstance(sql_type, Boolean):
        return bool
    if isinstance(sql_type, Integer):
        highest = next(high for kind, high in _INT_RANGES if isinstance(sql_type, kind))
        bounds = Field(ge=-highest - 1, le=highest)
        return Annotated[int, BeforeValidator(_IntText(label, -highest - 1, highest)), bounds]
    if isinstance(sql_type, Float):  # before Numeric: a Float is a Numeric
        return float
    if isinstance(sql_type, Numeric):
        if sql_type.precision is None:
            return Decimal
        digits, places = sql_type.precision, sql_type.scale or 0
        limits = Field(max_digits=digits, decimal_places=places, allow_inf_nan=False)
        return Annotated[Decimal, BeforeValidator(_DecimalText(label, digits, places)), limits]
    if isinstance(sql_type, String):
        length = Field(max_length=sql_type.length, min_length=1 if _required(column) else None)
        return Annotated[str, length]
    if isinstance(sql_type, DateTime):
        return AwareDatetime if sql_type.timezone else datetime
    simple: dict[type[TypeEngine[Any]], type] = {Date: date, Time: time, Uuid: uuid.UUID}
    for kind, python_type in simple.items():
        if isinstance(sql_type, kind):
            return python_type
    try:
        return sql_type.python_type
    except NotImplementedError:
        raise TypeError(
            f"Cannot derive an input field for {column.table.name}.{column.name} ({sql_type!r}): "
            "give its service explicit `create_schema` and `update_schema`."
        ) from None


def _base_type(sql_type: TypeEngine[Any]) -> TypeEngine[Any]:
    """The SQL type a decorated type (UTCDateTime) stores as."""
    while isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    return sql_type


def _is_integer(column: Column[Any]) -> bool:
    return isinstance(_base_type(column.type), Integer)


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError(REQUIRED_MESSAGE)
    return value


class _IdText:
    """An id as an int or ASCII digits (a form's text), in the BIGINT range."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        return as_id(value.strip() if isinstance(value, str) else value, name=self.label)


class _IntText:
    """A whole number given as text: ASCII digits only (`int()` takes "1_000" and "١٢")."""

    def __init__(self, label: str, minimum: int, maximum: int) -> None:
        self.label, self.minimum, self.maximum = label, minimum, maximum

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return parse_int(value.strip(), minimum=self.minimum, maximum=self.maximum, name=self.label)


class _DecimalText:
    """A decimal given as text: ASCII digits, no exponent, no NaN, within the column's digits."""

    def __init__(self, label: str, digits: int, places: int) -> None:
        self.label, self.digits, self.places = label, digits, places

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return parse_decimal(
            value.strip(), max_digits=self.digits, decimal_places=self.places, name=self.label
        )


class DerivedSchema:
    """A class attribute that reads as the schema derived from its owner's `model`.

    `CrudService.create_schema` is one: a service that sets no schema of its
    own validates with the derived one, read as `ThingService.create_schema`.
    """

    def __init__(self, derive: Callable[..., type[DerivedInput]]) -> None:
        self.derive = derive

    def __get__(self, instance: object, owner: type[Any]) -> type[DerivedInput]:
        return self.derive(owner.model)
