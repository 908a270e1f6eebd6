"""What a job kind gets to do its work: the owner to act as, its files, progress, and how to finish."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import AppError, PermissionDenied
from backend.jobs import files
from backend.jobs.store import JobRepository
from backend.models import User
from backend.models.jobs import Job
from backend.repositories.users import UserRepository

PROGRESS_INTERVAL = 0.5  # seconds between progress writes: the page refreshes every 2 s


class JobRefused(AppError):
    """The job ran and refused its input (an import whose rows have errors): failed, with a report."""

    def __init__(self, message: str, *, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class JobRun:
    """One attempt at a job, handed to its kind.

    `progress(done, total)` records how far it got, in a short transaction
    of its own (never the transaction the job writes in), at most every
    `PROGRESS_INTERVAL`. With `live_progress` off (SQLite, where the job runs
    in the request that asked for it and holds the only write lock) nothing
    is written until the end.

    `finish(uow, ...)` marks the job done inside the kind's own unit of work,
    so "done" commits with what the job wrote, or not at all.
    """

    job: Job
    database: Database
    owner: Actor
    live_progress: bool = True
    rows_done: int = 0
    rows_total: int | None = None
    finished: bool = False
    _last_write: float = field(default=0.0, repr=False)

    @property
    def settings(self) -> Settings:
        return self.database.settings

    @property
    def upload_path(self) -> Path:
        return files.upload_path(self.settings, self.job)

    @property
    def result_path(self) -> Path:
        return files.result_path(self.settings, self.job)

    async def progress(self, done: int, total: int | None) -> None:
        self.rows_done, self.rows_total = done, total
        now = time.monotonic()
        if not self.live_progress or now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        async with unit_of_work(self.database, self.owner, audit=False) as uow:
            await uow.repo(JobRepository).record_progress(self.job.id, done, total)
            await uow.commit()

    async def finish(
        self,
        uow: UnitOfWork | None = None,
        *,
        result_name: str | None = None,
        media_type: str | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        """Mark the job done: in `uow` (the caller commits), or in a short transaction of its own."""
        values: dict[str, Any] = {
            "rows_done": self.rows_done,
            "rows_total": self.rows_total if self.rows_total is not None else self.rows_done,
            "result_name": result_name,
            "result_media_type": media_type,
            "report": report,
        }
        if uow is not None:
            if not await uow.repo(JobRepository).finish(self.job.id, values):
                # Failed as stalled meanwhile: its writes must not land under "nothing was written".
                raise AppError("This job was stopped while it ran; nothing was written. Retry it.")
        else:
            async with unit_of_work(self.database, self.owner, audit=False) as own:
                await own.repo(JobRepository).finish(self.job.id, values)
                await own.commit()
        self.finished = True


async def owner_actor(uow: UnitOfWork, job: Job) -> Actor:
    """The job's owner as the admin would see them signed in now: current roles, live account.

    Refused when the account is gone, deleted or inactive: a job never acts
    for someone who could not sign in.
    """
    user = await uow.repo(User).get(job.owner_id) if job.owner_id is not None else None
    if user is None or not user.is_active:
        raise PermissionDenied(f"The account {job.owner_name} that started this job can no longer sign in.")
    grants = (await uow.repo(UserRepository).grants([user.id]))[user.id]
    return Actor(
        user_id=user.id,
        username=user.username,
        is_superuser=user.is_superuser,
        permissions=grants.permissions,
        client_address=job.client_address,
    )
