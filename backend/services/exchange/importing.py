"""Import a file into any model through its service: a preview that writes nothing, then a confirm.

Every row goes through the model's service exactly as a form does: its input
schema (`parse_create` / `parse_update`), its rules (`build` / `apply`), its
permission checks and its database constraints. Rows are matched to records
by id or by the model's natural key (`Policy(natural_key=...)`); cells that
name related records take their natural key or id (backend/services/exchange/fields.py).

Speed comes from batches, not from skipping rules: the records a file
refers to are loaded a batch at a time (so the rules find them without a
query each), and a batch of rows is flushed at once, in a savepoint. Only
when something in a batch fails is it replayed row by row, each row in its
own savepoint, to say which rows failed and why.

The preview runs the same writes and rolls them back. The confirm writes in
the caller's transaction: all or nothing, or every row that can be written
when `skip_errors` is set; each audit entry carries the import's id, and one
entry of action "import" says who imported which file (by name and SHA-256).
"""

from __future__ import annotations

import hashlib
import inspect as pyinspect
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from sqlalchemy import String, inspect
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from backend.db.audit import AUDIT_ENABLED_KEY, IMPORT_ID_KEY, event_entry
from backend.db.uow import UnitOfWork
from backend.errors import AppError, Conflict, PermissionDenied, ValidationFailed
from backend.repositories.base import Held, IntegrityViolation
from backend.services import masking
from backend.services.base import CrudService
from backend.services.exchange.collector import fewer_cycle_collections
from backend.services.exchange.fields import (
    ExchangeField,
    exchange_fields,
    header_key,
    natural_key,
    read_only_headers,
    split_keys,
)
from backend.services.exchange.new_rows import NewRows
from backend.services.exchange.reading import Cell, Table
from backend.services.registry import service_for
from backend.values import is_id_text

RowStatus = Literal["new", "changed", "unchanged", "error"]
Progress = Callable[[int, int], Awaitable[None] | None]
BATCH = 2000
LOOKUP_CHUNK = 1000  # keys per IN (...) query: well under every database's parameter limit
MAX_LISTED_ROWS = 10  # rows named in a file-level message (duplicate keys)
ANALYZE_AFTER_ROWS = 1_000  # a confirm writing this many rows refreshes the table's planner statistics


class FileRefused(ValidationFailed):
    """The file as a whole cannot be imported (two rows with one key, two columns for one field)."""

    def __init__(self, message: str) -> None:
        super().__init__({"file": [message]}, message)


@dataclass
class RowOutcome:
    number: int  # the row as a person counts it in the file
    status: RowStatus
    key: str  # what the row is matched by, as written in the file ("" for a new row without one)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field label -> (before, after)
    errors: dict[str, list[str]] = field(default_factory=dict)  # field label (or "row") -> messages
    record_id: int | None = None  # the record written or matched (a new one's id once it is flushed)


@dataclass
class ImportReport:
    model: str
    file_name: str
    file_hash: str
    match_by: str  # the field rows are matched on: "id" or the natural key
    rows: list[RowOutcome]
    unknown_headers: list[str]
    ignored_headers: list[str]  # known, but not imported (read-only, or a field this actor may not see)
    notes: list[str]
    import_id: str | None = None
    written: bool = False

    @property
    def totals(self) -> dict[str, int]:
        return tally(self.rows)

    @property
    def error_rows(self) -> list[RowOutcome]:
        return [row for row in self.rows if row.status == "error"]


def tally(rows: Iterable[RowOutcome]) -> dict[str, int]:
    """How many rows are new, changed, unchanged and in error."""
    counts = dict.fromkeys(("new", "changed", "unchanged", "error"), 0)
    for row in rows:
        counts[row.status] += 1
    return counts


FILE_CHANGED = (
    "The file is not the one that was previewed (its contents changed). "
    "Nothing was imported; preview it again."
)


def file_hash(data: bytes) -> str:
    """The SHA-256 of a file, which a confirm compares with its preview's."""
    return hashlib.sha256(data).hexdigest()


