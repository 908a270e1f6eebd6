"""An import's new rows, checked and inserted a batch at a time, for services that build generically.

A service whose `build` is the generic one (`CrudService.builds_generically`)
has one rule for a new record beyond its input schema: what it refers to is
live. `references.check_new` checks that for a whole batch with a query per
referenced table, and `Repository.insert_values` inserts the batch with its
audit entries, so no ORM object is made per row. The preview runs the same
checks as the confirm and adds what the confirm learns from the database's
unique indexes (a clash with a live record, or with an earlier row of the
file), so the two agree without the preview writing anything.

A service with rules of its own (an order takes stock) goes row by row
through its `build` instead (backend/services/exchange/importing.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Index, UniqueConstraint, inspect

from backend.services.base import CrudService
from backend.services.references import LOOKUP_CHUNK, Checked, check_new


@dataclass(frozen=True)
class UniqueColumn:
    key: str
    live_only: bool  # a partial index over live rows: a record in the trash frees its value


def unique_columns(model: type[Any]) -> tuple[UniqueColumn, ...]:
    """The single columns a unique index or constraint of the model's table covers."""
    return _unique_columns(model)  # type: ignore[arg-type]  # classes are hashable; typeshed says otherwise


@cache  # a model's indexes do not change while the process runs
def _unique_columns(model: Any) -> tuple[UniqueColumn, ...]:
    table = inspect(model).local_table
    found: dict[str, UniqueColumn] = {}
    for item in (*table.indexes, *table.constraints):
        unique = isinstance(item, UniqueConstraint) or (isinstance(item, Index) and item.unique)
        columns = list(getattr(item, "columns", ()))
        if not unique or len(columns) != 1 or columns[0].primary_key:
            continue
        partial = isinstance(item, Index) and any(
            item.dialect_options[dialect].get("where") is not None for dialect in ("postgresql", "sqlite")
        )
        found[columns[0].key] = UniqueColumn(columns[0].key, live_only=partial)
    for column in table.columns:
        if column.unique and column.key not in found:
            found[column.key] = UniqueColumn(column.key, live_only=False)
    return tuple(found.values())


class NewRows:
    """Checks (and on a confirm inserts) the new rows of one import, batch after batch."""

    def __init__(self, service: CrudService[Any, Any, Any]) -> None:
        self.service = service
        # The match key too: a row is new because no live record holds its key as the file writes it,
        # but the schema may store it otherwise (" SKU" stripped), and the index compares what is stored.
        self.unique = unique_columns(service.model)
        # unique column -> value -> the file's row that gives it first, across the whole file
        self._given: dict[str, dict[Any, int]] = {column.key: {} for column in self.unique}

    async def check(
        self,
        numbers: Sequence[int],
        payloads: Sequence[BaseModel],
        *,
        absent: Mapping[str, Collection[Any]] | None = None,
    ) -> list[Checked]:
        """For each validated input (of the file's rows `numbers`): the record to insert, or why not.

        `absent`: unique column -> values this transaction has just looked for among the live records
        and not found (the rows' keys, matched to no record): not asked again.
        """
        checked = await check_new(self.service.uow, self.service.model, payloads)
        for column in self.unique:
            known = (absent or {}).get(column.key, ()) if column.live_only else ()
            await self._check_unique(column, numbers, checked, known)
        return checked

    def clashes(self, values: Mapping[str, Any]) -> dict[str, list[str]]:
        """Field messages for the unique `values` a change to a record gives that the file's new rows
        take: the confirm inserts those first, so the change would clash with them."""
        errors: dict[str, list[str]] = {}
        for column in self.unique:
            value = values.get(column.key)
            earlier = None if value is None else self._given[column.key].get(value)
            if earlier is not None:
                errors[column.key] = [self._clash(column.key, value, earlier)]
        return errors

    async def insert(self, checked: Sequence[Checked]) -> list[dict[str, Any]]:
        """Insert the checked records (audited); returns them as inserted, ids and defaults included."""
        records = [item.record for item in checked if item.record is not None]
        return await self.service.repo.insert_values(
            [record.values for record in records], [record.related for record in records]
        )

    async def _check_unique(
        self, column: UniqueColumn, numbers: Sequence[int], checked: list[Checked], absent: Collection[Any]
    ) -> None:
        given = self._given[column.key]
        batch = {
            item.record.values[column.key]
            for item in checked
            if item.record is not None and item.record.values.get(column.key) is not None
        }
        taken = await self._taken(column, sorted(batch - given.keys() - set(absent)))
        for number, item in zip(numbers, checked, strict=True):
            value = None if item.record is None else item.record.values.get(column.key)
            if value is None:
                continue
            if value in taken or value in given:
                item.errors[column.key] = [self._clash(column.key, value, given.get(value))]
                item.record = None
            else:
                given[value] = number

    async def _taken(self, column: UniqueColumn, values: Sequence[Any]) -> set[Any]:
        taken: set[Any] = set()
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = values[start : start + LOOKUP_CHUNK]
            taken |= await self.service.repo.taken(column.key, chunk, include_deleted=not column.live_only)
        return taken

    def _clash(self, column: str, value: Any, earlier_row: int | None) -> str:
        message = self.service.unique_message(column, value)
        return message if earlier_row is None else f"{message.rstrip('.')} (row {earlier_row} of this file)."
