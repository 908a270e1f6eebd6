"""Reading the audit trail and the trash: for auditors, and for restoring what was deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, inspect
from sqlalchemy.orm import MANYTOONE

from backend.auth.actor import Actor
from backend.db.policy import policy_of
from backend.db.uow import UnitOfWork
from backend.errors import NotFound, PermissionDenied
from backend.models import AuditEntry, User
from backend.repositories.audit import AuditEntryRepository
from backend.services.masking import label_for, shown_changes, shown_label
from backend.services.registry import service_for, soft_deletable_tables
from backend.values import InvalidValue, is_id, parse_id

# Entries that record an event about a record, not a change of its fields: no [old, new] diff to replay.
REVERT_ACTION = "revert"
EVENT_ACTIONS = frozenset({REVERT_ACTION})


@dataclass(frozen=True)
class Related:
    """A record an audit value refers to (a product's category, who deleted it), as the actor may see it.

    `label` is the record's label when the actor may view its kind (a user by
    username), else a neutral "category 5"; `row` is the record itself, live
    or in the trash, or None when it is gone for good, so the admin can link it.
    """

    table: str
    id: int
    label: str
    row: Any = field(default=None, compare=False, repr=False)

    @property
    def deleted(self) -> bool:
        return self.row is None or getattr(self.row, "deleted_at", None) is not None


@dataclass(frozen=True)
class AuditRecord:
    """An audit entry as one actor may see it: values it may not see are masked."""

    id: int
    created_at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    model: str
    object_id: str
    object_repr: str
    changes: dict[str, Any]
    client_address: str | None
    import_id: str | None = None  # the import that wrote it (backend/services/exchange/importing.py)
    # field -> [old, new] of the foreign keys in `changes`, as records (None where the value is None)
    related: dict[str, list[Related | None]] = field(default_factory=dict)

    @classmethod
    def shown_to(cls, actor: Actor, entry: AuditEntry) -> AuditRecord:
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            actor_id=entry.actor_id,
            actor_name=entry.actor_name,
            action=entry.action,
            model=entry.model,
            object_id=entry.object_id,
            object_repr=shown_label(actor, entry.model, entry.object_repr, entry.object_id),
            changes=shown_changes(actor, entry.model, entry.changes or {}),
            client_address=entry.client_address,
            import_id=entry.import_id,
        )

    def with_related(self, related: dict[str, list[Related | None]]) -> AuditRecord:
        return AuditRecord(**{**self.__dict__, "related": related})


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    model: str | None = None
    object_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    import_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.actor:
            found.append(AuditEntry.actor_name.ilike(f"%{_escape_like(self.actor)}%", escape="\\"))
        if self.model:
            found.append(AuditEntry.model == self.model)
        if self.object_id:
            found.append(AuditEntry.object_id == self.object_id)
        if self.action:
            found.append(AuditEntry.action == self.action)
        if self.since:
            found.append(AuditEntry.created_at >= self.since)
        if self.until:
            found.append(AuditEntry.created_at < self.until)
        if self.import_id:
            found.append(AuditEntry.import_id == self.import_id)
        return found


class AuditLog:
    """Search the audit trail (needs `audit.view`) and read one record's history."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.actor = uow.actor
        self.entries = uow.repo(AuditEntryRepository)

    async def search(
        self, filters: AuditFilters, *, before_id: int | None = None, limit: int = 50
    ) -> list[AuditRecord]:
        """Newest first; page on with `before_id` (the last id shown), which costs the same at any depth.

        Needs `audit.view`; values the actor may not see are masked (backend.services.masking).
        """
        self.actor.require("audit.view")
        entries = await self.entries.search(filters.conditions(), before_id=before_id, limit=limit)
        return [AuditRecord.shown_to(self.actor, entry) for entry in entries]

    async def stream(self, filters: AuditFilters) -> AsyncIterator[AuditRecord]:
        """Every matching entry, streamed (for CSV export), masked as `search` masks."""
        self.actor.require("audit.view")
        async for entry in self.entries.stream(filters.conditions()):
            yield AuditRecord.shown_to(self.actor, entry)

    async def history(
        self, table: str, object_id: str, *, include_children: bool = False
    ) -> list[AuditRecord]:
        """One record's timeline, oldest first, deleted records included.

        With `include_children`, entries of the rows the model lists
        in its policy's `history_children` (an order's items) are woven in.

        Needs `audit.view`, or `<table>.view`. Values the actor may not see
        (personal data without `<table>.view_pii`, secrets) are masked.
        """
        service = service_for(table)
        if not (self.actor.has_perm("audit.view") or self.actor.has_perm(f"{table}.view")):
            raise PermissionDenied(f"You do not have permission to see the history of {table} records.")
        noun = table.replace("_", " ")
        try:
            record_id = parse_id(object_id)
        except InvalidValue:
            # Every model has a whole-number id; other text is not repeated (it may come from a URL).
            raise NotFound(f"No such {noun} exists.") from None
        entries = await self.entries.of_objects(table, [str(record_id)])
        if not entries and not await self._exists(service.model, record_id):
            raise NotFound(f"No history for {noun} {record_id}.")
        if include_children:
            entries = sorted([*entries, *await self._children(service.model, record_id)], key=lambda e: e.id)
        records = [AuditRecord.shown_to(self.actor, entry) for entry in entries]
        return await RelatedLabels(self.uow).attach(records)

    async def _exists(self, model: Any, record_id: int) -> bool:
        """Whether the record is there, live or in the trash: rows loaded in bulk have no entries yet."""
        found = await self.uow.repo(model).get(record_id, include_deleted=True)
        return found is not None

    async def _children(self, model: Any, record_id: int) -> list[AuditEntry]:
        found: list[AuditEntry] = []
        for child_table, key in policy_of(model).history_children.items():
            child = service_for(child_table).model
            if not self.actor.has_perm(f"{child_table}.view") and not self.actor.has_perm("audit.view"):
                continue
            ids = await self.uow.repo(child).values(child.id, filters={key: record_id}, include_deleted=True)
            found.extend(await self.entries.of_objects(child_table, [str(i) for i in ids]))
        return found

    async def state_at(self, table: str, object_id: str, when: datetime) -> dict[str, Any] | None:
        """What the record looked like at `when`, rebuilt from its entries; None if it did not exist."""
        entries = await self.history(table, object_id)
        return replay([entry for entry in entries if entry.created_at <= when])


