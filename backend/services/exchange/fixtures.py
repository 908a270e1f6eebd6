"""Fixtures: the rows of several models in one JSON file (`manage.py dumpdata` / `loaddata`).

The format (version 1), one object per model, models in dependency order:

    {"custodian_fixture": 1,
     "models": [
       {"model": "category", "headers": ["ID", "Name", "Slug", "Parent"],
        "rows": [["1", "Electronics", "electronics", null], ["2", "Phones", "phones", "electronics"]]},
       {"model": "product", "headers": ["ID", "SKU", ..., "Category", "Tags"],
        "rows": [["7", "DEMO-00007", ..., "phones", ["new", "sale"]]]}]}

A model's headers and rows are exactly what `export` writes for it
(`exporting.export_headers` / `export_rows`): live rows only, the id first,
text cells (null when empty), a related record named by its natural key (a
product's category by slug) or, when it has none, by id (an order's
customer), several related records as a list. A model comes after the models
its rows refer to; the order is derived from the references of each model's
exchange fields, never listed by hand. Ids differ between databases, so a
model naming another's records by id needs that model in the same fixture.

This module chooses the models, writes fixtures and reads them back;
`fixture_loading` loads them through the services.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from backend.db.policy import policy_of
from backend.db.uow import UnitOfWork
from backend.errors import AppError, ValidationFailed
from backend.services.exchange.exporting import export_headers, export_rows
from backend.services.exchange.fields import ExchangeField, exchange_fields
from backend.services.exchange.reading import Cell
from backend.services.exchange.selection import exchange_models, model_named

FIXTURE_VERSION = 1
# Users and roles stay out unless named: passwords and a role's permissions do not travel in files,
# and each database gets its built-in roles from `migrate`.
LEFT_OUT_BY_DEFAULT = "accounts"


class BadFixture(AppError):
    """The fixture cannot be loaded at all (not a fixture, a broken structure): nothing is written."""


@dataclass
class FixtureModel:
    model: type[Any]
    headers: list[str]
    rows: list[list[Cell]]  # row n of the model is rows[n - 1]

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)


# Which models, in which order ----------------------------------------------------


def fixture_models(names: Sequence[str] = ()) -> list[type[Any]]:
    """The models `names` (default: every model with a service but the accounts group), in dependency order.

    Refuses a set in which a model names records of another by id without that
    model: ids differ between databases, so those references could not be followed.
    """
    if names:
        models = list(dict.fromkeys(model_named(name) for name in names))
    else:
        models = [model for model in exchange_models() if policy_of(model).group != LEFT_OUT_BY_DEFAULT]
    _require_id_targets(models)
    return dependency_order(models)


def dependency_order(models: Iterable[type[Any]]) -> list[type[Any]]:
    """`models`, each after the models its rows refer to; otherwise by table name."""
    pending = sorted(set(models), key=lambda model: str(model.__tablename__))
    ordered: list[type[Any]] = []
    while pending:
        ready = next(
            (model for model in pending if not (referenced_models(model) & set(pending)) - {model}),
            None,
        )
        if ready is None:
            tables = ", ".join(str(model.__tablename__) for model in pending)
            raise AppError(f"These models refer to one another in a circle: {tables}; no order loads them.")
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def referenced_models(model: type[Any]) -> set[type[Any]]:
    """The other models whose records `model`'s rows name."""
    return {item.target for item in _reference_fields(model) if item.target is not None}


def _reference_fields(model: type[Any]) -> list[ExchangeField]:
    return [item for item in exchange_fields(model) if item.kind in ("reference", "references")]


def _require_id_targets(models: Sequence[type[Any]]) -> None:
    for model in models:
        for item in _reference_fields(model):
            if item.target_key == "id" and item.target is not None and item.target not in models:
                target = item.target.__tablename__
                message = (
                    f"{model.__tablename__} names its {item.label.lower()} by id, and ids differ between "
                    f"databases: include {target} too."
                )
                raise ValidationFailed({"models": [message]}, message)


# Dumping ---------------------------------------------------------------------------


