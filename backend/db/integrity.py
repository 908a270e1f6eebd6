"""Turning a database integrity error into a message for a person.

PostgreSQL (asyncpg) reports the violated constraint by name; SQLite reports
the table and columns of a unique violation, and the name of a CHECK. Both
map onto the model's columns, so a service can say which field clashed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.schema import Table

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")


@dataclass(frozen=True)
class Violation:
    kind: str  # "unique", "foreign_key", "check", "not_null" or "other"
    constraint: str | None
    columns: tuple[str, ...]


def describe_violation(error: IntegrityError, table: Table) -> Violation:
    original = error.orig
    cause = getattr(original, "__cause__", None)
    constraint = getattr(cause, "constraint_name", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(original, "sqlstate", None)
    text = str(original)

    if sqlstate == "23505" or "UNIQUE constraint failed" in text:
        return Violation("unique", constraint, _unique_columns(text, constraint, table))
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in text:
        return Violation("foreign_key", constraint, _constraint_columns(constraint, table))
    if sqlstate == "23514" or "CHECK constraint failed" in text:
        match = _SQLITE_CHECK.search(text)
        name = constraint or (match.group("name") if match else None)
        return Violation("check", name, ())
    if sqlstate == "23502" or "NOT NULL constraint failed" in text:
        column = getattr(cause, "column_name", None) or text.rsplit(".", 1)[-1].strip()
        return Violation("not_null", constraint, (column,))
    return Violation("other", constraint, ())


def _unique_columns(text: str, constraint: str | None, table: Table) -> tuple[str, ...]:
    match = _SQLITE_UNIQUE.search(text)
    if match:
        return tuple(part.strip().split(".")[-1] for part in match.group("columns").split(","))
    return _constraint_columns(constraint, table)


def _constraint_columns(constraint: str | None, table: Table) -> tuple[str, ...]:
    if constraint is None:
        return ()
    for index in table.indexes:
        if index.name == constraint:
            return tuple(column.name for column in index.columns)
    for table_constraint in table.constraints:
        if table_constraint.name == constraint:
            return tuple(column.name for column in getattr(table_constraint, "columns", ()))
    return ()