def replay(entries: Iterable[AuditRecord | AuditEntry]) -> dict[str, Any] | None:
    """The record's field values after `entries` (one record's, oldest first); None if it did not exist."""
    state: dict[str, Any] | None = None
    for entry in entries:
        if entry.action in EVENT_ACTIONS:
            continue
        if entry.action == "purge":
            state = None
            continue
        if state is None:
            state = {}
        for name, (_old, new) in (entry.changes or {}).items():
            state[name] = new
    return state


def references(model: Any) -> dict[str, type[Any]]:
    """Foreign-key column -> the model it refers to, from the model's many-to-one relationships."""
    found: dict[str, type[Any]] = {}
    for relationship in inspect(model).relationships:
        columns = list(relationship.local_columns)
        if relationship.direction is MANYTOONE and len(columns) == 1:
            found[str(columns[0].key)] = relationship.mapper.class_
    return found


class RelatedLabels:
    """Labels for the record ids in audit diffs: one query per referenced model, however many entries."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.actor = uow.actor

    async def attach(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        wanted: dict[type[Any], set[int]] = {}
        plans: list[dict[str, type[Any]]] = []
        for record in records:
            refs = _model_references(record.model)
            plans.append(refs)
            for name, target in refs.items():
                for value in record.changes.get(name) or ():
                    if is_id(value):
                        wanted.setdefault(target, set()).add(int(value))
        found = {target: await self.rows(target, ids) for target, ids in wanted.items()}
        result = []
        for record, refs in zip(records, plans, strict=True):
            related = {
                name: [self.related(target, value, found[target]) for value in record.changes[name]]
                for name, target in refs.items()
                if isinstance(record.changes.get(name), list) and target in found
            }
            result.append(record.with_related(related) if related else record)
        return result

    async def rows(self, model: type[Any], ids: Iterable[int]) -> dict[int, Any]:
        rows = await self.uow.repo(model).get_many(sorted(ids), include_deleted=True)
        return {row.id: row for row in rows}

    def related(self, model: type[Any], value: Any, rows: dict[int, Any]) -> Related | None:
        if not is_id(value):
            return None
        table, record_id = str(model.__tablename__), int(value)
        row = rows.get(record_id)
        neutral = f"{table.replace('_', ' ')} {record_id}"
        # Actors are named in every entry already; other records only for those who may view their kind.
        if row is None or not (model is User or self.actor.has_perm(f"{table}.view")):
            return Related(table, record_id, neutral, row)
        return Related(table, record_id, label_for(self.actor, row) or neutral, row)


def _model_references(table: str) -> dict[str, type[Any]]:
    try:
        return references(service_for(table).model)
    except NotFound:  # an entry of a model since removed from the admin
        return {}


@dataclass(frozen=True)
class TrashItem:
    model: str
    object_id: int
    label: str
    deleted_at: datetime
    deleted_by: str


class Trash:
    """Deleted records of every model the actor may view (needs `trash.view`)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.actor = uow.actor

    def models(self) -> list[str]:
        return [table for table in soft_deletable_tables() if self.actor.has_perm(f"{table}.view")]

    async def list(
        self,
        *,
        model: str | None = None,
        deleted_by: str | None = None,
        days: int | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> tuple[list[TrashItem], bool]:
        """A page of deleted records, newest first, and whether there is a next page."""
        self.actor.require("trash.view")
        tables = self.models()
        if model:
            if model not in tables:
                raise NotFound("No such kind of record in the trash.")
            tables = [model]
        wanted = page * page_size + 1
        since = datetime.now(UTC) - timedelta(days=days) if days else None
        items: list[TrashItem] = []
        for table in tables:
            repo = self.uow.repo(service_for(table).model)
            for obj, username in await repo.in_trash(deleted_by=deleted_by, since=since, limit=wanted):
                label = label_for(self.actor, obj)[:200]
                items.append(TrashItem(table, obj.id, label, obj.deleted_at, username or "system"))
        items.sort(key=lambda item: (item.deleted_at, item.object_id), reverse=True)
        start = (page - 1) * page_size
        return items[start : start + page_size], len(items) > start + page_size

    async def restore(self, table: str, object_id: int) -> Any:
        return await service_for(table)(self.uow).restore(object_id)

    async def purge(self, table: str, object_id: int) -> None:
        await service_for(table)(self.uow).purge(object_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
