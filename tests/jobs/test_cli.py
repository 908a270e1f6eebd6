"""`manage.py worker` and `manage.py jobs list`; migration 0007 up and down through the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import inspect, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from backend.db.session import Database
from backend.jobs.service import JobService
from backend.models.jobs import Job, JobStatus
from tests.cli.conftest import Runner
from tests.databases import SQLITE, UNREACHABLE_POSTGRES_URL, make_settings
from tests.jobs.conftest import new_actor


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def _two_jobs(url: str, folder: Path) -> tuple[str, int, int]:
    """A done export and a failed one (its file gone), of one auditor; on SQLite they run at once."""
    database = Database(make_settings(url, job_files_dir=str(folder)))
    try:
        async with database.sessions() as session:
            actor = await new_actor(session, roles=["auditor"])
        service = JobService(database)
        done = await service.submit(actor, kind="export", table="tag", format="csv")
        failed = await service.submit(actor, kind="export", table="tag", format="csv")
        async with database.sessions() as session:
            await session.execute(
                update(Job).where(Job.id == failed.id).values(status=JobStatus.FAILED, error="Disk full.")
            )
            await session.commit()
        return actor.username, done.id, failed.id
    finally:
        await database.dispose()


@pytest.mark.sqlite
def test_worker_on_sqlite_says_jobs_run_in_process(cli: Runner, db_url: str) -> None:
    result = cli("worker", "--once", url=db_url)

    assert result.code == 1 and result.no_traceback
    assert result.err.strip() == (
        "Error: Jobs run in-process on SQLite: there is no worker to start "
        "(point DATABASE_URL at PostgreSQL to run jobs on a worker)."
    )


@pytest.mark.postgres
def test_worker_refuses_an_unmigrated_or_unreachable_database_in_one_line(
    cli: Runner, fresh_url: str
) -> None:
    behind = cli("worker", "--once", url=fresh_url)
    assert behind.code == 1 and behind.no_traceback
    assert "is not migrated: run 'python manage.py migrate' first." in behind.err
    assert len(behind.err.strip().splitlines()) == 1

    down = cli("worker", url=UNREACHABLE_POSTGRES_URL)
    assert down.code == 1 and down.no_traceback
    assert down.err.startswith("Error: ") and len(down.err.strip().splitlines()) == 1


def test_jobs_list_shows_every_users_jobs(cli: Runner, db_url: str, db_backend: str, tmp_path: Path) -> None:
    owner, done_id, failed_id = asyncio.run(_two_jobs(db_url, tmp_path))

    listed = cli("jobs", "list", url=db_url)

    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["id", "owner", "kind", "model", "status", "progress"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert by_id[str(failed_id)].split()[1:5] == [owner[:20], "export", "tag", "failed"]
    assert by_id[str(failed_id)].endswith("- Disk full.")
    expected = "done" if db_backend == SQLITE else "queued"  # no worker ran on PostgreSQL
    assert by_id[str(done_id)].split()[4] == expected

    only_failed = cli("jobs", "list", "--status", "failed", url=db_url)
    assert [line.split()[0] for line in only_failed.out.splitlines()[1:]] == [str(failed_id)]
    assert cli("jobs", "list", "--status", "running", url=db_url).out.strip() == "No jobs."


def test_jobs_list_before_migrate_is_one_line(cli: Runner, fresh_url: str) -> None:
    result = cli("jobs", "list", url=fresh_url)

    assert result.code == 1 and result.no_traceback
    assert "is not migrated" in result.err and len(result.err.strip().splitlines()) == 1


def test_migration_0007_goes_down_and_up_again(cli: Runner, db_url: str, db_backend: str) -> None:
    tables = asyncio.run(_tables(db_url))
    assert "job" in tables
    assert ("procrastinate_jobs" in tables) is (db_backend != SQLITE)

    down = cli("downgrade", "0006", "--yes", url=db_url)
    assert down.code == 0, down.err
    assert "Database is at 0006." in down.out
    tables = asyncio.run(_tables(db_url))
    assert "job" not in tables and not {name for name in tables if name.startswith("procrastinate")}

    again = cli("migrate", url=db_url)
    assert again.code == 0, again.err
    assert "Applied 0007" in again.out
    assert {"job", *(["procrastinate_jobs"] if db_backend != SQLITE else [])} <= asyncio.run(_tables(db_url))
