"""Loading a fixture (`manage.py loaddata`) through the services: every row, or none.

Every row goes through `importing.confirm_import`, so it passes the model's
service as a form would, all in ONE savepoint: any row error and nothing is
written. Rows are matched by natural key, so loading a fixture twice changes
nothing. A model without one (orders, order items) is matched by content
instead: a row whose every cell equals a live record's is that record (equal
rows pair with equal records one to one). Ids differ between databases, so the
id each row gets or matches is kept per model, and the references of later
models that name records by id are rewritten with it (an order item's Order).
A model referring to itself (a category's parent) is loaded in layers: first
the rows whose parent is not in the file, then their children, and so on,
whatever the file's order.

Services act on the records a row refers to: an order item takes stock from
its product, a shipped order takes no more items. So the records later models
refer to are loaded as the application builds them: first in their initial
state (an input with a default and a fixed set of values, a status, is left
at its default), then, once every model is in, their rows are applied again,
last model first and again while anything still changes, which sets the
states and puts back the values later rows' services changed (the stock). The
database then holds what the file says.

What replaying cannot do: a service that refuses a row for what earlier rows
took. A fixture's stock is what was left after its orders, and loading its
order items takes that stock once more, so a product whose orders took more
than it has left refuses the last of them ("Only 0 of ... in stock"), and
nothing is loaded.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.services.exchange.exporting import export_headers, export_rows
from backend.services.exchange.fields import ExchangeField, exchange_fields, header_key, natural_key
from backend.services.exchange.fixtures import BadFixture, FixtureModel, referenced_models
from backend.services.exchange.importing import (
    FileRefused,
    ImportReport,
    RowOutcome,
    confirm_import,
    preview_import,
    tally,
)
from backend.services.exchange.reading import Cell, Table
from backend.services.registry import service_for

FixtureProgress = Callable[[str, int, int], None]  # (table, rows done, rows in the model)


@dataclass
class ModelLoad:
    """What loading one model's rows did, row by row (numbered from 1 within the model)."""

    table: str
    rows: list[RowOutcome] = field(default_factory=list)
    import_ids: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return tally(self.rows)

    @property
    def error_rows(self) -> list[RowOutcome]:
        return [row for row in self.rows if row.status == "error"]


@dataclass
class FixtureReport:
    models: list[ModelLoad] = field(default_factory=list)
    not_tried: list[str] = field(default_factory=list)  # models after the first one with errors
    written: bool = False

    @property
    def error_count(self) -> int:
        return sum(len(load.error_rows) for load in self.models)


async def load_fixture(
    uow: UnitOfWork,
    parts: Sequence[FixtureModel],
    *,
    file_name: str,
    file_hash: str,
    progress: FixtureProgress | None = None,
) -> FixtureReport:
    """Load `parts` (from `read_fixture`) through the services, all or nothing (the caller commits).

    Needs `<table>.import` (and add/change) on every model. When a row has an
    error, nothing is written and `report.written` is False; the models after
    the first with errors are not tried (their rows would refer to missing ones).
    """
    loading = _FixtureLoading(uow, parts, file_name=file_name, file_hash=file_hash, progress=progress)
    async with uow.session.begin_nested() as everything:
        await loading.run()
        if loading.report.error_count:
            await everything.rollback()
    if loading.report.error_count:
        uow.session.expunge_all()  # the rolled-back records must not be taken for live ones
    else:
        loading.report.written = True
    return loading.report


