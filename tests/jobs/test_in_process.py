"""Jobs on SQLite: submit runs them in this process at once, with the same rules as the queue."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.jobs import files
from backend.jobs.context import JobRun
from backend.jobs.kinds import KINDS
from backend.jobs.service import JobService
from backend.models import AuditEntry, Tag, User
from backend.models.jobs import Job, JobKind, JobStatus
from tests.factories import make_role, make_tag, make_user, unique
from tests.jobs.conftest import actor_of, new_actor

pytestmark = pytest.mark.sqlite


def tags_csv(*names: str) -> bytes:
    return ("Name\n" + "".join(f"{name}\n" for name in names)).encode()


async def count_tags(session: AsyncSession, prefix: str) -> int:
    return int(await session.scalar(select(func.count()).where(Tag.name.like(f"{prefix}%"))) or 0)


async def test_an_export_runs_at_once_and_keeps_its_file(
    job_database: Database, session: AsyncSession
) -> None:
    prefix = unique("exp-")
    for index in range(3):
        await make_tag(session, name=f"{prefix}{index}")
    await session.commit()
    actor = await new_actor(session, roles=["auditor"])
    search = {"term": prefix, "fields": ["name"]}

    job = await JobService(job_database).submit(
        actor, kind="export", table="tag", format="csv", params={"search": search, "order_by": ["-name"]}
    )

    assert job.status is JobStatus.DONE, job.error
    assert (job.rows_done, job.rows_total, job.attempts) == (3, 3, 1)
    assert job.result_name == "tag.csv" and job.result_media_type is not None
    found = await JobService(job_database).result_file(actor, job.id)
    rows = list(csv.reader(io.StringIO(found.path.read_text())))
    assert rows[0] == ["ID", "Name"]
    assert [row[1] for row in rows[1:]] == [f"{prefix}2", f"{prefix}1", f"{prefix}0"]
    assert found.path.parent == job_database.settings.job_files_dir


async def test_an_import_writes_in_one_transaction_and_keeps_its_report(
    job_database: Database, session: AsyncSession
) -> None:
    prefix = unique("imp-")
    actor = await new_actor(session, roles=["editor"])

    job = await JobService(job_database).submit(
        actor,
        kind=JobKind.IMPORT,
        table="tag",
        format="csv",
        params={"file_name": "tags.csv"},
        data=tags_csv(f"{prefix}a", f"{prefix}b"),
    )

    assert job.status is JobStatus.DONE, job.error
    assert job.report is not None and job.report["written"] is True
    assert job.report["totals"] == {"new": 2, "changed": 0, "unchanged": 0, "error": 0}
    assert [row["status"] for row in job.report["rows"]] == ["new", "new"]
    assert (job.rows_done, job.rows_total) == (2, 2)
    assert await count_tags(session, prefix) == 2
    assert not files.upload_path(job_database.settings, job).exists()  # imported: not kept any longer
    import_id = job.report["import_id"]
    entries = await session.scalar(select(func.count()).where(AuditEntry.import_id == import_id))
    assert entries == 3  # two tags created, one entry for the file
    actors = set(
        (
            await session.execute(select(AuditEntry.actor_name).where(AuditEntry.import_id == import_id))
        ).scalars()
    )
    assert actors == {actor.username}  # the job acted as its owner


async def test_an_import_with_row_errors_fails_writes_nothing_and_keeps_the_report(
    job_database: Database, session: AsyncSession
) -> None:
    prefix = unique("bad-")
    actor = await new_actor(session, roles=["editor"])

    job = await JobService(job_database).submit(
        actor,
        kind="import",
        table="tag",
        format="csv",
        params={"file_name": "tags.csv"},
        data=tags_csv(f"{prefix}a", "x" * 200),  # a tag name holds 60 characters
    )

    assert job.status is JobStatus.FAILED
    assert job.error == "1 row has an error: nothing was imported."
    assert job.report is not None and job.report["written"] is False
    error_row = next(row for row in job.report["rows"] if row["status"] == "error")
    assert error_row["number"] == 3 and error_row["errors"]
    assert await count_tags(session, prefix) == 0
    assert files.upload_path(job_database.settings, job).is_file()  # kept for a retry


async def test_a_failing_kind_rolls_back_what_it_wrote_and_says_why(
    job_database: Database, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("half-")

    async def writes_then_breaks(run: JobRun, job: Job) -> None:
        async with unit_of_work(run.database, run.owner) as uow:
            uow.session.add(Tag(name=name))
            await uow.flush()
            raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setitem(KINDS, JobKind.IMPORT, writes_then_breaks)
    actor = await new_actor(session, roles=["editor"])

    job = await JobService(job_database).submit(
        actor, kind="import", table="tag", format="csv", params={"file_name": "t.csv"}, data=tags_csv("a")
    )

    assert job.status is JobStatus.FAILED
    assert job.error == "unexpected RuntimeError"  # the details stay in the log
    assert await count_tags(session, name) == 0


async def test_a_refusal_is_the_jobs_reason_and_a_retry_is_a_new_attempt(
    job_database: Database, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    async def fails_once(run: JobRun, job: Job) -> None:
        attempts.append(job.attempts)
        if len(attempts) == 1:
            raise Conflict("The category changed meanwhile.")
        await run.progress(5, 5)

    monkeypatch.setitem(KINDS, JobKind.EXPORT, fails_once)
    actor = await new_actor(session, roles=["auditor"])
    service = JobService(job_database)

    failed = await service.submit(actor, kind="export", table="tag", format="json")
    assert (failed.status, failed.error) == (JobStatus.FAILED, "The category changed meanwhile.")

    retried = await service.retry(actor, failed.id)

    assert retried.status is JobStatus.DONE and retried.error is None
    assert attempts == [1, 2] and retried.attempts == 2
    assert (retried.rows_done, retried.rows_total) == (5, 5)
    with pytest.raises(Conflict, match="Only a failed job"):
        await service.retry(actor, failed.id)


async def test_submit_needs_the_kinds_permission_and_sane_input(
    job_database: Database, session: AsyncSession
) -> None:
    service = JobService(job_database)
    editor = await new_actor(session, roles=["editor"])  # imports the catalog, exports nothing
    jobs_before = await session.scalar(select(func.count()).select_from(Job))

    with pytest.raises(PermissionDenied, match=r"tag\.export"):
        await service.submit(editor, kind="export", table="tag", format="csv")
    with pytest.raises(PermissionDenied, match=r"customer\.import"):
        await service.submit(editor, kind="import", table="customer", format="csv", data=b"Name\n")
    with pytest.raises(NotFound):
        await service.submit(editor, kind="import", table="no_such_table", format="csv", data=b"x")
    with pytest.raises(ValidationFailed, match="The format must be"):
        await service.submit(editor, kind="import", table="tag", format="exe", data=b"x")
    with pytest.raises(ValidationFailed, match="needs its file"):
        await service.submit(editor, kind="import", table="tag", format="csv")
    with pytest.raises(ValidationFailed, match="A job is one of"):
        await service.submit(editor, kind="launch", table="tag", format="csv")

    auditor = await new_actor(session, roles=["auditor"])
    with pytest.raises(ValidationFailed, match="no column"):
        await service.submit(auditor, kind="export", table="tag", format="csv", params={"order_by": ["nope"]})
    no_pii = await make_role(session, permissions=["customer.view", "customer.export"])
    user = await make_user(session)
    user.roles = [no_pii]
    await session.commit()
    exporter = await actor_of(session, user)
    for hidden in ({"filters": [["email", "a@example.com"]]}, {"order_by": ["-email"]}):
        with pytest.raises(ValidationFailed, match="not see"):
            await service.submit(exporter, kind="export", table="customer", format="csv", params=hidden)

    assert await session.scalar(select(func.count()).select_from(Job)) == jobs_before


async def test_another_users_job_is_not_found_anywhere(job_database: Database, session: AsyncSession) -> None:
    service = JobService(job_database)
    owner = await new_actor(session, roles=["auditor"])
    other = await new_actor(session, roles=["auditor"])
    superuser = await new_actor(session, superuser=True)
    job = await service.submit(owner, kind="export", table="tag", format="csv")

    for stranger in (other, superuser):
        with pytest.raises(NotFound):
            await service.get_mine(stranger, job.id)
        with pytest.raises(NotFound):
            await service.result_file(stranger, job.id)
        with pytest.raises(NotFound):
            await service.retry(stranger, job.id)
        assert job.id not in {found.id for found in await service.my_jobs(stranger)}
    assert next(found.id for found in await service.my_jobs(owner)) == job.id


async def test_a_download_checks_the_permission_again(job_database: Database, session: AsyncSession) -> None:
    service = JobService(job_database)
    exporter = await make_role(session, permissions=["tag.view", "tag.export"])
    user = await make_user(session)
    user.roles = [exporter]
    await session.commit()
    actor = await actor_of(session, user)
    job = await service.submit(actor, kind="export", table="tag", format="csv")
    assert (await service.result_file(actor, job.id)).path.is_file()

    await session.refresh(exporter, ["permissions"])
    exporter.permissions = [p for p in exporter.permissions if p.codename != "tag.export"]
    await session.commit()
    with pytest.raises(PermissionDenied, match=r"tag\.export"):
        await service.result_file(await actor_of(session, user), job.id)

    files.result_path(job_database.settings, job).unlink()
    with pytest.raises(NotFound, match="no longer kept"):
        await service.result_file(actor, job.id)


async def test_a_job_never_acts_for_an_account_that_cannot_sign_in(
    job_database: Database, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    async def notes(run: JobRun, job: Job) -> None:
        ran.append(run.owner.username)

    monkeypatch.setitem(KINDS, JobKind.EXPORT, notes)
    actor = await new_actor(session, roles=["auditor"])
    service = JobService(job_database)
    first = await service.submit(actor, kind="export", table="tag", format="csv")
    assert first.status is JobStatus.DONE and ran == [actor.username]

    failed = await service.submit(actor, kind="export", table="tag", format="csv")
    await session.execute(update(Job).where(Job.id == failed.id).values(status=JobStatus.FAILED, error="x"))
    await session.execute(update(User).where(User.id == actor.user_id).values(is_active=False))
    await session.commit()

    retried = await service.retry(actor, failed.id)

    assert retried.status is JobStatus.FAILED
    assert retried.error == f"The account {actor.username} that started this job can no longer sign in."
    assert ran == [actor.username, actor.username]
