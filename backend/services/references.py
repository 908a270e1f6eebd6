"""The records an input refers to must be live: one rule, checked for one input or for thousands at once.

A foreign-key column (`category_id`) names one record; a collection field
(`tag_ids`, for a many-to-many relationship `tags`) names several. A form's
write checks one input (`CrudService.build` / `apply`, a query or an identity
map hit per reference); an import checks a batch of inputs with one query per
referenced table (`check_new`), so both give the same answer with the same
messages, and the batch form builds no ORM object for the rows it checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, inspect
from sqlalchemy.orm import RelationshipProperty

from backend.db.base import Base
from backend.db.uow import UnitOfWork
from backend.values import is_id

LOOKUP_CHUNK = 1000  # ids per IN (...) query: well under every database's parameter limit


def references(model: type[Any]) -> dict[str, type[Any]]:
    """Foreign-key column name -> the mapped model it refers to, for single-column keys."""
    return _references(model)  # type: ignore[arg-type]  # classes are hashable; typeshed says otherwise


def collections(model: type[Any]) -> dict[str, RelationshipProperty[Any]]:
    """Input field -> the many-to-many relationship it sets: `tag_ids` -> `Product.tags`."""
    return _collections(model)  # type: ignore[arg-type]  # classes are hashable; typeshed says otherwise


@cache  # a model's columns do not change while the process runs
def _references(model: Any) -> dict[str, type[Any]]:
    by_table = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}
    found: dict[str, type[Any]] = {}
    for column in inspect(model).local_table.columns:
        targets = {key.column.table for key in column.foreign_keys}
        if len(targets) == 1 and (target := by_table.get(targets.pop())) is not None:
            found[column.key] = target
    return found


@cache
def _collections(model: Any) -> dict[str, RelationshipProperty[Any]]:
    return {
        collection_field(relation): relation
        for relation in inspect(model).relationships
        if isinstance(relation.secondary, Table)
    }


def collection_field(relation: RelationshipProperty[Any]) -> str:
    """The input field naming a relationship's records by id: `tags` -> `tag_ids`."""
    return f"{relation.key.rstrip('s')}_ids"


def missing_message(target: type[Any], id_: object) -> str:
    """The message for a reference to a record that is missing or in the trash."""
    if not is_id(id_):  # text no row could have as its id is not repeated back
        return f"Choose an existing {noun(target)}."
    return f"{noun(target).capitalize()} {id_} does not exist."


def missing_many_message(target: type[Any], ids: Iterable[object]) -> str:
    return f"No such {noun(target)}: {', '.join(map(str, ids))}."


def noun(target: type[Any]) -> str:
    return str(target.__tablename__).replace("_", " ")


@dataclass
class NewRecord:
    """A new record as checked input: its column values, and the live records its collections name."""

    values: dict[str, Any]
    related: dict[str, list[Any]] = field(default_factory=dict)  # relationship key -> records


@dataclass
class Checked:
    """The outcome of `check_new` for one input: a record to insert, or the field messages why not."""

    record: NewRecord | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


async def check_new(uow: UnitOfWork, model: type[Any], payloads: Sequence[BaseModel]) -> list[Checked]:
    """`CrudService.build`'s rule for a batch of validated create inputs, with a query per referenced
    table instead of one per row: every record an input names is live."""
    single = references(model)
    many = collections(model)
    wanted: dict[type[Any], set[Any]] = {}
    dumped = [payload.model_dump() for payload in payloads]
    for payload, values in zip(payloads, dumped, strict=True):
        for name, target in single.items():
            if name in payload.model_fields_set and values.get(name) is not None:
                wanted.setdefault(target, set()).add(values[name])
        for name, relation in many.items():
            wanted.setdefault(relation.mapper.class_, set()).update(values.get(name) or ())
    live = {target: await _live_by_id(uow, target, ids) for target, ids in wanted.items()}
    checked: list[Checked] = []
    for payload, values in zip(payloads, dumped, strict=True):
        errors: dict[str, list[str]] = {}
        for name, target in single.items():
            id_ = values.get(name)
            if name in payload.model_fields_set and id_ is not None and id_ not in live[target]:
                errors[name] = [missing_message(target, id_)]
        related: dict[str, list[Any]] = {}
        for name, relation in many.items():
            ids = sorted(set(values.pop(name, None) or ()))
            found = live.get(relation.mapper.class_, {})
            missing = [id_ for id_ in ids if id_ not in found]
            if missing:
                errors[name] = [missing_many_message(relation.mapper.class_, missing)]
            related[relation.key] = [found[id_] for id_ in ids if id_ in found]
        checked.append(Checked(errors=errors) if errors else Checked(NewRecord(values, related)))
    return checked


async def _live_by_id(uow: UnitOfWork, target: type[Any], ids: Iterable[Any]) -> Mapping[object, Any]:
    usable: list[Any] = sorted({id_ for id_ in ids if is_id(id_)})
    found: dict[object, Any] = {}
    for start in range(0, len(usable), LOOKUP_CHUNK):
        for row in await uow.repo(target).get_many(usable[start : start + LOOKUP_CHUNK]):
            found[row.id] = row
    return found