class _FixtureLoading:
    def __init__(
        self,
        uow: UnitOfWork,
        parts: Sequence[FixtureModel],
        *,
        file_name: str,
        file_hash: str,
        progress: FixtureProgress | None,
    ) -> None:
        self.uow = uow
        self.parts = list(parts)
        self.file_name = file_name
        self.file_hash = file_hash
        self.progress = progress
        self.report = FixtureReport()
        # Per model: the id a row has in the file -> the id of its record in this database.
        self.ids: dict[type[Any], dict[str, int]] = {part.model: {} for part in parts}
        # Models another model of the fixture refers to: the services of later rows may act on their records.
        self.parents = {
            part.model
            for part in parts
            if any(
                part.model in referenced_models(other.model)
                for other in parts
                if other.model is not part.model
            )
        }

    async def run(self) -> None:
        for position, part in enumerate(self.parts):
            load = await self._first_pass(part)
            self.report.models.append(load)
            if load.error_rows:
                self.report.not_tried = [later.table for later in self.parts[position + 1 :]]
                return
        # Last model first, as later rows act on earlier records; again while a round changes anything,
        # since a service may act on records that come later in the order (an order restocks its products).
        loads = {load.table: load for load in self.report.models}
        parents = [part for part in reversed(self.parts) if part.model in self.parents]
        changed: list[str] = []
        for _round in range(len(parents) + 1):
            changed = []
            for part in parents:
                if await self._settle(part, loads[part.table]):
                    changed.append(part.table)
                if loads[part.table].error_rows:
                    return
            if not changed:
                return
        raise AppError(
            f"Loading the fixture does not settle: each pass changes {', '.join(changed)} again, "
            "so those rows never end as the file has them."
        )

    # First pass: create or match every row -------------------------------------------

    async def _first_pass(self, part: FixtureModel) -> ModelLoad:
        load = ModelLoad(part.table)
        if not part.rows:
            return load
        columns = _columns(part)
        rows, errors = self._rewritten(part, columns, list(enumerate(part.rows, start=1)))
        if errors:
            load.rows = errors
            return load
        layers = self._layers(part, columns, rows, load)
        if load.rows:  # rows caught in a circle
            return load
        headers, rows, id_index = _with_id_column(part, columns, rows)
        file_ids = {number: cells[id_index] for number, cells in rows} if id_index is not None else {}
        if natural_key(part.model) == "id" and id_index is not None:
            await self._match_by_content(part, columns, rows, id_index)
        kept = self._kept_columns(part, columns, len(headers))
        by_number = dict(rows)
        for numbers in layers:
            layer = [(number, self._rewrite_self(part, columns, by_number[number])) for number in numbers]
            table = Table(
                "json",
                [headers[index] for index in kept],
                [(n, [cells[i] for i in kept]) for n, cells in layer],
            )
            report = await self._import(part, table, done_before=len(load.rows))
            load.rows = sorted([*load.rows, *report.rows], key=lambda row: row.number)
            if not report.written:
                return load
            if report.import_id is not None:
                load.import_ids.append(report.import_id)
            for outcome in report.rows:
                original = file_ids.get(outcome.number)
                if isinstance(original, str) and outcome.record_id is not None:
                    self.ids[part.model][original] = outcome.record_id
        return load

    def _rewritten(
        self, part: FixtureModel, columns: dict[int, ExchangeField], rows: list[tuple[int, list[Cell]]]
    ) -> tuple[list[tuple[int, list[Cell]]], list[RowOutcome]]:
        """`rows` with the ids naming records of other models of the fixture turned into this database's."""
        by_id = {
            index: item
            for index, item in columns.items()
            if item.kind in ("reference", "references")
            and item.target_key == "id"
            and item.target in self.ids
            and item.target is not part.model
        }
        errors: list[RowOutcome] = []
        rewritten: list[tuple[int, list[Cell]]] = []
        for number, cells in rows:
            cells = list(cells)
            problems: dict[str, list[str]] = {}
            for index, item in by_id.items():
                target: Any = item.target
                known = self.ids[target]
                names = _names(cells[index])
                missing = [name for name in names if name not in known]
                if missing:
                    noun = service_for(target)(self.uow).noun
                    problems[item.label] = [f"No {noun} with the ID {', '.join(missing)} in the fixture."]
                    continue
                new = [str(known[name]) for name in names]
                cells[index] = new if isinstance(cells[index], list) else (new[0] if new else None)
            if problems:
                errors.append(
                    RowOutcome(number, "error", _row_key(cells, columns, part.model), errors=problems)
                )
            rewritten.append((number, cells))
        return rewritten, errors

    async def _match_by_content(
        self,
        part: FixtureModel,
        columns: dict[int, ExchangeField],
        rows: list[tuple[int, list[Cell]]],
        id_index: int,
    ) -> None:
        """Set each row's id to that of a live record holding the same values, or to none (a new record).

        Records are paired with rows one to one, in id order, so two equal rows match two equal records.
        """
        compared = {
            index: item.name
            for index, item in columns.items()
            if item.kind != "id" and item.target is not part.model
        }
        names = sorted(compared.values())
        exported = [_field_named(part.model, label) for label in export_headers(part.model, self.uow.actor)]
        records: dict[tuple[Any, ...], list[str]] = {}
        async for cells in export_rows(self.uow, part.model):
            values = {item.name: cell for item, cell in zip(exported, cells, strict=True)}
            signature = tuple(_comparable(values.get(name)) for name in names)
            records.setdefault(signature, []).append(str(values["id"]))
        for _number, cells in rows:
            values = {name: cells[index] for index, name in compared.items()}
            signature = tuple(_comparable(values.get(name)) for name in names)
            matches = records.get(signature)
            cells[id_index] = matches.pop(0) if matches else None

    def _kept_columns(self, part: FixtureModel, columns: dict[int, ExchangeField], width: int) -> list[int]:
        """The columns set on the first pass: all, less the initial-state ones of a model others refer to."""
        if part.model not in self.parents:
            return list(range(width))
        deferred = _state_fields(part.model)
        return [
            index
            for index in range(width)
            if columns.get(index) is None or columns[index].name not in deferred
        ]

    def _layers(
        self,
        part: FixtureModel,
        columns: dict[int, ExchangeField],
        rows: list[tuple[int, list[Cell]]],
        load: ModelLoad,
    ) -> list[list[int]]:
        """The row numbers in layers: rows naming no other row of the file as their parent first, then
        their children, and so on. Rows caught in a circle are errors (added to `load`)."""
        own_references = [item for item in columns.values() if item.target is part.model]
        if not own_references:
            return [[number for number, _ in rows]]
        index_of = {item.name: index for index, item in columns.items()}
        # (the column naming the parent, the column of the key it names it by)
        pointers = [
            (index_of[item.name], index_of[item.target_key])
            for item in own_references
            if item.target_key in index_of
        ]
        keys = {(key, _text_of(cells[key])) for _, cells in rows for _, key in pointers if cells[key]}
        parents = {
            number: {(key, name) for parent, key in pointers for name in _names(cells[parent])} & keys
            for number, cells in rows
        }
        layers: list[list[int]] = []
        placed: set[tuple[int, str]] = set()
        pending = [number for number, _ in rows]
        by_number = dict(rows)
        while pending:
            layer = [number for number in pending if parents[number] <= placed]
            if not layer:
                label = own_references[0].label
                load.rows.extend(
                    RowOutcome(
                        number,
                        "error",
                        _row_key(by_number[number], columns, part.model),
                        errors={
                            label: [
                                f"Its {label.lower()} is itself or one of its descendants in the fixture."
                            ]
                        },
                    )
                    for number in pending
                )
                return layers
            layers.append(layer)
            placed |= {(key, _text_of(by_number[number][key])) for number in layer for _, key in pointers}
            pending = [number for number in pending if number not in set(layer)]
        return layers

    def _rewrite_self(
        self, part: FixtureModel, columns: dict[int, ExchangeField], cells: list[Cell]
    ) -> list[Cell]:
        """A row's references by id to rows of its own model, as ids in this database (earlier layers')."""
        known = self.ids[part.model]
        cells = list(cells)
        for index, item in columns.items():
            if item.target is part.model and item.target_key == "id" and cells[index]:
                names = _names(cells[index])
                new = [str(known.get(name, name)) for name in names]
                cells[index] = new if isinstance(cells[index], list) else new[0]
        return cells

    # Second pass: the states, and the values later models' services changed ---------

    async def _settle(self, part: FixtureModel, load: ModelLoad) -> bool:
        """Apply `part`'s rows again, in full, if the records differ from them; whether they did."""
        if not part.rows:
            return False
        columns = _columns(part)
        rows, _ = self._rewritten(part, columns, list(enumerate(part.rows, start=1)))
        headers, rows, id_index = _with_id_column(part, columns, rows)
        if natural_key(part.model) == "id" and id_index is not None:
            record_ids = {outcome.number: outcome.record_id for outcome in load.rows}
            for number, cells in rows:
                cells[id_index] = str(record_ids[number])
        rows = [(number, self._rewrite_self(part, columns, cells)) for number, cells in rows]
        table = Table("json", headers, rows)
        preview = await preview_import(
            self.uow, part.model, table, file_name=self.file_name, file_hash=self.file_hash
        )
        if all(row.status == "unchanged" for row in preview.rows):
            return False
        report = await self._import(part, table, done_before=0)
        # A row new on the first pass stays new; one found unchanged then was changed now.
        merged = {outcome.number: outcome for outcome in load.rows}
        for outcome in report.rows:
            first = merged.get(outcome.number)
            if outcome.status == "error" or first is None or first.status == "unchanged":
                merged[outcome.number] = outcome
        load.rows = [merged[number] for number in sorted(merged)]
        if report.written and report.import_id is not None:
            load.import_ids.append(report.import_id)
        return True

    async def _import(self, part: FixtureModel, table: Table, *, done_before: int) -> ImportReport:
        """Confirm `table` (all its rows or none), telling the progress of the model's rows."""

        def progress(done: int, _total: int) -> None:
            if self.progress is not None:
                self.progress(part.table, done_before + done, len(part.rows))

        try:
            return await confirm_import(
                self.uow,
                part.model,
                table,
                file_name=self.file_name,
                file_hash=self.file_hash,
                progress=progress,
            )
        except FileRefused as exc:
            raise BadFixture(f"{part.table}: {exc.message}") from exc


