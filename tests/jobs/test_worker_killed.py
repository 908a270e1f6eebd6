"""A real `manage.py worker` killed (SIGKILL) mid-import: nothing written, the job failed with the
reason once its heartbeat is missed, and a retry does the whole import."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.jobs.queue import STALLED, stalled_after
from backend.jobs.service import JobService
from backend.models import Tag
from backend.models.jobs import Job, JobStatus
from tests.cli.conftest import REPO, run_manage_py
from tests.databases import TEST_SECRET_KEY
from tests.factories import unique
from tests.jobs.conftest import new_actor

pytestmark = pytest.mark.postgres

ROWS = 20_000  # many progress reports (one per 500 rows) before the import can finish, however fast it runs


def worker_environment(database: Database) -> dict[str, str]:
    settings = database.settings
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": settings.database_url,
        "JOB_FILES_DIR": str(settings.job_files_dir),
        "JOB_HEARTBEAT_SECONDS": str(settings.job_heartbeat_seconds),
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def running_worker(database: Database, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=REPO,
            env=worker_environment(database),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def read_job(database: Database, job_id: int) -> Job:
    """The row as stored, without the service (which would fail a stalled job on sight)."""
    async with database.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def tags_named(database: Database, prefix: str) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).where(Tag.name.like(f"{prefix}%"))) or 0)


async def import_killed_mid_way(database: Database, tmp_path: Path) -> tuple[Actor, Job, str]:
    """Submit an import of ROWS tags, let a worker write part of it, kill the worker (SIGKILL)."""
    prefix = unique("killed-")
    async with database.sessions() as session:
        actor = await new_actor(session, roles=["editor"])
    data = ("Name\n" + "".join(f"{prefix}{index:05d}\n" for index in range(ROWS))).encode()
    log = tmp_path / "worker.log"
    with running_worker(database, log) as worker:
        job = await JobService(database).submit(
            actor, kind="import", table="tag", format="csv", params={"file_name": "tags.csv"}, data=data
        )
        deadline = time.monotonic() + 90
        while True:
            stored = await read_job(database, job.id)
            if stored.status is JobStatus.RUNNING and stored.rows_done >= 500:
                break
            assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
            assert stored.status in (JobStatus.QUEUED, JobStatus.RUNNING), stored.error
            assert time.monotonic() < deadline, "the worker never reported progress"
            await asyncio.sleep(0.1)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    stored = await read_job(database, job.id)
    assert stored.status is JobStatus.RUNNING and 500 <= stored.rows_done < ROWS
    assert await tags_named(database, prefix) == 0, "rows of a killed import were written"
    # Until the dead worker's heartbeat is overdue, nobody can tell it from a slow one.
    await asyncio.sleep(stalled_after(database.settings) + 1)
    return actor, job, prefix


async def test_the_page_fails_the_killed_job_and_a_retry_imports_everything(
    queue_database: Database, tmp_path: Path
) -> None:
    actor, job, prefix = await import_killed_mid_way(queue_database, tmp_path)
    service = JobService(queue_database)

    seen = await service.get_mine(actor, job.id)  # what the job page asks

    assert (seen.status, seen.error) == (JobStatus.FAILED, STALLED)
    assert await tags_named(queue_database, prefix) == 0

    retried = await service.retry(actor, job.id)
    assert retried.status is JobStatus.QUEUED
    finished = run_manage_py("worker", "--once", env=worker_environment(queue_database), timeout=180)
    assert finished.code == 0, finished.err[-3000:]

    done = await service.get_mine(actor, job.id)
    assert done.status is JobStatus.DONE, done.error
    assert done.attempts == 2 and (done.rows_done, done.rows_total) == (ROWS, ROWS)
    assert await tags_named(queue_database, prefix) == ROWS


async def test_the_next_worker_fails_the_killed_job_when_it_starts(
    queue_database: Database, tmp_path: Path
) -> None:
    _, job, prefix = await import_killed_mid_way(queue_database, tmp_path)

    started = run_manage_py("worker", "--once", env=worker_environment(queue_database), timeout=120)

    assert started.code == 0, started.err[-3000:]
    stored = await read_job(queue_database, job.id)
    assert (stored.status, stored.error) == (JobStatus.FAILED, STALLED)
    assert await tags_named(queue_database, prefix) == 0
