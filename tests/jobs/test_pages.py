"""The "My jobs" pages: one's own jobs only, progress, downloads, reports and retry, for every role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.auth.permissions import BUILTIN_ROLES
from backend.config import Settings
from backend.models import User
from backend.models.jobs import Job, JobKind, JobStatus
from tests.admin.conftest import client_for, csrf_from, sign_in
from tests.factories import make_role, make_user
from tests.jobs.factories import EXPORTED, jobs_of_every_kind, make_job

_TOAST = re.compile(r'<div class="toast-body">(.*?)</div>', re.DOTALL)
_JOB_ROW = re.compile(r'class="job-row" data-job-id="(\d+)"')
REFRESH = '<meta http-equiv="refresh" content="2">'

SignedIn = Callable[..., Awaitable[tuple[httpx.AsyncClient, User]]]


@pytest.fixture
async def signed_in(app: Starlette, session: AsyncSession) -> AsyncIterator[SignedIn]:
    """Clients signed in as new users with the given roles (or as a given user)."""
    clients: list[httpx.AsyncClient] = []

    async def make(
        *, roles: Sequence[str] = (), superuser: bool = False, user: User | None = None
    ) -> tuple[httpx.AsyncClient, User]:
        if user is None:
            user = await make_user(session, roles=roles, is_superuser=superuser)
            await session.commit()
        client = client_for(app)
        clients.append(client)
        response = await sign_in(client, user.username)
        assert response.status_code == 302, response.text
        return client, user

    yield make
    for client in clients:
        await client.aclose()


async def statuses(session: AsyncSession, jobs: Sequence[Job]) -> list[JobStatus]:
    """The jobs' statuses as stored now."""
    ids = [job.id for job in jobs]
    rows = (await session.execute(select(Job.id, Job.status).where(Job.id.in_(ids)))).all()
    found = {job_id: status for job_id, status in rows}
    return [found[job_id] for job_id in ids]


def toasts(page: str) -> list[str]:
    return [" ".join(text.split()) for text in _TOAST.findall(page)]


async def test_my_jobs_lists_only_mine_newest_first(
    signed_in: SignedIn, session: AsyncSession, job_settings: Settings
) -> None:
    client, me = await signed_in(roles=["manager"])
    other = await make_user(session, roles=["manager"])
    mine = await jobs_of_every_kind(session, me, job_settings)
    theirs = await jobs_of_every_kind(session, other, job_settings)
    await session.commit()

    page = await client.get("/admin/jobs")

    assert page.status_code == 200
    listed = [int(found) for found in _JOB_ROW.findall(page.text)]
    assert listed == sorted((job.id for job in mine), reverse=True)
    assert not {job.id for job in theirs} & set(listed)
    assert REFRESH in page.text  # a job is still running
    assert f"/admin/jobs/{mine[2].id}/download" in page.text  # the done export's file


async def test_a_running_job_shows_its_progress_and_refreshes(
    signed_in: SignedIn, session: AsyncSession
) -> None:
    client, me = await signed_in(roles=["auditor"])
    running = await make_job(session, me, status=JobStatus.RUNNING)
    done = await make_job(session, me, status=JobStatus.DONE)
    await session.commit()

    page = await client.get(f"/admin/jobs/{running.id}")

    assert page.status_code == 200
    assert REFRESH in page.text
    assert "500 / 1,000 (50%)" in page.text
    assert re.search(r'id="job-rate">\d[\d,]* rows/s<', page.text)
    assert re.search(r'id="job-eta">\d+ s<', page.text)
    finished = await client.get(f"/admin/jobs/{done.id}")
    assert finished.status_code == 200 and REFRESH not in finished.text


async def test_a_done_export_downloads_its_file_as_an_attachment(
    signed_in: SignedIn, session: AsyncSession, job_settings: Settings
) -> None:
    client, me = await signed_in(roles=["auditor"])
    job = await make_job(session, me, settings=job_settings)
    await session.commit()

    page = await client.get(f"/admin/jobs/{job.id}")
    assert f'href="http://testserver/admin/jobs/{job.id}/download"' in page.text
    download = await client.get(f"/admin/jobs/{job.id}/download")

    assert download.status_code == 200
    assert download.content == EXPORTED
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="tag.csv"'


async def test_a_download_checks_the_owners_permission_again(
    signed_in: SignedIn, session: AsyncSession, job_settings: Settings
) -> None:
    exporter = await make_role(session, permissions=["tag.view", "tag.export"])
    user = await make_user(session)
    user.roles = [exporter]
    await session.commit()
    client, _ = await signed_in(user=user)
    job = await make_job(session, user, settings=job_settings)
    await session.commit()
    assert (await client.get(f"/admin/jobs/{job.id}/download")).status_code == 200

    await session.refresh(exporter, ["permissions"])
    exporter.permissions = [p for p in exporter.permissions if p.codename != "tag.export"]
    await session.commit()

    refused = await client.get(f"/admin/jobs/{job.id}/download")
    assert refused.status_code == 403 and "tag.export" in refused.text
    page = await client.get(f"/admin/jobs/{job.id}")
    assert page.status_code == 200 and "/download" not in page.text and 'id="job-file-gone"' in page.text


