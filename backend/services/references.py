"""The records an input refers to must be live: one rule, checked for one input or for thousands at once.

A foreign-key column (`category_id`) names one record; a collection field
(`tag_ids`, for a many-to-many relationship `tags`) names several. A form's
write checks one input (`CrudService.build` / `apply`, a query or an identity
map hit per reference); an import checks a batch of inputs with one query per
referenced table (`check_new`), so both give the same answer with the same
messages, and the batch form builds no ORM object for the rows it checks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter
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
    dumped = dump_all(payloads)
    # Only the references an input sets are checked (as `build` checks `model_fields_set`).
    given = [
        [
            (name, target, values[name])
            for name, target in single.items()
            if values.get(name) is not None and name in payload.model_fields_set
        ]
        for payload, values in zip(payloads, dumped, strict=True)
    ]
    wanted: dict[type[Any], set[Any]] = {}
    for named in given:
        for _name, target, id_ in named:
            wanted.setdefault(target, set()).add(id_)
    for name, relation in many.items():
        ids = wanted.setdefault(relation.mapper.class_, set())
        for values in dumped:
            ids.update(values.get(name) or ())
    # The records of a collection are what the new record will hold (its link rows, its audit entry):
    # loaded. Of a single reference only its id is needed: no object per record (a batch of products
    # can name a thousand categories).
    held = {relation.mapper.class_ for relation in many.values()}
    live: dict[type[Any], Collection[object]] = {
        target: await (_live_by_id if target in held else _live_ids)(uow, target, ids)
        for target, ids in wanted.items()
    }
    checked: list[Checked] = []
    for named, values in zip(given, dumped, strict=True):
        errors: dict[str, list[str]] = {}
        for name, target, id_ in named:
            if id_ not in live[target]:
                errors[name] = [missing_message(target, id_)]
        related: dict[str, list[Any]] = {}
        for name, relation in many.items():
            listed = values.pop(name, None) or ()
            found = cast(Mapping[object, Any], live.get(relation.mapper.class_, {}))
            chosen = sorted(set(listed)) if len(listed) > 1 else list(listed)
            missing = [id_ for id_ in chosen if id_ not in found]
            if missing:
                errors[name] = [missing_many_message(relation.mapper.class_, missing)]
            related[relation.key] = [found[id_] for id_ in chosen if id_ in found]
        checked.append(Checked(errors=errors) if errors else Checked(NewRecord(values, related)))
    return checked


def dump_all(payloads: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """`payload.model_dump()` of each payload, a list of one schema dumped in one call (an import's batch:
    a call per payload costs more than the dump itself)."""
    if not payloads:
        return []
    schema = type(payloads[0])
    if any(type(payload) is not schema for payload in payloads):
        return [payload.model_dump() for payload in payloads]
    dumped: list[dict[str, Any]] = _list_adapter(schema).dump_python(list(payloads))
    return dumped


@cache
def _list_adapter(schema: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[schema])  # type: ignore[valid-type]  # a schema known only at run time


async def _live_ids(uow: UnitOfWork, target: type[Any], ids: Iterable[Any]) -> set[object]:
    usable: list[Any] = sorted({id_ for id_ in ids if is_id(id_)})
    found: set[object] = set()
    for start in range(0, len(usable), LOOKUP_CHUNK):
        found |= await uow.repo(target).taken("id", usable[start : start + LOOKUP_CHUNK])
    return found


async def _live_by_id(uow: UnitOfWork, target: type[Any], ids: Iterable[Any]) -> Mapping[object, Any]:
    usable: list[Any] = sorted({id_ for id_ in ids if is_id(id_)})
    found: dict[object, Any] = {}
    for start in range(0, len(usable), LOOKUP_CHUNK):
        for row in await uow.repo(target).get_many(usable[start : start + LOOKUP_CHUNK]):
            found[row.id] = row
    return found
