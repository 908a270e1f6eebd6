"""The job queue on PostgreSQL: procrastinate, in the application's own database.

A job row is queued by deferring one procrastinate task, `run_job(job_id)`,
which a worker (`manage.py worker`) runs through `backend.jobs.runner`.
Procrastinate connects with psycopg to the database of `DATABASE_DIRECT_URL`,
else `DATABASE_URL` (their "+asyncpg" driver name stripped); its schema comes
with migration 0007.

A worker that dies mid-job (SIGKILL, a lost machine) stops sending its
heartbeat; procrastinate then reports the job as stalled. Such jobs are
failed, with `STALLED` as the reason, when a worker starts, every heartbeat
interval while one runs, and whenever someone looks at a job that should be
running; the job's transaction died with the worker, so nothing was written,
and the job can be retried.

Each long-running worker also queues, at most once an hour, the deletion of
the files of jobs finished more than `JOB_FILES_KEEP_DAYS` ago (`cleanup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Status
from psycopg_pool import AsyncNullConnectionPool

from backend.config import Settings
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import AppError, DatabaseUnavailable
from backend.jobs.cleanup import remove_expired_files
from backend.jobs.runner import BOOKKEEPER, run_job
from backend.jobs.store import JobRepository
from backend.models.jobs import JobStatus

logger = logging.getLogger(__name__)

RUN_JOB = "custodian.run_job"
CLEAN_FILES = "custodian.clean_job_files"
# Every hour on the hour; procrastinate defers one run per slot, however many workers run.
CLEAN_FILES_CRON = "0 * * * *"
QUEUE = "custodian"
DATABASE_KEY = "custodian.database"  # the worker's `Database`, in each job's context
STALLED = "The worker stopped while running this job; nothing was written."
UNREACHABLE = "The job queue cannot be reached; try again in a moment."
HEARTBEATS_MISSED = 3  # a worker silent for this many heartbeat intervals is taken for dead


class JobFailed(Exception):
    """Raised to procrastinate for a job that failed, so its own record says failed too."""


def stalled_after(settings: Settings) -> float:
    """Seconds without a heartbeat after which a worker, and the job it was running, are given up."""
    return settings.job_heartbeat_seconds * HEARTBEATS_MISSED


def queue_conninfo(settings: Settings) -> str:
    """The libpq connection string of the queue, without SQLAlchemy's driver name.

    DATABASE_DIRECT_URL when set: a worker LISTENs for new jobs and takes
    advisory locks, which live in a server session that transaction pooling
    hands to another client after each transaction.
    """
    return settings.direct_url.set(drivername="postgresql").render_as_string(hide_password=False)


def queue_app(settings: Settings, *, pool_size: int | None = None) -> App:
    """A procrastinate app over the application's database, with the `run_job` task.

    With `pool_size` (a worker) it keeps a pool of connections; without (the
    web app and the CLI, which queue or inspect a job now and then) every
    call opens a connection of its own and closes it, so nothing stays open
    between requests.
    """
    connection = {
        "connect_timeout": max(2, math.ceil(settings.db_connect_timeout)),
        "application_name": "custodian-jobs",
    }
    if pool_size is None:
        connector = PsycopgConnector(
            conninfo=queue_conninfo(settings), kwargs=connection, pool_factory=AsyncNullConnectionPool
        )
    else:
        connector = PsycopgConnector(
            conninfo=queue_conninfo(settings), kwargs=connection, min_size=1, max_size=pool_size
        )
    app = App(connector=connector)
    app.task(name=RUN_JOB, queue=QUEUE, pass_context=True)(_run_job_task)
    # A queued run, at most one at a time: a worker that was down for hours does not run it again per hour.
    app.task(name=CLEAN_FILES, queue=QUEUE, pass_context=True, queueing_lock=CLEAN_FILES)(_clean_files_task)
    return app


def schedule_cleanup(app: App) -> None:
    """Have `app`'s workers queue the expired job files' cleanup hourly (`cleanup.remove_expired_files`).

    Only a long-running worker schedules it: a `--once` worker runs what is
    queued now, and the web app and the CLI run no worker at all.
    """
    app.periodic(cron=CLEAN_FILES_CRON, periodic_id="hourly")(app.tasks[CLEAN_FILES])


async def _run_job_task(context: JobContext, job_id: int) -> None:
    database: Database = context.additional_context[DATABASE_KEY]
    job = await run_job(database, job_id, queue_job_id=context.job.id)
    if job is not None and job.status is JobStatus.FAILED:
        raise JobFailed(f"job {job_id}: {job.error}")


async def _clean_files_task(context: JobContext, timestamp: int) -> None:
    database: Database = context.additional_context[DATABASE_KEY]
    await remove_expired_files(database)


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[App]:
    """A short-lived app for one request or command; connection failures become `DatabaseUnavailable`."""
    app = queue_app(settings)
    try:
        async with app.open_async():
            yield app
    except queue_errors.ConnectorException as exc:
        raise DatabaseUnavailable(UNREACHABLE) from exc


async def enqueue(settings: Settings, job_id: int) -> int:
    """Queue job `job_id` for a worker; the queue's own job id."""
    async with opened(settings) as app:
        return await app.configure_task(RUN_JOB, queue=QUEUE).defer_async(job_id=job_id)