async def test_another_users_job_is_a_404_on_every_route(
    signed_in: SignedIn, session: AsyncSession, job_settings: Settings
) -> None:
    owner = await make_user(session, roles=["manager"])
    jobs = await jobs_of_every_kind(session, owner, job_settings)
    await session.commit()
    before = await statuses(session, jobs)
    for roles, superuser in ((["manager"], False), ((), True)):
        client, _ = await signed_in(roles=roles, superuser=superuser)
        token = csrf_from((await client.get("/admin/jobs")).text)
        for job in jobs:
            for method, path in (
                ("GET", f"/admin/jobs/{job.id}"),
                ("GET", f"/admin/jobs/{job.id}/download"),
                ("POST", f"/admin/jobs/{job.id}/retry"),
                ("POST", f"/admin/jobs/{job.id}/import"),
            ):
                response = await client.request(method, path, data={"csrf_token": token})
                assert response.status_code == 404, (method, path, response.status_code)
    assert await statuses(session, jobs) == before


async def test_an_id_that_cannot_name_a_job_is_a_404(signed_in: SignedIn) -> None:
    client, _ = await signed_in(roles=["auditor"])
    token = csrf_from((await client.get("/admin/jobs")).text)
    for bad in ("abc", "1e3", "-1", "0", "²", "99999999999999999999999", "%00"):
        for method, path in (
            ("GET", f"/admin/jobs/{bad}"),
            ("GET", f"/admin/jobs/{bad}/download"),
            ("POST", f"/admin/jobs/{bad}/retry"),
            ("POST", f"/admin/jobs/{bad}/import"),
        ):
            response = await client.request(method, path, data={"csrf_token": token})
            assert response.status_code in (400, 404), (method, path, response.status_code)
            assert "Traceback" not in response.text


async def test_retry_is_a_post_with_the_csrf_token_ending_in_a_message(
    signed_in: SignedIn, session: AsyncSession, settings: Settings
) -> None:
    client, me = await signed_in(roles=["auditor"])
    failed = await make_job(session, me, status=JobStatus.FAILED)
    await session.commit()
    page = await client.get(f"/admin/jobs/{failed.id}")
    assert 'id="job-retry"' in page.text and 'id="job-error"' in page.text

    forged = await client.post(f"/admin/jobs/{failed.id}/retry", data={"csrf_token": "nope"})
    assert forged.status_code == 403
    assert (await client.get(f"/admin/jobs/{failed.id}/retry")).status_code in (404, 405)
    assert await statuses(session, [failed]) == [JobStatus.FAILED]

    retried = await client.post(f"/admin/jobs/{failed.id}/retry", data={"csrf_token": csrf_from(page.text)})

    assert retried.status_code == 303
    assert retried.headers["location"].endswith(f"/admin/jobs/{failed.id}")
    after = await client.get(retried.headers["location"])
    if settings.is_sqlite:  # ran at once, in this process: an export of the tags
        assert toasts(after.text) == [f"Job {failed.id} ran again and is done."]
        assert 'data-status="done"' in after.text
    else:  # waits for a worker
        assert toasts(after.text) == [f"Job {failed.id} is queued again; this page follows its progress."]
        assert REFRESH in after.text
    again = await client.post(f"/admin/jobs/{failed.id}/retry", data={"csrf_token": csrf_from(page.text)})
    assert again.status_code == 303
    assert toasts((await client.get(again.headers["location"])).text) == ["Only a failed job can be retried."]


async def test_an_import_shows_its_report_with_field_errors(
    signed_in: SignedIn, session: AsyncSession
) -> None:
    client, me = await signed_in(roles=["editor"])
    jobs = await jobs_of_every_kind(session, me)
    await session.commit()
    imported = next(job for job in jobs if job.kind is JobKind.IMPORT)

    page = await client.get(f"/admin/jobs/{imported.id}")

    assert page.status_code == 200
    assert "1 row has an error: nothing was imported." in page.text
    assert 'data-status="error">error: 1<' in page.text
    assert re.search(r'data-field="Name">Name: Ensure this value has at most 60 characters\.', page.text)
    assert "Colour" in page.text and "Windows-1252" in page.text
    assert 'id="job-retry"' in page.text  # an editor may import tags


@pytest.mark.parametrize("role", [*sorted(BUILTIN_ROLES), "superuser", "no-role"])
async def test_pages_for_every_role(role: str, signed_in: SignedIn, session: AsyncSession) -> None:
    if role == "superuser":
        client, me = await signed_in(superuser=True)
    else:
        client, me = await signed_in(roles=[] if role == "no-role" else [role])
    jobs = await jobs_of_every_kind(session, me)
    await session.commit()
    starts_jobs = role in {"superuser", "manager", "editor", "auditor"}  # may export or import something

    listing = await client.get("/admin/jobs")
    assert listing.status_code == 200
    assert ('href="http://testserver/admin/jobs"' in listing.text) is starts_jobs  # the menu item
    for job in jobs:
        page = await client.get(f"/admin/jobs/{job.id}")
        assert page.status_code == 200, (role, job.status, page.status_code)
        assert "Traceback" not in page.text
    index = await client.get("/admin/")
    assert index.status_code == (403 if role == "no-role" else 200)
