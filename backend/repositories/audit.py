"""Queries of the audit trail: searching it, one record's entries, the last change of a record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, select

from backend.models import AuditEntry
from backend.repositories.base import Repository


class AuditEntryRepository(Repository[AuditEntry]):
    model = AuditEntry

    async def search(
        self, where: Sequence[ColumnElement[bool]], *, before_id: int | None = None, limit: int = 50
    ) -> list[AuditEntry]:
        """Newest first; `before_id` (the last id shown) pages on at the same cost at any depth."""
        stmt = self._newest_first(where)
        if before_id is not None:
            stmt = stmt.where(AuditEntry.id < before_id)
        return list((await self.session.execute(stmt.limit(limit))).scalars())

    async def stream(self, where: Sequence[ColumnElement[bool]]) -> AsyncIterator[AuditEntry]:
        """Every matching entry, newest first, fetched 500 at a time."""
        result = await self.session.stream_scalars(self._newest_first(where).execution_options(yield_per=500))
        async for entry in result:
            yield entry

    async def of_objects(self, table: str, object_ids: Collection[str]) -> list[AuditEntry]:
        """The entries of these records of `table`, oldest first."""
        if not object_ids:
            return []
        condition = (
            AuditEntry.object_id == next(iter(object_ids))
            if len(object_ids) == 1
            else AuditEntry.object_id.in_([*object_ids])
        )
        stmt = select(AuditEntry).where(AuditEntry.model == table, condition).order_by(AuditEntry.id)
        return list((await self.session.execute(stmt)).scalars())

    async def last_change(self, table: str, object_id: str) -> tuple[str, datetime] | None:
        """Who made the record's newest entry, and when."""
        stmt = (
            select(AuditEntry.actor_name, AuditEntry.created_at)
            .where(AuditEntry.model == table, AuditEntry.object_id == object_id)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return (row.actor_name, row.created_at) if row is not None else None

    def _newest_first(self, where: Sequence[ColumnElement[bool]]) -> Select[AuditEntry]:
        return select(AuditEntry).where(*where).order_by(AuditEntry.id.desc())