# Helpers ------------------------------------------------------------------------------


def _columns(part: FixtureModel) -> dict[int, ExchangeField]:
    """Header index -> the exchange field it gives (as the import maps headers)."""
    by_key = {key: item for item in exchange_fields(part.model) for key in item.header_keys}
    columns = {
        index: by_key[header_key(header)]
        for index, header in enumerate(part.headers)
        if header_key(header) in by_key
    }
    natural = natural_key(part.model)
    if natural != "id" and natural not in {item.name for item in columns.values()}:
        label = next(item.label for item in exchange_fields(part.model) if item.name == natural)
        raise BadFixture(f"The {part.table} rows have no {label} column, which they are matched by.")
    return columns


def _id_index(columns: dict[int, ExchangeField]) -> int | None:
    return next((index for index, item in columns.items() if item.kind == "id"), None)


def _with_id_column(
    part: FixtureModel, columns: dict[int, ExchangeField], rows: list[tuple[int, list[Cell]]]
) -> tuple[list[str], list[tuple[int, list[Cell]]], int | None]:
    """The headers and rows, with an ID column added when rows are matched by id and the file has none
    (it carries the id of the record each row matches)."""
    index = _id_index(columns)
    if index is not None or natural_key(part.model) != "id":
        return list(part.headers), rows, index
    return [*part.headers, "ID"], [(number, [*cells, None]) for number, cells in rows], len(part.headers)