async def preview_import(
    uow: UnitOfWork,
    model: type[Any],
    table: Table,
    *,
    key: str | None = None,
    file_name: str = "",
    file_hash: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """What importing `table` would do, row by row; nothing is written (needs `<table>.import`)."""
    run = _ImportRun(
        uow, model, table, key=key, file_name=file_name, file_hash=file_hash, progress=progress, writes=False
    )
    audit_was = uow.session.info.get(AUDIT_ENABLED_KEY, True)
    uow.session.info[AUDIT_ENABLED_KEY] = False  # rolled back anyway: no entries to write
    try:
        async with uow.session.begin_nested() as everything:
            await run.execute()
            await everything.rollback()
    finally:
        uow.session.info[AUDIT_ENABLED_KEY] = audit_was
    return run.report


async def confirm_import(
    uow: UnitOfWork,
    model: type[Any],
    table: Table,
    *,
    file_name: str,
    file_hash: str,
    key: str | None = None,
    skip_errors: bool = False,
    expected_hash: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import `table` in the unit of work's transaction (the caller commits; needs `<table>.import`).

    All or nothing: when a row has an error, nothing is written (`report.written`
    is False) unless `skip_errors`, which writes every other row. `expected_hash`
    is the hash the preview saw: a different file is refused with `Conflict`.
    """
    if expected_hash is not None and expected_hash != file_hash:
        raise Conflict(FILE_CHANGED)
    run = _ImportRun(
        uow, model, table, key=key, file_name=file_name, file_hash=file_hash, progress=progress, writes=True
    )
    report = run.report
    report.import_id = str(uuid.uuid4())
    uow.session.info[IMPORT_ID_KEY] = report.import_id
    try:
        async with uow.session.begin_nested() as everything:
            await run.execute()
            if report.error_rows and not skip_errors:
                await everything.rollback()
                return report
    finally:
        uow.session.info.pop(IMPORT_ID_KEY, None)
    totals = report.totals
    uow.session.add(
        event_entry(
            uow.actor,
            action="import",
            model=run.service.table,
            object_repr=file_name,
            changes={
                "file": file_name,
                "sha256": file_hash,
                "new": totals["new"],
                "changed": totals["changed"],
                "unchanged": totals["unchanged"],
                "skipped_errors": totals["error"],
            },
            import_id=report.import_id,
        )
    )
    await uow.session.flush()
    if totals["new"] + totals["changed"] >= ANALYZE_AFTER_ROWS:
        # A bulk write: the planner's statistics must describe the table as it is now (statistics.py),
        # or the next lookups by key pick a trigram index scan and take seconds.
        await run.service.repo.analyze()
    report.written = True
    return report


@dataclass
class _Row:
    number: int
    key: str
    values: dict[str, Any]  # input field name -> parsed cell (references resolved to ids)
    cells: dict[str, Any] = field(default_factory=dict)  # input field name -> the cell as the file has it
    existing: Held | None = None  # the record the row is matched to, as plain values to compare with
    record: Any = None  # that record itself, loaded only when the row changes it
    written: Any = None  # the record this row creates or changes, once staged
    outcome: RowOutcome | None = None

    def release(self) -> None:
        """Let go of what the row was checked and written with, once its outcome is known."""
        self.values = self.cells = {}
        self.existing = self.record = self.written = None

    def settle(self) -> None:
        """Note the id of the record the row wrote, now that it is flushed."""
        if self.outcome is None or self.outcome.status == "error":
            return
        if self.written is not None:
            self.outcome.record_id = self.written.id
        elif self.existing is not None:
            self.outcome.record_id = self.existing.values["id"]


class _ImportRun:
    """One pass over a file: map the headers, resolve keys and references, write in batches."""

    def __init__(
        self,
        uow: UnitOfWork,
        model: type[Any],
        table: Table,
        *,
        key: str | None,
        file_name: str,
        file_hash: str,
        progress: Progress | None,
        writes: bool,
    ) -> None:
        self.uow = uow
        self.writes = writes  # a confirm; a preview checks every row the same way and writes what it must
        self.model = model
        self.table = table
        self.progress = progress
        self.service: CrudService[Any, Any, Any] = service_for(model)(uow)
        self.service.require("import")
        self.columns, unknown, ignored = self._map_headers()
        self._many = [item.attribute for item in self.columns.values() if item.kind == "references"]
        self._collections = {
            item.name: item.attribute for item in self.columns.values() if item.kind == "references"
        }
        self.match_by = self._match_field(key)
        # (column index, field, whether the cell names several records), per mapped column
        self._plan = [(index, item.name, item.kind == "references") for index, item in self.columns.items()]
        generic = self.service.builds_generically()
        self.new_rows = NewRows(self.service) if generic else None
        self.report = ImportReport(
            model=self.service.table,
            file_name=file_name,
            file_hash=file_hash,
            match_by=self.match_by,
            rows=[],
            unknown_headers=unknown,
            ignored_headers=ignored,
            notes=list(table.notes),
        )
        self._labels = {item.name: item.label for item in exchange_fields(model)}
        # reference field -> related id -> the name files use for it (for the preview's before/after)
        self._related_names: dict[str, dict[int, str]] = {}
        # The related records the rows of the current batch checked by the service's rules name
        # (`_hold_related`).
        self._related: list[Any] = []

    # Headers and keys -------------------------------------------------------------

    def _map_headers(self) -> tuple[dict[int, ExchangeField], list[str], list[str]]:
        by_key = {key: item for item in exchange_fields(self.model) for key in item.header_keys}
        read_only = read_only_headers(self.model)
        hidden = {
            name
            for name in masking.sensitive_fields(self.service.table)
            if not masking.can_see(self.service.actor, self.service.table, name)
        }
        columns: dict[int, ExchangeField] = {}
        seen: dict[str, str] = {}
        unknown: list[str] = []
        ignored: list[str] = []
        for index, header in enumerate(self.table.headers):
            item = by_key.get(header_key(header))
            if item is None:
                (ignored if header_key(header) in read_only else unknown).append(header)
                continue
            if item.name in seen:
                raise FileRefused(f'The columns "{seen[item.name]}" and "{header}" both give {item.label}.')
            seen[item.name] = header
            if item.name in hidden:
                ignored.append(header)  # personal data this actor may not see is not theirs to set either
                continue
            columns[index] = item
        return columns, unknown, ignored

    def _match_field(self, key: str | None) -> str:
        """The field rows are matched on: the one asked for, else the natural key when given, else id."""
        given = {item.name for item in self.columns.values()}
        candidates = {"id", natural_key(self.model)}
        if key is not None:
            chosen = next((name for name in candidates if header_key(name) == header_key(key)), None)
            if chosen is None:
                allowed = " or ".join(sorted(candidates))
                raise FileRefused(f"Rows can be matched by {allowed}, not by {key}.")
            if chosen not in given:
                raise FileRefused(f"The file has no {self._label(chosen)} column to match rows by.")
            return chosen
        natural = natural_key(self.model)
        return natural if natural in given else "id"

    def _label(self, name: str) -> str:
        return next((item.label for item in exchange_fields(self.model) if item.name == name), name)

    # The run ---------------------------------------------------------------------

    async def execute(self) -> None:
        with fewer_cycle_collections():
            await self._execute()

    async def _execute(self) -> None:
        rows = [self._parse(number, cells) for number, cells in self.table.rows]
        self._refuse_duplicate_keys(rows)
        total = len(rows)
        done = 0
        for start in range(0, total, BATCH):
            batch = rows[start : start + BATCH]
            await self._prepare(batch)
            await self._write(batch)
            done += len(batch)
            self.report.rows.extend(row.outcome for row in batch if row.outcome is not None)
            for row in batch:
                # The outcome is all that is kept: a record held to the end of a 100,000-row file is
                # memory, and work for the garbage collector each time it scans what survives.
                row.release()
            if self.progress is not None:
                result = self.progress(done, total)
                if pyinspect.isawaitable(result):
                    await result

    def _parse(self, number: int, cells: Sequence[Cell]) -> _Row:
        width = len(cells)
        values: dict[str, Any] = {
            name: (_split(cells[index]) if many else cells[index])
            if index < width
            else ([] if many else None)
            for index, name, many in self._plan
        }
        key_value = values.pop(self.match_by, None) if self.match_by == "id" else values.get(self.match_by)
        if self.match_by != "id":
            values.pop("id", None)  # matched by the natural key: an id column is only informative
        return _Row(number, str(key_value or ""), values, cells=dict(values))

    def _refuse_duplicate_keys(self, rows: Sequence[_Row]) -> None:
        first: dict[str, int] = {}
        clashes: list[str] = []
        for row in rows:
            if not row.key:
                continue
            # Exact text, as the database's unique index compares it.
            if row.key in first:
                clashes.append(f"rows {first[row.key]} and {row.number} ({row.key})")
            else:
                first[row.key] = row.number
        if clashes:
            listed = "; ".join(clashes[:MAX_LISTED_ROWS])
            more = f" and {len(clashes) - MAX_LISTED_ROWS} more" if len(clashes) > MAX_LISTED_ROWS else ""
            label = self._label(self.match_by)
            raise FileRefused(f"Each {label} may appear once in a file, but it repeats: {listed}{more}.")

    async def _prepare(self, batch: Sequence[_Row]) -> None:
        """Find the records the batch's rows update, and resolve the related records its cells name."""
        await self._load_existing(batch)
        self._related = []
        for item in self.columns.values():
            if item.kind in ("reference", "references") and item.target is not None:
                await self._resolve(batch, item)

    async def _load_existing(self, batch: Sequence[_Row]) -> None:
        """Find the records the rows are matched to, as plain values (most rows of a file sent back
        unchanged need nothing more)."""
        keyed = [row for row in batch if row.key]
        if not keyed:
            return
        found: dict[str, Held] = {}
        for chunk in _chunks(keyed, LOOKUP_CHUNK):
            if self.match_by == "id":
                wanted: list[Any] = [int(row.key) for row in chunk if is_id_text(row.key)]
            else:
                wanted = [row.key for row in chunk]
            held = await self.service.repo.held_values(self.match_by, wanted, collections=self._many)
            for record in held:
                found[str(record.values[self.match_by])] = record
        for row in keyed:
            row.existing = found.get(row.key)
            if row.existing is None and self.match_by == "id":
                row.outcome = RowOutcome(
                    row.number, "error", row.key, errors={"ID": [_no_record(self, row.key)]}
                )

    async def _resolve(self, batch: Sequence[_Row], item: ExchangeField) -> None:
        """Turn the cells naming related records into their ids; a name nothing matches is a row error."""
        target = item.target
        if target is None:
            return
        field_name = item.name
        names: set[str] = set()
        for row in batch:
            cell = row.values.get(field_name)
            if isinstance(cell, list):
                names.update(cell)
            elif cell:
                names.add(cell)
        if not names:
            return
        repo = self.uow.repo(target)
        id_of: dict[str, Any] = {}  # a name the cells use -> the id of the record it names
        shown = self._related_names.setdefault(item.name, {})
        # Live records first; then, for names still unknown, records in the trash: a product keeps a
        # deleted tag it holds (its export names it), and the service's rules refuse a new reference.
        # Plain values: a batch can name a thousand categories, and the rules that need the records
        # themselves load them for the rows they check (`_hold_related`).
        for include_deleted in (False, True):
            unknown = sorted(names - id_of.keys())
            for chunk in _chunks(unknown, LOOKUP_CHUNK):
                found: list[tuple[Any, Any]] = []
                if item.target_key != "id":
                    found += await repo.ids_and_keys(
                        item.target_key, chunk, key=item.target_key, include_deleted=include_deleted
                    )
                found += await repo.ids_and_keys(
                    "id",
                    [int(name) for name in chunk if is_id_text(name)],
                    key=item.target_key,
                    include_deleted=include_deleted,
                )
                for id_, key in found:
                    if item.target_key != "id":
                        id_of.setdefault(str(key), id_)
                    id_of.setdefault(str(id_), id_)
                    shown[id_] = str(key)
        noun = str(target.__tablename__).replace("_", " ")
        many = item.kind == "references"
        for row in batch:
            values = row.values
            if row.outcome is not None or field_name not in values:
                continue
            cell = values[field_name]
            wanted = cell if isinstance(cell, list) else [cell] if cell else []
            ids = [id_of.get(key) for key in wanted]
            if None in ids:
                which = ", ".join(key for key in wanted if key not in id_of)
                row.outcome = RowOutcome(
                    row.number, "error", row.key, errors={item.label: [f"No {noun} named {which}."]}
                )
                continue
            values[field_name] = ids if many else (ids[0] if ids else None)

    async def _write(self, batch: Sequence[_Row]) -> None:
        """Check and write the batch: new rows of a generic service in bulk (`NewRows`), the rest through
        the service's rules, in a savepoint replayed a row at a time when anything in it fails."""
        pending = [row for row in batch if row.outcome is None]
        if self.new_rows is not None:
            await self._write_new_in_bulk([row for row in pending if row.existing is None], self.new_rows)
            pending = [row for row in pending if row.existing is not None]
        for row in pending:
            if row.existing is not None and not self._changed_fields(row):
                row.outcome = RowOutcome(row.number, "unchanged", row.key)
                row.settle()
        pending = [row for row in pending if row.outcome is None]
        if not pending:
            return
        await self._hold_related(pending)
        await self._load_records(pending)
        await self._name_current_references(pending)
        try:
            async with self.service.repo.savepoint():
                for row in pending:
                    await self._apply(row)
                    if row.outcome is not None and row.outcome.status == "error":
                        raise _BatchFailed
                # The batch's new records in a few set-based INSERTs, audited; changes go with the flush.
                built = [
                    row.written for row in pending if row.outcome is not None and row.outcome.status == "new"
                ]
                for obj in await self.service.repo.insert_built(built):
                    self.service.repo.stage(obj)
        except (_BatchFailed, IntegrityViolation, StaleDataError, AppError):
            await self._replay(pending)
            return
        for row in pending:
            row.settle()

    async def _write_new_in_bulk(self, rows: Sequence[_Row], new_rows: NewRows) -> None:
        """Validate the new rows, check what they refer to and their unique values for the batch at once,
        and (on a confirm) insert the valid ones; a row the database still refuses is replayed alone."""
        if not rows:
            return
        try:
            self.service.require("add")
        except PermissionDenied as exc:
            for row in rows:
                row.outcome = self._error(row, {"row": [exc.message]})
            return
        inputs = [
            _fill_blanks(
                self.model,
                {name: value for name, value in row.values.items() if value is not None},
                creating=True,
            )
            for row in rows
        ]
        parsed: list[tuple[_Row, Any]] = []
        for row, payload in zip(rows, self.service.parse_create_many(inputs), strict=True):
            if isinstance(payload, ValidationFailed):
                row.outcome = self._error(row, payload.errors or {"row": [payload.message]})
            else:
                parsed.append((row, payload))
        # The rows' keys were just looked for among the live records (`_load_existing`) and not found.
        absent = {self.match_by: {row.key for row in rows if row.key}} if self.match_by != "id" else None
        checked = await new_rows.check(
            [row.number for row, _ in parsed], [payload for _, payload in parsed], absent=absent
        )
        valid = []
        for (row, _payload), item in zip(parsed, checked, strict=True):
            if item.record is None:
                row.outcome = self._error(row, item.errors)
            else:
                row.outcome = RowOutcome(row.number, "new", row.key)
                valid.append((row, item))
        if not self.writes or not valid:
            return
        try:
            async with self.service.repo.savepoint():
                inserted = await new_rows.insert([item for _row, item in valid])
        except IntegrityViolation:
            await self._replay([row for row, _item in valid])
            return
        for (row, _item), values in zip(valid, inserted, strict=True):
            if row.outcome is not None:
                row.outcome.record_id = values["id"]

    async def _hold_related(self, rows: Sequence[_Row]) -> None:
        """Load the related records `rows` name, a batch at a time, for the service's rules to check them
        one row at a time: held here, the session's (weak) identity map keeps them, so the rules find
        them without a query per row."""
        for item in self.columns.values():
            if item.kind not in ("reference", "references") or item.target is None:
                continue
            ids: set[Any] = set()
            for row in rows:
                value = row.values.get(item.name)
                ids.update(value if isinstance(value, list) else () if value is None else (value,))
            repo = self.uow.repo(item.target)
            for chunk in _chunks(sorted(ids), LOOKUP_CHUNK):
                self._related += await repo.by_keys("id", chunk, include_deleted=True)

    async def _name_current_references(self, rows: Sequence[_Row]) -> None:
        """The names files use for the records the rows' records refer to now (in the trash or not), to
        show a change before and after by name; only the rows that change anything get here."""
        for item in self.columns.values():
            if item.kind not in ("reference", "references") or item.target is None:
                continue
            shown = self._related_names.setdefault(item.name, {})
            ids: set[Any] = set()
            for row in rows:
                if row.existing is not None:
                    current = self._current(row.existing, item.name)
                    ids.update(id_ for id_ in (current if isinstance(current, list) else [current]) if id_)
            unknown = sorted(ids - shown.keys())
            for chunk in _chunks(unknown, LOOKUP_CHUNK):
                for obj in await self.uow.repo(item.target).by_keys("id", chunk, include_deleted=True):
                    shown[obj.id] = str(getattr(obj, item.target_key))

    async def _load_records(self, rows: Sequence[_Row]) -> None:
        """Load the records the rows change, to change them through the service (reloaded: a failed
        savepoint expired what it had changed)."""
        ids = [row.existing.values["id"] for row in rows if row.existing is not None]
        options = [selectinload(getattr(self.model, name)) for name in self._many]
        records: dict[Any, Any] = {}
        for chunk in _chunks(ids, LOOKUP_CHUNK):
            for obj in await self.service.repo.by_keys("id", chunk, options=options, refresh=True):
                records[obj.id] = obj
        for row in rows:
            row.record = None if row.existing is None else records.get(row.existing.values["id"])

    async def _replay(self, rows: Sequence[_Row]) -> None:
        await self._hold_related(rows)
        await self._load_records(rows)
        for row in rows:
            row.outcome = row.written = None
            try:
                async with self.service.writing(row.record) as write:
                    await self._apply(row)
                    if row.outcome is not None and row.outcome.status == "error":
                        raise _RowFailed
                    if row.existing is None and row.written is not None:
                        self.service.repo.stage(row.written)  # one row: the flush says what is wrong
                        write.obj = row.written  # so a clash names the value it clashed on
                row.settle()
            except _RowFailed:
                continue
            except ValidationFailed as exc:
                row.outcome = self._error(row, exc.errors or {"row": [exc.message]})
            except (Conflict, PermissionDenied) as exc:
                where = getattr(exc, "field", None)
                row.outcome = self._error(row, {self._labels.get(where or "", "row"): [exc.message]})

    async def _apply(self, row: _Row) -> None:
        """Validate `row` through the service: a change is made to its record, a new record is built
        (`row.written`) for the caller to insert (inside the caller's savepoint)."""
        try:
            if row.existing is None:
                self.service.require("add")
                data = {name: value for name, value in row.values.items() if value is not None}
                payload = self.service.parse_create(_fill_blanks(self.model, data, creating=True))
                row.written = await self.service.build(payload)
                row.outcome = RowOutcome(row.number, "new", row.key)
                return
            held = row.existing
            changed = self._changed_fields(row)
            if not changed:
                row.outcome = RowOutcome(row.number, "unchanged", row.key)
                return
            self.service.require("change")
            if row.record is None:  # deleted since the batch was matched
                gone = (
                    f"This {self.service.noun} was deleted while the file was imported; nothing was changed."
                )
                row.outcome = self._error(row, {"row": [gone]})
                return
            data = _fill_blanks(self.model, {name: row.values[name] for name in changed}, creating=False)
            payload = self.service.parse_update(data)
            clashes = self.new_rows.clashes(payload.model_dump(include=set(changed))) if self.new_rows else {}
            if clashes:
                row.outcome = self._error(row, clashes)
                return
            before = {name: self._shown_current(held, name) for name in changed}
            await self.service.apply(row.record, payload)
            row.written = row.record
            row.outcome = RowOutcome(
                row.number,
                "changed",
                row.key,
                changes={
                    self._labels.get(name, name): (before[name], _shown(row.cells[name])) for name in changed
                },
            )
        except ValidationFailed as exc:
            row.outcome = self._error(row, exc.errors or {"row": [exc.message]})
        except PermissionDenied as exc:
            row.outcome = self._error(row, {"row": [exc.message]})

    def _changed_fields(self, row: _Row) -> list[str]:
        held = row.existing
        if held is None:
            return []
        changed = []
        for name, value in row.values.items():
            if name == "id":
                continue
            current = self._current(held, name)
            # Text against text, the common cell: what `_same` says, without its walk through the types.
            if type(current) is str and type(value) is str:
                if current != value.strip():
                    changed.append(name)
            elif not _same(current, value):
                changed.append(name)
        return changed

    def _current(self, held: Held, name: str) -> Any:
        attribute = self._collections.get(name)
        if attribute is not None:
            return sorted(held.related.get(attribute, ()))
        return held.values.get(name)

    def _shown_current(self, held: Held, name: str) -> Any:
        """What the record holds, as a file would write it: related records by the name files use."""
        current = self._current(held, name)
        names = self._related_names.get(name)
        if names is None:
            return _shown(current)
        ids = current if isinstance(current, list) else [] if current is None else [current]
        return ", ".join(names.get(id_, str(id_)) for id_ in ids) or None

    def _error(self, row: _Row, errors: dict[str, list[str]]) -> RowOutcome:
        labelled = {
            self._labels.get(name, "row" if name == "__all__" else name): messages
            for name, messages in errors.items()
        }
        return RowOutcome(row.number, "error", row.key, errors=labelled)


class _BatchFailed(Exception):
    """A row of the batch has an error: leave the batch's savepoint and replay it row by row."""


class _RowFailed(Exception):
    """The row has an error: leave its savepoint."""


def _no_record(run: _ImportRun, key: str) -> str:
    return (
        f"There is no {run.service.noun} with the ID {key}."
        if is_id_text(key)
        else "An ID is a whole number."
    )


def _split(cell: Cell) -> list[str]:
    """The related records one cell names: a JSON list (taken as it is: no quoting), or text written by
    `fields.join_keys` ("new, sale", a name with a comma quoted)."""
    if cell is None:
        return []
    if isinstance(cell, str) and '"' not in cell:
        # Nothing quoted (the common cell): what `split_keys` gives, without its walk over each character.
        parts: Iterable[str] = (part.strip() for part in cell.split(","))
        return [part for part in parts if part]
    parts = cell if isinstance(cell, list) else split_keys(cell)
    return [part.strip() for part in parts if part and part.strip()]


def _fill_blanks(model: type[Any], data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """An empty cell in a text column that cannot be NULL is the empty text, as a form sends it."""
    if creating:
        return data
    columns: Any = inspect(model).columns
    filled = dict(data)
    for name, value in data.items():
        column = columns.get(name)
        if value is None and column is not None and not column.nullable and isinstance(column.type, String):
            filled[name] = ""
    return filled


def _same(current: Any, given: Any) -> bool:
    """Whether a cell says what the record already holds (text compared as the schema would parse it)."""
    if isinstance(given, list):
        return sorted(given) == current if isinstance(current, list) else False
    if given is None or given == "":
        return current is None or current == ""
    if isinstance(current, Enum):
        return str(current.value) == str(given)
    if isinstance(current, bool):
        return str(given).strip().casefold() in (("true", "1", "yes") if current else ("false", "0", "no"))
    if isinstance(current, Decimal | int) and not isinstance(current, bool):
        try:
            return Decimal(str(given).strip()) == current
        except ArithmeticError:
            return False
    if isinstance(current, datetime | date | time):
        return _same_moment(current, str(given).strip())
    return str(current) == str(given).strip()


def _same_moment(current: datetime | date | time, given: str) -> bool:
    """Whether text names the same date or time, however it is written ("T" or a space, any offset)."""
    kind = datetime if isinstance(current, datetime) else type(current)
    try:
        return bool(kind.fromisoformat(given) == current)
    except (ValueError, TypeError):  # not a date, or naive against aware
        return False


def _shown(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return None if value is None else str(value)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