async def dump_fixture(
    uow: UnitOfWork, models: Sequence[type[Any]], *, dumped: Callable[[str, int], None] | None = None
) -> AsyncIterator[bytes]:
    """The fixture of `models` (in the order given), in chunks of bytes; needs `<table>.export` of each.

    `dumped(table, rows)` is called as each model is finished.
    """
    headers = {model: export_headers(model, uow.actor) for model in models}  # every refusal before a byte
    yield f'{{"custodian_fixture": {FIXTURE_VERSION}, "models": ['.encode()
    for position, model in enumerate(models):
        opening = {"model": str(model.__tablename__), "headers": headers[model]}
        yield ("\n" if position == 0 else ",\n").encode() + _json(opening)[:-1] + b', "rows": ['
        count = 0
        chunk: list[bytes] = []
        async for row in export_rows(uow, model):
            chunk.append((b"\n" if count == 0 else b",\n") + _json(row))
            count += 1
            if len(chunk) >= 1000:
                yield b"".join(chunk)
                chunk.clear()
        chunk.append(b"\n]}" if count else b"]}")
        yield b"".join(chunk)
        if dumped is not None:
            dumped(str(model.__tablename__), count)
    yield b"\n]}\n"


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# Reading ----------------------------------------------------------------------------


def read_fixture(data: bytes) -> list[FixtureModel]:
    """The models of a fixture file, in dependency order; `BadFixture` when it is not one."""
    try:
        document = json.loads(data, parse_int=str, parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise BadFixture("The fixture is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise BadFixture(
            f"The fixture is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except RecursionError as exc:
        raise BadFixture("The fixture nests lists or objects too deeply.") from exc
    if not isinstance(document, dict) or "custodian_fixture" not in document:
        raise BadFixture(
            'Not a Custodian fixture: it has no "custodian_fixture" version (make one with dumpdata).'
        )
    if document["custodian_fixture"] != str(FIXTURE_VERSION):
        raise BadFixture(
            f"The fixture is version {document['custodian_fixture']}; "
            f"this Custodian reads version {FIXTURE_VERSION}."
        )
    entries = document.get("models")
    if not isinstance(entries, list):
        raise BadFixture('The fixture has no "models" list.')
    parts: dict[type[Any], FixtureModel] = {}
    for position, entry in enumerate(entries, start=1):
        part = _fixture_model(position, entry)
        if part.model in parts:
            raise BadFixture(
                f"The fixture holds {part.table} twice (entries {_position(parts, part)} and {position})."
            )
        parts[part.model] = part
    try:
        _require_id_targets(list(parts))
    except ValidationFailed as exc:
        raise BadFixture(exc.message) from exc
    return [parts[model] for model in dependency_order(parts)]


def _position(parts: dict[type[Any], FixtureModel], part: FixtureModel) -> int:
    return list(parts).index(part.model) + 1


def _fixture_model(position: int, entry: object) -> FixtureModel:
    where = f"Entry {position} of the fixture's models"
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise BadFixture(f'{where} is not an object with a "model" name.')
    try:
        model = model_named(entry["model"])
    except ValidationFailed as exc:
        raise BadFixture(f"{where}: {exc.message}") from exc
    headers, rows = entry.get("headers"), entry.get("rows")
    if not isinstance(headers, list) or not all(isinstance(header, str) for header in headers):
        raise BadFixture(f'{where} ({model.__tablename__}) has no "headers" list of texts.')
    if not isinstance(rows, list):
        raise BadFixture(f'{where} ({model.__tablename__}) has no "rows" list.')
    cells: list[list[Cell]] = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(headers):
            raise BadFixture(
                f"{model.__tablename__} row {number} is not a list of {len(headers)} cells, one per header."
            )
        cells.append([_cell(model, number, value) for value in row])
    return FixtureModel(model, [header.strip() for header in headers], cells)


def _cell(model: type[Any], number: int, value: object) -> Cell:
    if isinstance(value, list):
        return [text for text in (_text(model, number, part) for part in value) if text is not None]
    return _text(model, number, value)


def _text(model: type[Any], number: int, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Decimal):
        text = str(value).strip()
        if "\x00" in text:
            raise BadFixture(
                f"{model.__tablename__} row {number} holds a NUL character, which cannot be stored."
            )
        return text or None
    raise BadFixture(f"{model.__tablename__} row {number} has a cell that is not text, a number or a list.")
