"""The audit trail: entries written from SQLAlchemy attribute history, in the change's transaction.

Every unit of work installs `after_flush` on its session and puts its actor in
`session.info`; after each flush, this module turns what the flush wrote into
`AuditEntry` rows on the same connection. So an entry exists exactly when its
change does: a failed change leaves none, and a change never commits without
one. Writes made outside a unit of work (test setup, bulk COPY for
benchmarks) carry no actor and are not audited.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Mapper, Session, UOWTransaction
from sqlalchemy.orm.attributes import History

from backend.auth.actor import Actor
from backend.db.policy import policy_of
from backend.db.types import utcnow
from backend.models import AuditEntry, AuthSession, LoginAttempt
from backend.models.jobs import Job

# Set by the unit of work in `session.info`: who the entries name, and whether to write them.
ACTOR_KEY = "custodian.actor"
AUDIT_ENABLED_KEY = "custodian.audit"
IMPORT_ID_KEY = "custodian.import_id"  # set while an import writes: its entries carry the import's id

REDACTED = "[redacted]"
# Job rows are bookkeeping: what a job writes is audited, its progress is not.
NOT_AUDITED = (AuditEntry, AuthSession, LoginAttempt, Job)
# Recorded by other means (the version, the sign-in event) or not worth a diff.
BOOKKEEPING_FIELDS = frozenset({"updated_at", "version", "last_login_at"})


def install(session: Session) -> None:
    """Audit the flushes of `session` (once, however many units of work share it)."""
    if not event.contains(session, "after_flush", _after_flush):
        event.listen(session, "after_flush", _after_flush)


def event_entry(
    actor: Actor,
    *,
    action: str,
    model: str,
    object_id: object = "",
    object_repr: str = "",
    changes: dict[str, Any] | None = None,
    import_id: str | None = None,
) -> AuditEntry:
    """An entry for something that is not a row change: a sign-in, a failed sign-in, an import."""
    values = _entry_values(actor, action, model, object_id, object_repr, changes or {})
    return AuditEntry(**values, import_id=import_id)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    rows = _entries(session, created=session.new, updated=session.dirty, purged=session.deleted)
    if rows:
        session.connection().execute(insert(AuditEntry.__table__), rows)  # type: ignore[arg-type]  # mapped Table


def inserted_entries(session: Session, objects: Iterable[Any]) -> list[dict[str, Any]]:
    """The entries a flush would write for `objects`, new rows inserted without one (a repository's
    set-based insert, backend/repositories/bulk.py); the caller inserts them in the same transaction."""
    return _entries(session, created=objects)


def _entries(
    session: Session, *, created: Iterable[Any], updated: Iterable[Any] = (), purged: Iterable[Any] = ()
) -> list[dict[str, Any]]:
    actor = session.info.get(ACTOR_KEY)
    if not isinstance(actor, Actor) or not session.info.get(AUDIT_ENABLED_KEY, True):
        return []
    rows = [
        *(_entry(actor, "create", obj, _created(obj)) for obj in _audited(created)),
        *filter(None, (_update_entry(actor, obj) for obj in _audited(updated))),
        *(_entry(actor, "purge", obj, _purged(obj)) for obj in _audited(purged)),
    ]
    import_id = session.info.get(IMPORT_ID_KEY)
    for row in rows:
        row["import_id"] = import_id
    return rows


def _audited(objects: Iterable[Any]) -> list[Any]:
    return [obj for obj in objects if not isinstance(obj, NOT_AUDITED) and hasattr(obj, "__table__")]


def _update_entry(actor: Actor, obj: Any) -> dict[str, Any] | None:
    changes = _updated(obj)
    if not changes:
        return None
    action = "update"
    if "deleted_at" in changes:
        old, new = changes["deleted_at"]
        action = "delete" if old is None and new is not None else "restore" if new is None else "update"
    return _entry(actor, action, obj, changes)


def _entry(actor: Actor, action: str, obj: Any, changes: dict[str, Any]) -> dict[str, Any]:
    state = inspect(obj)
    # A row inserted by this flush has its key values but no identity key yet.
    identity = state.identity or state.mapper.primary_key_from_instance(obj)
    object_id = ",".join(str(part) for part in identity if part is not None)
    return _entry_values(actor, action, str(obj.__tablename__), object_id, record_label(obj), changes)


def _entry_values(
    actor: Actor, action: str, model: str, object_id: object, object_repr: str, changes: dict[str, Any]
) -> dict[str, Any]:
    return {
        "created_at": utcnow(),
        "actor_id": actor.user_id,
        "actor_name": actor.username[:150],
        "action": action,
        "model": model,
        "object_id": str(object_id)[:64],
        "object_repr": object_repr[:200],
        "changes": changes,
        "client_address": actor.client_address,
    }


def record_label(obj: Any) -> str:
    """The label the trail keeps for a record (`str(obj)`; shown masked to whoever may not see it)."""
    try:
        return str(obj)
    except Exception:  # a __str__ that needs an unloaded relationship
        return f"{type(obj).__name__} {inspect(obj).identity}"


def _created(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    # A new row's many-to-many collection is all added: read it as it is, not through its history,
    # which costs a new mapping of every attribute per object (a large import makes thousands).
    related = {
        relationship.key: state.dict.get(relationship.key) or ()
        for relationship in state.mapper.relationships
        if relationship.secondary is not None
    }
    return _creation(state.mapper, lambda key: getattr(obj, key, None), related)


def _creation(
    mapper: Mapper[Any], value_of: Callable[[str], Any], related: Mapping[str, Iterable[Any]]
) -> dict[str, Any]:
    """A new row's changes: every column it was given, and the records its collections hold."""
    changes: dict[str, Any] = {}
    for key, secret in _recorded_columns(mapper):
        value = value_of(key)
        if value is not None:
            changes[key] = [None, REDACTED if secret else jsonable(value)]
    for key, items in related.items():
        if items:
            changes[key] = [[], sorted(str(item) for item in items)]
    return changes


