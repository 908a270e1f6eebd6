"""The one rule for which of a record's values an actor may see, wherever the value leaves the server.

A model declares its personal data in its policy's `pii` (shown only to
holders of `<table>.view_pii`) and its secrets in `secret` (shown to nobody,
superusers included). Pages, CSV exports, the audit log and its
export, record history, the trash and messages all ask this module; none
decides on its own. A value that may not be seen is replaced by `MASK`
(`REDACTED` for secrets); `None` stays `None`, so "not set" reads the same for
everyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import InvalidRequestError, SQLAlchemyError
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.exc import DetachedInstanceError

from backend.auth.actor import Actor
from backend.db.base import Base
from backend.db.policy import policy_of

MASK = "•••"
REDACTED = "[redacted]"


def model_for(table: str) -> type | None:
    """The mapped class of `table`, or None for a table without one (an association table)."""
    if table not in _models:  # looked up again on a miss: models may be imported after a first call
        _models.update({str(m.class_.__tablename__): m.class_ for m in Base.registry.mappers})
    return _models.get(table)


_models: dict[str, type] = {}


def table_of(model: object) -> str:
    """The table name of a model class or instance ("" for anything else)."""
    return str(getattr(model, "__tablename__", ""))


def secret_fields(model: object) -> frozenset[str]:
    return policy_of(model).secret


def pii_fields(model: object) -> frozenset[str]:
    return policy_of(model).pii


def sensitive_fields(table: str) -> frozenset[str]:
    """Fields of `table` that some actor may not see (personal data and secrets)."""
    return _sensitive_fields_of(model_for(table))


@cache
def _sensitive_fields_of(model: object) -> frozenset[str]:
    return policy_of(model).sensitive


def hidden_fields(actor: Actor, table: str) -> frozenset[str]:
    """The fields of `table` whose values `actor` may not see."""
    model = model_for(table)
    hidden = secret_fields(model)
    if not actor.has_perm(f"{table}.view_pii"):
        hidden |= pii_fields(model)
    return hidden


def sees_personal_data(actor: Actor, table: str) -> bool:
    """Whether `actor` sees every field of `table` that is not a secret."""
    return not (hidden_fields(actor, table) - secret_fields(model_for(table)))


def can_see(actor: Actor, table: str, field: str) -> bool:
    return field not in hidden_fields(actor, table)


def shown(actor: Actor, table: str, field: str, value: Any) -> Any:
    """`value` as `actor` may see it: itself, or `MASK` / `REDACTED`."""
    if value is None or field not in sensitive_fields(table):
        return value  # the common case, without working out the actor's permissions
    return _masked(value, field, table=table, hidden=hidden_fields(actor, table))


def shown_changes(actor: Actor, table: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An audit diff `{field: [old, new]}` with the values `actor` may not see masked."""
    hidden = hidden_fields(actor, table) if sensitive_fields(table) else frozenset()
    if not hidden:
        return dict(changes)
    return {
        field: [_masked(value, field, table=table, hidden=hidden) for value in values]
        if field in hidden and isinstance(values, list | tuple)
        else values
        for field, values in changes.items()
    }


def shown_label(actor: Actor, table: str, label: str, object_id: object) -> str:
    """A record's label (its `str()`, as the audit trail and the trash keep it), or a neutral one
    when the model's label could show a value `actor` may not see."""
    if label_may_reveal(model_for(table)) and hidden_fields(actor, table):
        return f"{table.replace('_', ' ')} {object_id}".strip()
    return label


def label_for(actor: Actor, obj: Any) -> str:
    """`str(obj)` as `actor` may see it (see `shown_label`)."""
    table = table_of(obj)
    try:
        label = str(obj)
    except (InvalidRequestError, DetachedInstanceError):
        # A __str__ that needs an attribute not loaded (MissingGreenlet) or no longer loadable.
        label = ""
    if not label:
        return f"{table.replace('_', ' ')} {getattr(obj, 'id', '')}".strip()
    return shown_label(actor, table, label, getattr(obj, "id", ""))


@cache
def label_may_reveal(model: object) -> bool:
    """Whether the model's `str()` shows any of its personal or secret fields.

    Found by asking a throwaway instance whose sensitive fields hold markers; a
    `__str__` that fails on it as a label of made-up values may (a relationship
    that is None, a number that is text) is assumed to reveal (labels are then
    neutral). Any other error is a bug in the model and is raised.
    """
    sensitive = policy_of(model).sensitive
    if not isinstance(model, type) or not sensitive:
        return False
    markers = {field: f"\x00{field}\x00" for field in sensitive}
    mapper: Mapper[Any] | None = inspect(model, raiseerr=False)
    others = [attr.key for attr in mapper.column_attrs if attr.key not in sensitive] if mapper else []
    try:
        probe = model()
        for field in others:
            setattr(probe, field, "x")  # so that a label made of other fields is a string
        for field, marker in markers.items():
            setattr(probe, field, marker)
        label = str(probe)
    except (AttributeError, LookupError, TypeError, ValueError, SQLAlchemyError):  # we cannot tell: be safe
        return True
    return any(marker in label for marker in markers.values())


def _masked(value: Any, field: str, *, table: str, hidden: frozenset[str]) -> Any:
    if value is None or field not in hidden:
        return value
    return REDACTED if field in secret_fields(model_for(table)) else MASK
