"""Long imports and exports run as jobs: who asked for what, how far it got, and how it ended."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.columns import enum_column
from backend.db.mixins import BigIntId, IdMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime, utcnow

ERROR_MAX_LENGTH = 500


class JobKind(StrEnum):
    """What a job does with a model's rows.

    A large import's preview is a kind of its own, not an import with a
    "dry run" flag: it writes nothing, keeps its upload for the import that
    may follow (an import forgets its file once written), is listed and
    titled as what it is, and is never retried into writing rows. It needs
    the same permission as the import it previews (`permission`).
    """

    EXPORT = "export"
    IMPORT = "import"
    PREVIEW = "preview"

    @property
    def permission(self) -> str:
        """The action of the `<table>.<action>` permission starting or using such a job needs."""
        return "export" if self is JobKind.EXPORT else "import"

    @property
    def reads_upload(self) -> bool:
        """Whether the job works on a file the user uploaded (kept under `Settings.job_files_dir`)."""
        return self is not JobKind.EXPORT


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


class Job(IdMixin, Base):
    """One export, import or import preview of a model's rows, run by a worker (or in-process on SQLite).

    The owner is kept by id and by name: a purged account leaves its jobs
    with the name only. `params` says what to do (an export's filters and
    sort; an import's or a preview's file name, hash, key column and whether
    to skip rows with errors; which import a preview led to, and the reverse);
    the files themselves live under `Settings.job_files_dir`, named from the
    id and `file_token`, never from anything a user typed.
    Progress (`rows_done` of `rows_total`) is written in short transactions
    of its own while the job runs.
    """

    policy = Policy(admin=False)  # shown by the "My jobs" page, not a model view

    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind, "job_kind"))
    model: Mapped[str] = mapped_column(String(64))  # the table whose rows travel
    format: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("user.id", ondelete="SET NULL"))
    owner_name: Mapped[str] = mapped_column(String(150))
    client_address: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "job_status"), default=JobStatus.QUEUED)
    rows_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_total: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))  # one sentence for a person
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    file_token: Mapped[str] = mapped_column(String(32))
    result_name: Mapped[str | None] = mapped_column(String(255))
    result_media_type: Mapped[str | None] = mapped_column(String(100))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The queue's own job (procrastinate) for the current attempt, on PostgreSQL.
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))

    __table_args__ = (Index("ix_job_owner_id_id", "owner_id", "id"),)

    def __str__(self) -> str:
        return f"{self.kind.value.capitalize()} of {self.model} #{self.id}"