async def fail_stalled(app: App, database: Database) -> list[int]:
    """Fail the jobs whose worker stopped sending heartbeats; the ids of the jobs failed."""
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=RUN_JOB, seconds_since_heartbeat=stalled_after(database.settings)
    )
    failed = []
    for queued in stalled:
        if queued.id is None:  # read from the queue's table: never, but the type allows it
            continue
        try:
            await app.job_manager.finish_job_by_id_async(queued.id, Status.FAILED, delete_job=False)
        except queue_errors.ConnectorException:
            logger.info("Queue job %s ended meanwhile: left as it is.", queued.id)
            continue
        job_id = queued.task_kwargs.get("job_id")
        if not isinstance(job_id, int):
            continue
        async with unit_of_work(database, BOOKKEEPER, audit=False) as uow:
            if await uow.repo(JobRepository).fail(job_id, STALLED, queue_job_id=queued.id):
                failed.append(job_id)
            await uow.commit()
    if failed:
        logger.warning("Jobs %s were running on a worker that stopped: failed, ready to retry.", failed)
    return failed


async def fail_stalled_now(database: Database) -> list[int]:
    """`fail_stalled` with a connection of its own (a page or a command looking at running jobs)."""
    async with opened(database.settings) as app:
        return await fail_stalled(app, database)


async def run_worker(database: Database, *, concurrency: int, once: bool) -> None:
    """Run jobs until stopped (SIGINT/SIGTERM: running jobs finish first), or, `once`, until none is left."""
    settings = database.settings
    app = queue_app(settings, pool_size=concurrency + 3)
    options: dict[str, Any] = {
        "queues": [QUEUE],
        "name": "custodian-worker",
        "concurrency": concurrency,
        "wait": not once,
        "listen_notify": not once,
        "install_signal_handlers": not once,
        "additional_context": {DATABASE_KEY: database},
        "update_heartbeat_interval": settings.job_heartbeat_seconds,
        "stalled_worker_timeout": stalled_after(settings),
    }
    try:
        async with app.open_async():
            await fail_stalled(app, database)
            if once:
                await app.run_worker_async(**options)
                return
            schedule_cleanup(app)
            watcher = asyncio.create_task(_keep_failing_stalled(app, database))
            try:
                await app.run_worker_async(**options)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    except queue_errors.ConnectorException as exc:
        raise DatabaseUnavailable(UNREACHABLE) from exc


async def _keep_failing_stalled(app: App, database: Database) -> None:
    # A worker started within a dead one's heartbeat window cannot tell yet: look again, every interval.
    while True:
        await asyncio.sleep(database.settings.job_heartbeat_seconds)
        try:
            await fail_stalled(app, database)
        except (queue_errors.ConnectorException, AppError, OSError):
            logger.exception("Looking for stalled jobs failed; trying again in a moment")