def _recorded_columns(mapper: Mapper[Any]) -> list[tuple[str, bool]]:
    """The columns an entry records, each with whether its value is a secret (shown redacted)."""
    recorded = _RECORDED.get(mapper)
    if recorded is None:  # once per model: an import asks for every row
        secrets = policy_of(mapper.class_).secret
        recorded = [
            (column.key, column.key in secrets)
            for column in mapper.column_attrs
            if column.key not in BOOKKEEPING_FIELDS
        ]
        _RECORDED[mapper] = recorded
    return recorded


_RECORDED: dict[Mapper[Any], list[tuple[str, bool]]] = {}


def inserted_row_entries(
    session: Session,
    model: type[Any],
    rows: Sequence[Mapping[str, Any]],
    related: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The entries a flush would write for new rows inserted from their values, without an ORM object
    (an import's set-based insert): `rows` as inserted (every column), `related` the records each one's
    many-to-many collections hold. The caller inserts the entries in the same transaction."""
    actor = session.info.get(ACTOR_KEY)
    if not isinstance(actor, Actor) or not session.info.get(AUDIT_ENABLED_KEY, True) or model in NOT_AUDITED:
        return []
    mapper: Mapper[Any] = inspect(model)
    keys = [str(column.key) for column in mapper.primary_key]
    recorded = _recorded_columns(mapper)
    # What every entry of the batch shares, worked out once (an import builds thousands: see `_entry_values`
    # for the one-entry form these must match).
    table = str(model.__tablename__)
    actor_id, actor_name, client_address = actor.user_id, actor.username[:150], actor.client_address
    import_id = session.info.get(IMPORT_ID_KEY)
    labels: dict[int, str] = {}  # id() of a related record -> its label: a batch names the same few often
    entries = []
    for row, held in zip(rows, related, strict=True):
        object_id = ",".join(str(row[key]) for key in keys if row.get(key) is not None)
        changes: dict[str, Any] = {}
        for key, secret in recorded:
            value = row.get(key)
            if value is not None:
                if secret:
                    value = REDACTED
                else:
                    kind = type(value)
                    convert = _JSONABLE_BY_TYPE.get(kind) or _jsonable_for(kind)
                    if convert is not _as_is:
                        value = convert(value)
                changes[key] = [None, value]
        for key, items in held.items():
            if items:
                changes[key] = [[], sorted([_label_once(labels, item) for item in items])]
        entries.append(
            {
                "created_at": utcnow(),
                "actor_id": actor_id,
                "actor_name": actor_name,
                "action": "create",
                "model": table,
                "object_id": object_id[:64],
                "object_repr": _label_of_values(model, row, object_id)[:200],
                "changes": changes,
                "client_address": client_address,
                "import_id": import_id,
            }
        )
    return entries


def _as_is(value: Any) -> Any:
    return value


def _jsonable_for(kind: type) -> Callable[[Any], Any]:
    """What `jsonable` does to a value of type `kind`, when the type alone decides it (the columns of a
    model hold a few types, and an import converts thousands of values of each)."""
    convert: Callable[[Any], Any] = jsonable
    if issubclass(kind, bool | int | float | str):
        convert = _as_is
    elif issubclass(kind, Decimal | uuid.UUID):
        convert = str
    elif issubclass(kind, datetime | date):
        convert = kind.isoformat
    _JSONABLE_BY_TYPE[kind] = convert
    return convert


_JSONABLE_BY_TYPE: dict[type, Callable[[Any], Any]] = {}


def _label_once(labels: dict[int, str], item: Any) -> str:
    label = labels.get(id(item))
    if label is None:
        label = labels[id(item)] = str(item)
    return label


def _label_of_values(model: type[Any], row: Mapping[str, Any], object_id: str) -> str:
    """What `str()` of the record says, from its values: a model's `__str__` reads its columns (a plain
    namespace stands in for the instance, which would cost an instrumented object per row)."""
    try:
        return str(model.__str__(SimpleNamespace(**row)))  # type: ignore[call-arg]  # the class's own, on a stand-in
    except Exception:  # a __str__ that reads a relationship
        return f"{model.__name__} {object_id}"


def _updated(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    secrets = _secret_fields(obj)
    changes: dict[str, Any] = {}
    for column in state.mapper.column_attrs:
        if column.key in BOOKKEEPING_FIELDS:
            continue
        history = state.attrs[column.key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        if column.key in secrets:
            changes[column.key] = [REDACTED, REDACTED]
        else:
            changes[column.key] = [jsonable(old), jsonable(new)]
    for key, history in _collection_histories(obj):
        if history.added or history.deleted:
            before = [*history.unchanged, *history.deleted]
            after = [*history.unchanged, *history.added]
            changes[key] = [sorted(str(item) for item in before), sorted(str(item) for item in after)]
    return changes


def _purged(obj: Any) -> dict[str, Any]:
    secrets = _secret_fields(obj)
    return {
        column.key: [REDACTED if column.key in secrets else jsonable(getattr(obj, column.key, None)), None]
        for column in inspect(obj).mapper.column_attrs
    }


def _collection_histories(obj: Any) -> list[tuple[str, History]]:
    """Histories of loaded many-to-many collections (tags, roles, permissions)."""
    state = inspect(obj)
    found = []
    for relationship in state.mapper.relationships:
        if relationship.secondary is None or relationship.key in state.unloaded:
            continue
        found.append((relationship.key, state.attrs[relationship.key].history))
    return found


def _secret_fields(obj: Any) -> frozenset[str]:
    return policy_of(obj).secret


def jsonable(value: Any) -> Any:
    """`value` as the audit trail stores it in JSON (also how a revert compares old and current values)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    return str(value)
