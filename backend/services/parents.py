"""The records a record refers to, read from its model's relationships (no per-model code)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import MANYTOONE


async def deleted_parents(session: AsyncSession, obj: Any) -> list[tuple[str, str]]:
    """(table, id) of each soft-deleted record that `obj` refers to by a many-to-one relationship.

    Reads the foreign key values already on `obj` and asks one query per
    relationship, so nothing is lazy-loaded (relationships here are `lazy="raise"`).
    """
    mapper = inspect(type(obj))
    found: list[tuple[str, str]] = []
    for relationship in mapper.relationships:
        parent = relationship.mapper
        deleted_at = getattr(parent.class_, "deleted_at", None)
        if relationship.direction is not MANYTOONE or deleted_at is None:
            continue
        pairs = relationship.local_remote_pairs or []
        values = [getattr(obj, mapper.get_property_by_column(local).key) for local, _ in pairs]
        if not pairs or any(value is None for value in values):
            continue
        stmt = (
            select(*parent.primary_key)
            .where(*(remote == value for (_, remote), value in zip(pairs, values, strict=True)))
            .where(deleted_at.is_not(None))
            .limit(1)
        )
        row = (await session.execute(stmt)).first()
        if row is not None:
            found.append((str(parent.class_.__tablename__), ",".join(str(part) for part in row)))
    return found
