"""The audit trail: one append-only row per change, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.mixins import IdMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime, utcnow


class AuditEntry(IdMixin, Base):
    """Who did what to which record, and the field diff `{field: [old, new]}`.

    The actor is kept by id and by name, without a foreign key: entries
    outlive the users they mention. The database refuses UPDATE and DELETE
    on this table (triggers on PostgreSQL and SQLite).
    """

    policy = Policy(admin=False)  # shown by the audit log page, not a model view

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    actor_name: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(20), index=True)
    model: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    object_repr: Mapped[str] = mapped_column(String(200), default="", server_default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))
    # The import that wrote the change (one id per confirmed file), so an auditor can list them all.
    import_id: Mapped[str | None] = mapped_column(String(36), index=True)

    __table_args__ = (
        Index("ix_audit_entry_model_object_id_id", "model", "object_id", "id"),
        Index("ix_audit_entry_actor_id_created_at", "actor_id", "created_at"),
    )
