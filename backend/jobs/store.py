"""The job table's queries. Every status change says which status it expects, so two processes
racing over one job (a worker finishing it, another failing it as stalled) cannot both win."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import or_, select, update

from backend.db.types import utcnow
from backend.models.jobs import ERROR_MAX_LENGTH, Job, JobStatus
from backend.repositories.base import Repository

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


def one_line(text: str) -> str:
    """A message as the job's `error`: its first line, cut to the column's length."""
    line = (text.strip().splitlines() or [""])[0].strip()
    return line if len(line) <= ERROR_MAX_LENGTH else line[: ERROR_MAX_LENGTH - 1] + "…"


class JobRepository(Repository[Job]):
    model = Job

    async def owned_by(self, owner_id: int, *, limit: int) -> list[Job]:
        """The jobs of one account, newest first."""
        stmt = select(Job).where(Job.owner_id == owner_id).order_by(Job.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def newest(self, *, limit: int, statuses: Collection[JobStatus] = ()) -> list[Job]:
        stmt = select(Job).order_by(Job.id.desc()).limit(limit)
        if statuses:
            stmt = stmt.where(Job.status.in_(list(statuses)))
        return list((await self.session.execute(stmt)).scalars())

    async def fresh(self, job_id: int) -> Job | None:
        """The row as the database has it now, not as this session last saw it."""
        stmt = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim(self, job_id: int, *, queue_job_id: int | None) -> bool:
        """Queued -> running, one more attempt; False when the job is not queued (already taken)."""
        values: dict[str, Any] = {
            "status": JobStatus.RUNNING,
            "started_at": utcnow(),
            "attempts": Job.attempts + 1,
            "rows_done": 0,
        }
        if queue_job_id is not None:
            values["queue_job_id"] = queue_job_id
        return await self._change(job_id, (JobStatus.QUEUED,), values)

    async def record_progress(self, job_id: int, done: int, total: int | None) -> None:
        await self._change(job_id, (JobStatus.RUNNING,), {"rows_done": done, "rows_total": total})

    async def finish(self, job_id: int, values: dict[str, Any]) -> bool:
        """Running -> done, with what the job produced."""
        return await self._change(
            job_id, (JobStatus.RUNNING,), {**values, "status": JobStatus.DONE, "finished_at": utcnow()}
        )

    async def fail(
        self,
        job_id: int,
        reason: str,
        *,
        expected: Collection[JobStatus] = UNFINISHED,
        report: dict[str, Any] | None = None,
        queue_job_id: int | None = None,
    ) -> bool:
        """Queued or running -> failed with `reason`.

        With `queue_job_id`, only while the row still belongs to that queue
        job (or to none): a stale queue job never fails a later attempt.
        """
        values: dict[str, Any] = {
            "status": JobStatus.FAILED,
            "error": one_line(reason),
            "finished_at": utcnow(),
        }
        if report is not None:
            values["report"] = report
        extra = []
        if queue_job_id is not None:
            extra.append(or_(Job.queue_job_id.is_(None), Job.queue_job_id == queue_job_id))
        return await self._change(job_id, expected, values, *extra)

    async def requeue(self, job_id: int) -> bool:
        """Failed -> queued, its last attempt's traces cleared; False when it is not failed."""
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED,
            "error": None,
            "report": None,
            "rows_done": 0,
            "rows_total": None,
            "started_at": None,
            "finished_at": None,
            "result_name": None,
            "result_media_type": None,
            "queue_job_id": None,
        }
        return await self._change(job_id, (JobStatus.FAILED,), values)

    async def set_queue_job(self, job_id: int, queue_job_id: int) -> None:
        await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.queue_job_id.is_(None))
            .values(queue_job_id=queue_job_id)
            .execution_options(synchronize_session=False)
        )

    async def _change(
        self, job_id: int, expected: Collection[JobStatus], values: dict[str, Any], *extra: Any
    ) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(list(expected)), *extra)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1
