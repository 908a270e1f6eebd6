"""Jobs on PostgreSQL: queued on procrastinate, run by a worker, failed and retried cleanly."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select, text

from backend.db.session import Database
from backend.errors import AppError
from backend.jobs.context import JobRun
from backend.jobs.kinds import KINDS
from backend.jobs.queue import run_worker
from backend.jobs.service import JobService
from backend.models import Tag
from backend.models.jobs import Job, JobKind, JobStatus
from tests.factories import make_tag, unique
from tests.jobs.conftest import new_actor

pytestmark = pytest.mark.postgres


async def queue_status(database: Database, queue_job_id: int | None) -> str:
    async with database.engine.connect() as connection:
        status = await connection.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": queue_job_id}
        )
    return str(status)


async def test_an_export_waits_for_a_worker_which_runs_it_with_progress(queue_database: Database) -> None:
    prefix = unique("q-exp-")
    async with queue_database.sessions() as session:
        for index in range(1_200):
            await make_tag(session, name=f"{prefix}{index:05d}")
        await session.commit()
        actor = await new_actor(session, roles=["auditor"])
    service = JobService(queue_database)
    search = {"term": prefix, "fields": ["name"]}

    queued = await service.submit(actor, kind="export", table="tag", format="csv", params={"search": search})

    assert queued.status is JobStatus.QUEUED and queued.queue_job_id is not None
    assert await queue_status(queue_database, queued.queue_job_id) == "todo"

    await run_worker(queue_database, concurrency=1, once=True)

    done = await service.get_mine(actor, queued.id)
    assert done.status is JobStatus.DONE, done.error
    assert (done.rows_done, done.rows_total, done.attempts) == (1_200, 1_200, 1)
    assert done.started_at is not None and done.finished_at is not None
    assert await queue_status(queue_database, queued.queue_job_id) == "succeeded"
    result = await service.result_file(actor, done.id)
    rows = list(csv.reader(io.StringIO(result.path.read_text())))
    assert len(rows) == 1 + 1_200 and rows[1][1] == f"{prefix}00000"


async def test_an_import_on_the_worker_writes_everything_as_its_owner(queue_database: Database) -> None:
    prefix = unique("q-imp-")
    async with queue_database.sessions() as session:
        actor = await new_actor(session, roles=["editor"])
    data = ("Name\n" + "".join(f"{prefix}{index}\n" for index in range(30))).encode()
    service = JobService(queue_database)

    job = await service.submit(
        actor, kind="import", table="tag", format="csv", params={"file_name": "tags.csv"}, data=data
    )
    await run_worker(queue_database, concurrency=2, once=True)

    job = await service.get_mine(actor, job.id)
    assert job.status is JobStatus.DONE, job.error
    assert job.report is not None and job.report["totals"]["new"] == 30
    async with queue_database.sessions() as session:
        written = await session.scalar(select(func.count()).where(Tag.name.like(f"{prefix}%")))
    assert written == 30


async def test_a_failed_job_says_why_and_a_retry_is_a_new_attempt_on_the_queue(
    queue_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    async def fails_first(run: JobRun, job: Job) -> None:
        calls.append(job.attempts)
        if len(calls) == 1:
            raise AppError("The file named a category that does not exist.")

    monkeypatch.setitem(KINDS, JobKind.EXPORT, fails_first)
    async with queue_database.sessions() as session:
        actor = await new_actor(session, roles=["auditor"])
    service = JobService(queue_database)
    job = await service.submit(actor, kind="export", table="tag", format="xlsx")
    first_queue_job = job.queue_job_id

    await run_worker(queue_database, concurrency=1, once=True)

    failed = await service.get_mine(actor, job.id)
    assert (failed.status, failed.error) == (
        JobStatus.FAILED,
        "The file named a category that does not exist.",
    )
    assert await queue_status(queue_database, first_queue_job) == "failed"

    retried = await service.retry(actor, job.id)
    assert retried.status is JobStatus.QUEUED and retried.error is None
    assert retried.queue_job_id not in (None, first_queue_job)
    await run_worker(queue_database, concurrency=1, once=True)

    done = await service.get_mine(actor, job.id)
    assert done.status is JobStatus.DONE and done.attempts == 2 and calls == [1, 2]