def _field_named(model: type[Any], label: str) -> ExchangeField:
    return next(item for item in exchange_fields(model) if item.label == label)


def _state_fields(model: type[Any]) -> set[str]:
    """Inputs holding a record's state: one of a fixed set of values (an enum), with a default to start at."""
    schema = service_for(model).create_schema
    states = set()
    for name, info in schema.model_fields.items():
        if info.is_required():
            continue
        kinds = [info.annotation, *typing.get_args(info.annotation)]
        if any(isinstance(kind, type) and issubclass(kind, Enum) for kind in kinds):
            states.add(name)
    return states


def _row_key(cells: Sequence[Cell], columns: dict[int, ExchangeField], model: type[Any]) -> str:
    natural = natural_key(model)
    index = next((index for index, item in columns.items() if item.name == natural), None)
    return _text_of(cells[index]) if index is not None else ""


def _names(cell: Cell) -> list[str]:
    if cell is None:
        return []
    return [part for part in (cell if isinstance(cell, list) else [cell]) if part]


def _text_of(cell: Cell) -> str:
    if cell is None:
        return ""
    return ", ".join(cell) if isinstance(cell, list) else cell


def _comparable(cell: Cell) -> object:
    """A cell as records and rows are compared: empty is empty, lists in any order."""
    if cell is None or cell == "" or cell == []:
        return None
    if isinstance(cell, list):
        return tuple(sorted(cell))
    return cell.strip()
