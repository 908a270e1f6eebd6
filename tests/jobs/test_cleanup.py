"""Job files expire: `manage.py jobs cleanup`, the worker's hourly run, and a job whose files are gone."""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.config import Settings
from backend.db.session import Database
from backend.errors import Conflict, NotFound
from backend.jobs import files
from backend.jobs.cleanup import remove_expired_files
from backend.jobs.queue import CLEAN_FILES, CLEAN_FILES_CRON, opened, queue_app, run_worker, schedule_cleanup
from backend.jobs.service import JobService
from backend.models.jobs import Job, JobKind, JobStatus
from tests.admin.conftest import client_for, csrf_from, sign_in
from tests.cli.conftest import Runner
from tests.databases import make_settings
from tests.factories import make_user
from tests.jobs.conftest import actor_of
from tests.jobs.factories import EXPORTED, make_job

DAY = timedelta(days=1)
UPLOADED = b"Name\nred\n"


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


def _age(path: Path, days: float) -> None:
    then = time.time() - days * 86_400
    os.utime(path, (then, then))


async def _jobs_with_files(session: AsyncSession, settings: Settings) -> dict[str, Path]:
    """Files of jobs at every age and status, and files no job owns; the names say what each is."""
    owner = await make_user(session, roles=["manager"])
    now = datetime.now(UTC)
    old_export = await make_job(session, owner, settings=settings, finished_at=now - 8 * DAY)
    recent_export = await make_job(session, owner, settings=settings, finished_at=now - 6 * DAY)
    old_import = await make_job(
        session, owner, kind=JobKind.IMPORT, status=JobStatus.FAILED, finished_at=now - 30 * DAY
    )
    running = await make_job(
        session, owner, kind=JobKind.IMPORT, status=JobStatus.RUNNING, created_at=now - 30 * DAY
    )
    await session.commit()
    paths = {
        "old export": files.result_path(settings, old_export),
        "recent export": files.result_path(settings, recent_export),
        "old import": files.upload_path(settings, old_import),
        "running import": files.upload_path(settings, running),
        "orphan": Path(settings.job_files_dir) / f"999999-{'a' * 32}.result",
        "new orphan": Path(settings.job_files_dir) / f"999998-{'b' * 32}.upload",
        "not a job's": Path(settings.job_files_dir) / "notes.txt",
        "a preview's": Path(settings.job_files_dir) / "uploads" / f"{'c' * 32}.upload",
    }
    for name, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(UPLOADED)
        if name != "new orphan":
            _age(path, 40)  # file times do not count for a job that owns the file: its end does
    return paths


async def _setup(url: str, folder: Path) -> dict[str, Path]:
    database = Database(make_settings(url, job_files_dir=str(folder)))
    try:
        async with database.sessions() as session:
            return await _jobs_with_files(session, database.settings)
    finally:
        await database.dispose()


