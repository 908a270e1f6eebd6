"""Helpers for portable schema pieces: live-row unique indexes and enum columns."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum, Index, text

LIVE_ROWS = text("deleted_at IS NULL")


def live_unique(name: str, *columns: str) -> Index:
    """A unique index over live rows only, on PostgreSQL and SQLite: a soft-deleted row frees its value."""
    return Index(name, *columns, unique=True, postgresql_where=LIVE_ROWS, sqlite_where=LIVE_ROWS)


def live_index(name: str, *columns: str) -> Index:
    """An index over live rows only: serves the admin's lists, which never show deleted rows.

    Lists sort by (column, id) and page by keyset, so a list index ends with `id`.
    """
    return Index(name, *columns, postgresql_where=LIVE_ROWS, sqlite_where=LIVE_ROWS)


def enum_column(enum: type[StrEnum], name: str) -> Enum:
    """A portable enum: VARCHAR plus a CHECK constraint, storing the members' values."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
    )
