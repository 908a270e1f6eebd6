"""`manage.py worker` runs queued jobs (PostgreSQL); `manage.py jobs list` shows them, and
`manage.py jobs cleanup` deletes the files of jobs finished long ago."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from backend.cli.context import current_settings, on_database, run
from backend.cli.output import say
from backend.config import Settings
from backend.db import migrations
from backend.db.errors import is_database_unavailable, unavailable
from backend.db.session import Database
from backend.errors import AppError
from backend.jobs.cleanup import remove_expired_files
from backend.jobs.progress import progress_of
from backend.models.jobs import Job, JobStatus

ON_SQLITE = (
    "Jobs run in-process on SQLite: there is no worker to start "
    "(point DATABASE_URL at PostgreSQL to run jobs on a worker)."
)


@click.command()
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Jobs run at the same time.",
)
@click.option("--once", is_flag=True, help="Run the jobs queued now, then exit.")
def worker(concurrency: int, once: bool) -> None:
    """Run queued imports and exports (PostgreSQL) until stopped; Ctrl-C lets running jobs finish."""
    settings = current_settings()
    if settings.is_sqlite:
        raise AppError(ON_SQLITE)
    if not once:
        say(f"Worker on {settings.safe_database_url} (concurrency {concurrency}); Ctrl-C stops it.")
    run(_work(settings, concurrency=concurrency, once=once))


async def _work(settings: Settings, *, concurrency: int, once: bool) -> None:
    from backend.jobs.queue import run_worker  # the queue's client loads only for this command

    database = Database(settings)
    try:
        await _check_database(settings, database)
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        await run_worker(database, concurrency=concurrency, once=once)
    finally:
        await database.dispose()


async def _check_database(settings: Settings, database: Database) -> None:
    """Fail at once, in one line, when the database is down or not migrated (no queue tables)."""
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(migrations.database_revisions)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise unavailable(settings, exc) from exc
        raise
    behind = await migrations.not_migrated(settings, database.engine)
    if behind is not None:
        raise behind


@click.group()
def jobs() -> None:
    """Imports and exports run as jobs."""


@jobs.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="How many.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([status.value for status in JobStatus]),
    help="Only these.",
)
def list_jobs(limit: int, statuses: tuple[str, ...]) -> None:
    """Jobs of every user, newest first: id, owner, kind, model, status, progress."""
    wanted = tuple(JobStatus(status) for status in statuses)
    found = run(_newest(limit, wanted))
    if not found:
        say("No jobs.")
        return
    now = datetime.now(UTC)
    say(f"{'id':>6}  {'owner':<20} {'kind':<7} {'model':<14} {'status':<8} progress")
    for job in found:
        say(
            f"{job.id:>6}  {job.owner_name[:20]:<20} {job.kind.value:<7} {job.model[:14]:<14} "
            f"{job.status.value:<8} {_progress_text(job, now)}"
        )


async def _newest(limit: int, statuses: tuple[JobStatus, ...]) -> list[Job]:
    from backend.jobs.service import JobService  # the queue's client loads only for this command

    return await on_database(lambda database: JobService(database).newest(limit=limit, statuses=statuses))


@jobs.command("cleanup")
def cleanup() -> None:
    """Delete the uploads and results of jobs finished more than JOB_FILES_KEEP_DAYS days ago."""
    settings = current_settings()
    cleaned = run(on_database(remove_expired_files))
    say(
        f"Removed {cleaned} of jobs finished more than {settings.job_files_keep_days} days ago "
        f"(JOB_FILES_KEEP_DAYS) from {settings.job_files_dir}."
    )


def _progress_text(job: Job, now: datetime) -> str:
    progress = progress_of(job, now)
    text = f"{progress.done:,}" + (f" / {progress.total:,}" if progress.total is not None else "")
    if progress.percent is not None:
        text += f" ({progress.percent}%)"
    if job.status is JobStatus.FAILED and job.error:
        text += f" - {job.error}"
    return text


COMMANDS = (worker, jobs)
