"""Purging old soft-deleted records in bulk (`manage.py purge`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backend.db.base import Base
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, ValidationFailed
from backend.services.registry import service_for, soft_deletable_tables


@dataclass
class PurgeReport:
    purged: dict[str, int] = field(default_factory=dict)
    kept: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.purged.values())


async def purge_candidates(
    uow: UnitOfWork, *, older_than_days: int, model: str | None = None
) -> dict[str, list[int]]:
    """Ids of records soft-deleted more than `older_than_days` days ago, by table."""
    tables = soft_deletable_tables()
    if model is not None:
        if model not in tables:
            raise ValidationFailed(
                {"model": [f"Unknown model: {model}. Choose one of: {', '.join(tables)}."]},
                f"Unknown model: {model}.",
            )
        tables = [model]
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    found: dict[str, list[int]] = {}
    for table in sorted(tables, key=_purge_rank):
        entity = service_for(table).model
        ids = await uow.repo(entity).values(
            entity.id, where=[entity.deleted_at < cutoff], include_deleted=True
        )
        if ids:
            found[table] = ids
    return found


async def purge_records(uow: UnitOfWork, candidates: dict[str, list[int]]) -> PurgeReport:
    """Purge each record through its service (needs `<table>.purge`; each purge is audited).

    A record still referred to by others is kept and reported; a second pass
    catches parents freed by purging their children in the first.
    """
    report = PurgeReport()
    pending = [(table, object_id) for table, ids in candidates.items() for object_id in ids]
    for _ in range(2):
        kept = []
        for table, object_id in pending:
            try:
                await service_for(table)(uow).purge(object_id)
            except Conflict as exc:
                kept.append((table, object_id, exc.message))
            else:
                report.purged[table] = report.purged.get(table, 0) + 1
        pending = [(table, object_id) for table, object_id, _ in kept]
        report.kept = kept
        if not kept:
            break
    # Many rows gone at once: refresh the planner's picture of those tables.
    for table in report.purged:
        await uow.repo(service_for(table).model).analyze()
    return report


def _purge_rank(table: str) -> int:
    """Records that others refer to come after those that refer to them, by the foreign keys."""
    order = [known.name for known in reversed(Base.metadata.sorted_tables)]
    return order.index(table) if table in order else len(order)