def test_jobs_cleanup_deletes_the_files_of_jobs_finished_long_ago(
    cli: Runner, db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "jobs"
    paths = asyncio.run(_setup(db_url, folder))
    freed = len(EXPORTED) + 2 * len(UPLOADED)

    result = cli("jobs", "cleanup", url=db_url, env={"JOB_FILES_DIR": str(folder)})

    assert result.code == 0 and result.err == "", result.err
    assert result.out == (
        f"Removed 3 files, {freed} bytes of jobs finished more than 7 days ago (JOB_FILES_KEEP_DAYS) "
        f"from {folder}.\n"
    )
    assert sorted(name for name, path in paths.items() if not path.exists()) == [
        "old export", "old import", "orphan"
    ]  # fmt: skip
    again = cli("jobs", "cleanup", url=db_url, env={"JOB_FILES_DIR": str(folder)})
    assert again.code == 0 and again.out.startswith("Removed 0 files, 0 bytes of jobs finished")
    five_days = {"JOB_FILES_DIR": str(folder), "JOB_FILES_KEEP_DAYS": "5"}
    sooner = cli("jobs", "cleanup", url=db_url, env=five_days)
    assert sooner.out.startswith(f"Removed 1 file, {len(EXPORTED)} bytes of jobs finished more than 5 days")
    assert not paths["recent export"].exists() and paths["running import"].exists()


def test_jobs_cleanup_refuses_bad_settings_and_unmigrated_databases_in_one_line(
    cli: Runner, fresh_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "jobs"
    zero_days = {"JOB_FILES_DIR": str(folder), "JOB_FILES_KEEP_DAYS": "0"}
    bad = cli("jobs", "cleanup", url=fresh_url, env=zero_days)
    assert bad.code == 1 and bad.no_traceback and "JOB_FILES_KEEP_DAYS" in bad.err, bad.err
    folder.mkdir()
    (folder / f"1-{'a' * 32}.result").write_bytes(EXPORTED)
    unmigrated = cli(
        "jobs", "cleanup", url=fresh_url, env={"JOB_FILES_DIR": str(folder), "JOB_FILES_KEEP_DAYS": "7"}
    )
    assert unmigrated.code == 1 and unmigrated.no_traceback
    assert len(unmigrated.err.splitlines()) == 1 and "migrate" in unmigrated.err, unmigrated.err
    assert (folder / f"1-{'a' * 32}.result").exists()


async def test_a_cleaned_export_says_its_file_is_no_longer_kept(
    app: Starlette, session: AsyncSession, job_settings: Settings, job_database: Database
) -> None:
    user = await make_user(session, roles=["auditor"])
    job = await make_job(session, user, settings=job_settings, finished_at=datetime.now(UTC) - 8 * DAY)
    await session.commit()
    actor = await actor_of(session, user)
    service = JobService(job_database)
    assert (await service.result_file(actor, job.id)).path.read_bytes() == EXPORTED

    assert (await remove_expired_files(job_database)).files == 1

    with pytest.raises(NotFound, match=r"^The file of this export is no longer kept; export again\.$"):
        await service.result_file(actor, job.id)
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        page = await client.get(f"/admin/jobs/{job.id}")
        assert page.status_code == 200 and "/download" not in page.text and 'id="job-file-gone"' in page.text
        download = await client.get(f"/admin/jobs/{job.id}/download")
        assert download.status_code == 404
        assert "The file of this export is no longer kept; export again." in download.text


async def test_a_cleaned_import_cannot_be_retried_and_says_why(
    app: Starlette, session: AsyncSession, job_settings: Settings, job_database: Database
) -> None:
    user = await make_user(session, roles=["editor"])
    job = await make_job(
        session,
        user,
        kind=JobKind.IMPORT,
        status=JobStatus.FAILED,
        finished_at=datetime.now(UTC) - 8 * DAY,
        params={"file_name": "tags.csv", "key": None, "skip_errors": False, "hash": "0" * 64},
    )
    await session.commit()
    files.jobs_folder(job_settings)
    files.upload_path(job_settings, job).write_bytes(UPLOADED)

    assert (await remove_expired_files(job_database)).files == 1

    message = "The uploaded file of this job is no longer kept; import the file again."
    with pytest.raises(Conflict, match=f"^{re.escape(message)}$"):
        await JobService(job_database).retry(await actor_of(session, user), job.id)
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        page = await client.get(f"/admin/jobs/{job.id}")
        retried = await client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": csrf_from(page.text)})
        assert retried.status_code == 303
        after = await client.get(retried.headers["location"])
        assert message in after.text
    await session.refresh(job)
    assert job.status is JobStatus.FAILED


def test_every_long_running_worker_queues_the_cleanup_hourly() -> None:
    app = queue_app(make_settings("postgresql+asyncpg://localhost/unused"), pool_size=2)
    assert not app.periodic_registry.periodic_tasks  # the web app and the CLI schedule nothing

    schedule_cleanup(app)

    (periodic,) = app.periodic_registry.periodic_tasks.values()
    assert periodic.task.name == CLEAN_FILES and periodic.cron == CLEAN_FILES_CRON == "0 * * * *"
    assert periodic.task.queueing_lock == CLEAN_FILES  # one waiting run at most, whatever the backlog


@pytest.mark.postgres
async def test_a_worker_runs_the_queued_cleanup(queue_database: Database) -> None:
    async with queue_database.sessions() as session:
        paths = await _jobs_with_files(session, queue_database.settings)
    async with opened(queue_database.settings) as app:
        await app.configure_task(CLEAN_FILES).defer_async(timestamp=int(time.time()))

    await run_worker(queue_database, concurrency=1, once=True)

    assert sorted(name for name, path in paths.items() if not path.exists()) == [
        "old export", "old import", "orphan"
    ]  # fmt: skip
    async with queue_database.sessions() as session:
        assert await session.get(Job, int(paths["old export"].name.split("-")[0])) is not None
