"""Reverting a record to an earlier version: the values its audit trail had after one entry, written
back through the record's own service, with today's permissions, validation and rules.

How the revert is recorded: the values are written by `service.update`, so the
audit listener writes the usual "update" entry with its field diff (history
and `state_at` replay it like any edit). Beside it, in the same savepoint, goes
an event entry with action "revert", labelled with the record like every entry,
whose changes say "reverted to the state of <date>" and name the entry reverted to. The
listener (backend/db/audit.py) needs nothing new, and the diff stays in the
one shape every reader of the trail knows; `replay` skips the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import RelationshipProperty

from backend.db.audit import BOOKKEEPING_FIELDS, event_entry, jsonable, record_label
from backend.db.policy import policy_of
from backend.db.uow import UnitOfWork
from backend.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry
from backend.repositories.audit import AuditEntryRepository
from backend.services.base import CrudService
from backend.services.history import REVERT_ACTION, Related, RelatedLabels, references, replay
from backend.services.masking import MASK, can_see, label_for, shown
from backend.services.references import collections
from backend.services.registry import service_for
from backend.values import InvalidValue, parse_id

# Kept by the record's own bookkeeping or by delete and restore, never set by a revert.
NOT_REVERTED = BOOKKEEPING_FIELDS | {"id", "created_at", "deleted_at", "deleted_by_id"}
NOT_A_VERSION = frozenset({"purge", REVERT_ACTION})


@dataclass(frozen=True)
class FieldChange:
    """One field that differs between today and the version, as the actor may see it.

    A reference shows its record (`today_related`, `then_related`); `note`
    says why the field is not reverted, or what rule its old value breaks now.
    """

    field: str
    today: Any
    then: Any
    reverted: bool
    note: str = ""
    today_related: Related | None = None
    then_related: Related | None = None


@dataclass(frozen=True)
class RevertPlan:
    """What reverting `table` `object_id` to the state after entry `entry_id` would change."""

    table: str
    object_id: int
    entry_id: int
    state_of: datetime
    label: str
    version: int | None
    changes: list[FieldChange]
    problems: list[str]
    # The values written: only fields the actor may see and the update schema takes.
    values: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def noun(self) -> str:
        return self.table.replace("_", " ")

    @property
    def when(self) -> str:
        return f"{self.state_of:%Y-%m-%d %H:%M:%S} UTC"


class Reverter:
    """Plan and make reverts, for one actor (needs `<table>.view` and `<table>.change`)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.actor = uow.actor

    def may_revert(self, table: str) -> bool:
        return self.actor.has_perm(f"{table}.view") and self.actor.has_perm(f"{table}.change")

    async def offered(self, table: str, object_id: str, entries: list[Any]) -> tuple[set[int], str]:
        """The ids of the history entries a "Revert to this version" is offered on, and a note when none is.

        Every earlier version of the record itself: not its newest, not a
        purge, not an event. A record in the trash offers none.
        """
        if not self.may_revert(table):
            return set(), ""
        versions = [e.id for e in entries if e.model == table and e.action not in NOT_A_VERSION]
        service = service_for(table)(self.uow)
        obj = await service.repo.get(parse_id(object_id), include_deleted=True)
        if obj is None:
            return set(), ""
        if getattr(obj, "deleted_at", None) is not None:
            return set(), _in_trash(service.noun)
        return set(versions[:-1]), ""

    async def plan(self, table: str, object_id: str, entry_id: int) -> RevertPlan:
        """The diff between today's record and its state after entry `entry_id`, masked for the actor.

        Raises `NotFound` (no such kind, record or version of it), `PermissionDenied`
        (needs `<table>.view` and `<table>.change`) and `Conflict` for a record in the trash.
        """
        service = service_for(table)(self.uow)
        if not self.may_revert(table):
            raise PermissionDenied(f"You do not have permission to revert {service.noun} records.")
        obj = await self._record(service, object_id)
        entries = await self.uow.repo(AuditEntryRepository).of_objects(table, [str(obj.id)])
        target = next((e for e in entries if e.id == entry_id and e.action not in NOT_A_VERSION), None)
        state = replay(e for e in entries if e.id <= entry_id) if target else None
        if target is None or state is None:
            raise NotFound(f"No such version of {service.noun} {obj.id}.")
        changes, values, problems = await self._diff(service, obj, state)
        return RevertPlan(
            table=table,
            object_id=obj.id,
            entry_id=entry_id,
            state_of=target.created_at,
            label=label_for(self.actor, obj),
            version=getattr(obj, "version", None),
            changes=changes,
            problems=problems,
            values=values,
        )

    async def revert(
        self, table: str, object_id: str, entry_id: int, *, expected_version: int | None
    ) -> RevertPlan:
        """Write the version's values through the service, with its own "revert" audit entry.

        `expected_version` is the version the confirmation page showed: a record
        changed since is refused with the usual stale-edit `Conflict`. So is an
        old state that breaks a rule now (a unique value taken since, a related
        record in the trash, a value today's schema refuses). All or nothing.
        """
        plan = await self.plan(table, object_id, entry_id)
        service = service_for(table)(self.uow)
        obj = await service.repo.get(plan.object_id)
        await service.check_version(obj, expected_version)
        cannot = f"Cannot revert this {plan.noun} to the state of {plan.when}:"
        if plan.problems:
            raise Conflict(f"{cannot} {' '.join(plan.problems)}")
        if not plan.values:
            raise Conflict(f"The {plan.noun} has the values of {plan.when} already: nothing to revert.")
        try:
            async with service.writing(obj):
                await service.update(plan.object_id, plan.values, expected_version=expected_version)
                self.uow.session.add(self._entry(plan, obj))
        except ValidationFailed as exc:
            raise Conflict(f"{cannot} {_sentences(exc)}") from exc
        except Conflict as exc:
            if exc.field is None:  # a stale version: the usual stale-edit message stands as it is
                raise
            raise Conflict(f"{cannot} {exc.message}", field=exc.field) from exc
        return plan

    def _entry(self, plan: RevertPlan, obj: Any) -> AuditEntry:
        # The record's own label, as every entry of the trail keeps it: the audit log names what was
        # reverted; the changes say to which state.
        return event_entry(
            self.actor,
            action=REVERT_ACTION,
            model=plan.table,
            object_id=plan.object_id,
            object_repr=record_label(obj),
            changes={"reverted to the state of": plan.when, "version entry": plan.entry_id},
        )

    async def _record(self, service: CrudService[Any, Any, Any], object_id: str) -> Any:
        try:
            record_id = parse_id(object_id)
        except InvalidValue:
            raise NotFound(f"No such {service.noun} exists.") from None
        obj = await service.repo.get(record_id, include_deleted=True)
        if obj is None:
            raise NotFound(f"{service.noun.capitalize()} {record_id} does not exist.")
        if getattr(obj, "deleted_at", None) is not None:
            raise Conflict(_in_trash(service.noun))
        return obj

    async def _diff(
        self, service: CrudService[Any, Any, Any], obj: Any, state: dict[str, Any]
    ) -> tuple[list[FieldChange], dict[str, Any], list[str]]:
        table, model = service.table, service.model
        settable = set(service.update_schema.model_fields)
        refs = references(model)
        secret = policy_of(model).secret
        changes: list[FieldChange] = []
        values: dict[str, Any] = {}
        problems: list[str] = []
        for column in inspect(model).mapper.column_attrs:
            name = column.key
            if name in NOT_REVERTED or name in secret or name not in state:
                continue  # secrets are neither shown nor reverted
            then, today = state[name], getattr(obj, name)
            parsed, problem = _parse(service, name, then) if name in settable else (then, None)
            if _same(today, then, parsed if problem is None else _UNPARSED):
                continue
            if not can_see(self.actor, table, name):
                note = "Not reverted: you may not see this field."
                changes.append(FieldChange(name, MASK, MASK, reverted=False, note=note))
                continue
            if name not in settable:
                note = "Not reverted: it is not set by hand (it follows other records)."
                changes.append(FieldChange(name, shown(self.actor, table, name, today), then, False, note))
                continue
            today_ref, then_ref = await self._related(refs.get(name), today, then)
            if problem is None and then_ref is not None and then_ref.deleted:
                problem = _reference_problem(then_ref)
            if problem:
                problems.append(problem)
            else:
                values[name] = then
            change = FieldChange(name, today, then, problem is None, problem or "", today_ref, then_ref)
            changes.append(change)
        for field_name, relation in collections(model).items():
            members, ids = await self._collection(service, obj, state, field_name, relation, settable)
            if members is None:
                continue
            changes.append(members)
            if members.reverted:
                values[field_name] = ids
            elif members.note and field_name in settable:
                problems.append(members.note)
        return changes, values, problems

    async def _collection(
        self,
        service: CrudService[Any, Any, Any],
        obj: Any,
        state: dict[str, Any],
        field_name: str,
        relation: RelationshipProperty[Any],
        settable: set[str],
    ) -> tuple[FieldChange | None, list[int]]:
        """A many-to-many collection (`tags`) as the version had it, set again through its input
        (`tag_ids`). The trail names its members by label; each must name one live record today,
        found by the related model's natural key (a tag by its name)."""
        key = relation.key
        if key not in state:
            return None, []
        await self.uow.session.refresh(obj, attribute_names=[key])
        today = sorted(str(member) for member in getattr(obj, key))
        then = sorted(str(label) for label in state[key] or [])
        if today == then:
            return None, []
        shown_today, shown_then = ", ".join(today) or "—", ", ".join(then) or "—"
        if field_name not in settable:
            note = "Not reverted: it is not set by hand (it follows other records)."
            return FieldChange(key, shown_today, shown_then, False, note), []
        target = relation.mapper.class_
        natural_key = policy_of(target).natural_key
        noun = str(target.__tablename__).replace("_", " ")
        if natural_key is None:
            note = f"The {key} cannot be put back: a {noun} has no unique name to find it by."
            return FieldChange(key, shown_today, shown_then, False, note), []
        column = getattr(target, natural_key)
        rows = await self.uow.repo(target).list(where=[column.in_(then)], include_deleted=True)
        by_label = {str(getattr(row, natural_key)): row for row in rows}
        for label in then:
            row = by_label.get(label)
            if row is None:
                return FieldChange(
                    key, shown_today, shown_then, False, f"The {noun} {label} no longer exists."
                ), []
            if getattr(row, "deleted_at", None) is not None:
                note = f"The {noun} {label} is in the trash now: restore it first."
                return FieldChange(key, shown_today, shown_then, False, note), []
        return FieldChange(key, shown_today, shown_then, True), sorted(by_label[label].id for label in then)

    async def _related(self, target: type[Any] | None, *ids: Any) -> tuple[Related | None, Related | None]:
        if target is None:
            return None, None
        labels = RelatedLabels(self.uow)
        rows = await labels.rows(target, [i for i in ids if isinstance(i, int)])
        today, then = (labels.related(target, i, rows) for i in ids)
        return today, then


_UNPARSED = object()


def _parse(service: CrudService[Any, Any, Any], name: str, value: Any) -> tuple[Any, str | None]:
    """The old value as today's schema reads it, or why today's schema refuses it."""
    try:
        return getattr(service.parse_update({name: value}), name), None
    except ValidationFailed as exc:
        return _UNPARSED, f"{name.replace('_', ' ').capitalize()}: {_sentences(exc)}"


def _same(today: Any, then: Any, parsed: Any) -> bool:
    if parsed is not _UNPARSED and today == parsed:
        return True
    return bool(jsonable(today) == then)


def _reference_problem(related: Related) -> str:
    noun = related.table.replace("_", " ")
    if related.row is None:
        return f"The {noun} it referred to ({related.label}) no longer exists."
    return f"The {noun} {related.label} is in the trash now: restore it first."


def _sentences(exc: AppError) -> str:
    errors = getattr(exc, "errors", None) or {}
    text = " ".join(message for messages in errors.values() for message in messages)
    return text or exc.message


def _in_trash(noun: str) -> str:
    return f"This {noun} is in the trash: restore it from the trash first, then revert it to a version."
