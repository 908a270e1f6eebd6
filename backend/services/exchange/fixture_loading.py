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

A fixture is a snapshot of state, as Django's is, not a list of actions to
replay: every row is written as recorded (`services.restoring`), so an order
item does not take its product's stock again, and a shipped order's items or
an archived product's past orders load as they are. The services still
validate every row (schemas, live references, constraints, permissions) and
audit it; dumping the loaded database gives the same fixture back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.db.uow import UnitOfWork
from backend.services.exchange.exporting import export_headers, export_rows
from backend.services.exchange.fields import ExchangeField, exchange_fields, header_key, natural_key
from backend.services.exchange.fixtures import BadFixture, FixtureModel
from backend.services.exchange.importing import (
    FileRefused,
    ImportReport,
    RowOutcome,
    confirm_import,
    tally,
)
from backend.services.exchange.reading import Cell, Table
from backend.services.registry import service_for
from backend.services.restoring import restoring

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

    Every row is written as recorded (`restoring`): validated and audited, without
    the side effects of the action that first made it (stock taken by an order item).
    Needs `<table>.import` (and add/change) on every model. When a row has an
    error, nothing is written and `report.written` is False; the models after
    the first with errors are not tried (their rows would refer to missing ones).
    """
    loading = _FixtureLoading(uow, parts, file_name=file_name, file_hash=file_hash, progress=progress)
    with restoring(uow):
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

    async def run(self) -> None:
        for position, part in enumerate(self.parts):
            load = await self._load(part)
            self.report.models.append(load)
            if load.error_rows:
                self.report.not_tried = [later.table for later in self.parts[position + 1 :]]
                return

    async def _load(self, part: FixtureModel) -> ModelLoad:
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
        by_number = dict(rows)
        for numbers in layers:
            layer = [(number, self._rewrite_self(part, columns, by_number[number])) for number in numbers]
            table = Table("json", headers, layer)
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
