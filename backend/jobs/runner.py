"""One attempt at a job: claim it, run its kind as its owner, record how it ended.

A kind that raises leaves the job failed with a sentence for a person: the
`AppError`'s message, or "unexpected <Type>" (the traceback goes to the
log only). What the kind wrote is rolled back with its transaction, so a
failed job has written nothing. Status changes are short transactions of
their own, guarded by the status they expect (backend/jobs/store.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import AppError
from backend.jobs.context import JobRefused, JobRun, owner_actor
from backend.jobs.kinds import kind_function
from backend.jobs.store import JobRepository
from backend.models.jobs import Job, JobStatus

logger = logging.getLogger(__name__)

STOPPED = "The worker stopped while running this job; nothing was written."
# Status changes are the job's bookkeeping, not a change anyone made.
BOOKKEEPER = Actor.system("jobs")


async def run_job(
    database: Database, job_id: int, *, queue_job_id: int | None = None, live_progress: bool = True
) -> Job | None:
    """Run job `job_id` if it is queued; the job as it ended, or None when it was not queued.

    Never raises for the job's own failure (the job records it); a
    cancellation (the worker stopping) marks it failed and propagates.
    """
    async with unit_of_work(database, BOOKKEEPER, audit=False) as uow:
        jobs = uow.repo(JobRepository)
        if not await jobs.claim(job_id, queue_job_id=queue_job_id):
            logger.info("Job %s is not queued (already run, or retried meanwhile): skipped.", job_id)
            return None
        await uow.commit()
        job = await jobs.fresh(job_id)
        if job is None:
            return None
        uow.session.expunge(job)
    try:
        await _run(database, job, live_progress=live_progress)
    except asyncio.CancelledError:
        await _fail(database, job_id, STOPPED)
        raise
    except JobRefused as exc:
        await _fail(database, job_id, exc.message, report=exc.report)
    except AppError as exc:
        await _fail(database, job_id, exc.message)
    except Exception as exc:
        logger.exception("Job %s (%s of %s) failed", job_id, job.kind.value, job.model)
        await _fail(database, job_id, f"unexpected {type(exc).__name__}")
    return await _reload(database, job_id)


async def _run(database: Database, job: Job, *, live_progress: bool) -> None:
    async with unit_of_work(database, BOOKKEEPER, writes=False) as uow:
        owner = await owner_actor(uow, job)
    run = JobRun(job=job, database=database, owner=owner, live_progress=live_progress)
    await kind_function(job.kind)(run, job)
    if not run.finished:
        await run.finish()


async def _fail(
    database: Database, job_id: int, reason: str, *, report: dict[str, Any] | None = None
) -> None:
    async with unit_of_work(database, BOOKKEEPER, audit=False) as uow:
        await uow.repo(JobRepository).fail(job_id, reason, expected=(JobStatus.RUNNING,), report=report)
        await uow.commit()


async def _reload(database: Database, job_id: int) -> Job | None:
    async with unit_of_work(database, BOOKKEEPER, writes=False) as uow:
        return await uow.repo(JobRepository).fresh(job_id)
