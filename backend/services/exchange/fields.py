"""Which columns of a model travel in files, under which headers, and how related records are named.

One list per model, used by export (the columns written), import (the
headers matched, the cells parsed) and fixtures, so a file exported from any
of them imports back unchanged. The fields are the id, then the inputs of the
model's service (its create schema, so a model declares nothing extra):

- a value (`price`, `status`): the cell is the value as text;
- a reference (`category_id`): the cell names the related record by its
  natural key (`Policy(natural_key="slug")`) or, without one, by its id;
- references (`tag_ids`): several related records, one cell, joined by ", "
  (a list in JSON); a name holding a comma or a quote is quoted the way CSV
  quotes a cell (`join_keys` / `split_keys`), so a tag "Red, blue" survives.

Nested inputs (an order's items) do not fit a cell and are left out.
Headers match a field's label, its name or its relationship's name, in any
case and spacing: "Category", "category", "category_id" and "CATEGORY ID"
are the same column.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.orm import MANYTOMANY, MANYTOONE

from backend.db.policy import policy_of
from backend.labels import readable_label
from backend.schemas.derived import MANAGED_COLUMNS
from backend.services.references import collection_field

FieldKind = Literal["id", "value", "reference", "references"]
LIST_SEPARATOR = ", "
_QUOTED_IF = re.compile(r'[,"]')
_NOT_A_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def join_keys(keys: Sequence[str]) -> str:
    """Related records' keys as one cell: `red, "Red, blue", "5"" screen"`.

    A key holding the separator's comma or a double quote is quoted as CSV
    quotes a cell (quotes doubled inside), so `split_keys` gives it back whole;
    others are written as they are, so the common cell stays `new, sale`.
    """
    return LIST_SEPARATOR.join(_quoted(key) if _QUOTED_IF.search(key) else key for key in keys)


def split_keys(text: str) -> list[str]:
    """The keys of a cell written by `join_keys` (or typed by a person), spaces around each trimmed.

    A part that starts with a double quote runs to the closing quote (a
    doubled quote inside is one quote); a part with no closing quote is taken
    as written, as is a quote later in a part (`5" screen`). Empty parts are dropped.
    """
    keys: list[str] = []
    position, end = 0, len(text)
    while position <= end:
        while position < end and text[position].isspace():
            position += 1
        if position < end and text[position] == '"' and (closed := _closing_quote(text, position)) > 0:
            comma = text.find(",", closed + 1)
            comma = end if comma < 0 else comma
            # Text between the closing quote and the comma is kept, as a spreadsheet would.
            key = text[position + 1 : closed].replace('""', '"') + text[closed + 1 : comma].strip()
        else:
            comma = text.find(",", position)
            comma = end if comma < 0 else comma
            key = text[position:comma].strip()
        if key:
            keys.append(key)
        position = comma + 1
    return keys


def _quoted(key: str) -> str:
    return '"' + key.replace('"', '""') + '"'


def _closing_quote(text: str, opening: int) -> int:
    """The index of the quote closing the one at `opening` (doubled quotes skipped); -1 if none."""
    position = opening + 1
    while (found := text.find('"', position)) >= 0:
        if text.startswith('""', found):
            position = found + 2
            continue
        return found
    return -1


def header_key(header: object) -> str:
    """A header as it is compared: case, spaces, underscores and punctuation do not count."""
    return _NOT_A_LETTER_OR_DIGIT.sub("", str(header)).casefold()


@dataclass(frozen=True)
class ExchangeField:
    """One column of a model's files."""

    name: str  # the service's input field: "price", "category_id", "tag_ids" ("id" for the id)
    label: str  # the header written on export: "Price", "Category", "Tags"
    kind: FieldKind
    attribute: str  # what to read on a record: the column, or the relationship of `references`
    target: type[Any] | None = None  # the related model of a reference
    target_key: str = "id"  # the related model's natural key, or "id"
    relationship: str | None = None  # the relationship behind a reference ("category")

    @property
    def header_keys(self) -> frozenset[str]:
        names = {self.name, self.label, self.attribute, self.relationship or self.name}
        return frozenset(header_key(name) for name in names)


def natural_key(model: type[Any]) -> str:
    """The column a model's records are known by in files: its policy's natural key, else "id"."""
    return policy_of(model).natural_key or "id"


def reference_key(model: type[Any]) -> str:
    """The column other models' files name a `model` record by: its natural key, unless that is
    personal data or a secret (an order's file would show its customer's email), else "id"."""
    key = natural_key(model)
    return "id" if key in policy_of(model).sensitive else key


def exchange_fields(model: type[Any]) -> tuple[ExchangeField, ...]:
    """The columns of `model`'s files, in order: id, then the service's create inputs."""
    return _exchange_fields(model)  # type: ignore[arg-type]  # classes are hashable; typeshed says otherwise


@cache  # a model's columns and service do not change while the process runs
def _exchange_fields(model: Any) -> tuple[ExchangeField, ...]:
    from backend.services.registry import service_for  # the registry imports every service module

    schema: type[BaseModel] = service_for(model).create_schema
    mapper: Any = inspect(model)
    by_column = {
        next(iter(relation.local_columns)).key: relation
        for relation in mapper.relationships
        if relation.direction is MANYTOONE and len(relation.local_columns) == 1
    }
    many = {collection_field(relation): relation for relation in mapper.relationships}
    fields = [ExchangeField("id", "ID", "id", "id")]
    for name, info in schema.model_fields.items():
        if name in MANAGED_COLUMNS or _nested(info.annotation):
            continue
        if name in by_column:
            relation = by_column[name]
            target = relation.mapper.class_
            fields.append(
                ExchangeField(
                    name,
                    readable_label(relation.key),
                    "reference",
                    name,
                    target=target,
                    target_key=reference_key(target),
                    relationship=relation.key,
                )
            )
        elif name in many and many[name].direction is MANYTOMANY:
            relation = many[name]
            target = relation.mapper.class_
            fields.append(
                ExchangeField(
                    name,
                    readable_label(relation.key),
                    "references",
                    relation.key,
                    target=target,
                    target_key=reference_key(target),
                    relationship=relation.key,
                )
            )
        elif name in mapper.column_attrs:
            fields.append(ExchangeField(name, readable_label(name), "value", name))
    return tuple(fields)


def read_only_headers(model: type[Any]) -> frozenset[str]:
    """Header keys of columns a file may carry but an import never sets (timestamps, version)."""
    mapper: Any = inspect(model)
    return frozenset(
        key
        for attr in mapper.column_attrs
        if attr.key in MANAGED_COLUMNS - {"id"}
        for key in (header_key(attr.key), header_key(readable_label(attr.key)))
    )


def cell_text(value: object) -> str | None:
    """A database value as a file's cell text: enums by value, None as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"  # as a spreadsheet's TRUE reads back (reading.py)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _nested(annotation: Any) -> bool:
    """Whether an input is a structure (a list of objects, an object) rather than a cell."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_nested(arg) for arg in typing.get_args(annotation))
