"""An export above JOB_THRESHOLD_ROWS on PostgreSQL runs as a job; what its file and an import's report show.

The job is its owner's alone (404 for anyone else), needs `<table>.export`
to start (403), and its file is handed over only while the owner may still
see the personal data written in it unmasked. An import job's report is
masked for whoever looks at it, as they may see it now.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.db.session import Database
from backend.jobs.exchange import KEY_HIDDEN
from backend.jobs.runner import run_job
from backend.jobs.service import PII_GONE, JobService
from backend.models import Role, User
from backend.models.jobs import Job, JobKind, JobStatus
from backend.services import masking
from tests.admin.conftest import Apps
from tests.factories import make_customer, make_role, make_tag, make_user, unique
from tests.jobs.conftest import actor_of
from tests.jobs.factories import make_job

JOB_PAGE = re.compile(r"/admin/jobs/(\d+)$")
REFRESH = '<meta http-equiv="refresh" content="2">'
PII_ROLE = ["customer.view", "customer.export", "customer.import", "customer.view_pii"]


async def user_with(session: AsyncSession, permissions: Sequence[str]) -> tuple[User, Role]:
    role = await make_role(session, permissions=permissions)
    user = await make_user(session)
    user.roles = [role]
    await session.commit()
    return user, role


async def take_away(session: AsyncSession, role: Role, codename: str) -> None:
    await session.refresh(role, ["permissions"])
    role.permissions = [p for p in role.permissions if p.codename != codename]
    await session.commit()


async def count_jobs(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


async def run_queued(database: Database, answer: httpx.Response) -> int:
    """The job a 303 points at, run here in-process as a worker would (the test's transaction)."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    found = JOB_PAGE.search(answer.headers["location"])
    assert found, answer.headers["location"]
    job_id = int(found.group(1))
    job = await run_job(database, job_id, live_progress=False)
    assert job is not None and job.status is JobStatus.DONE, job and job.error
    return job_id


@pytest.mark.postgres
async def test_an_export_above_the_threshold_is_a_job_whose_file_is_the_streamed_export(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    jobs_app, jobs_database = make_app(job_threshold_rows=2)
    streaming_app, _ = make_app()
    prefix = unique("jobexp-")
    for index in range(5):
        await make_tag(session, name=f"{prefix}{index}")
    user = await make_user(session, roles=["auditor"])
    await session.commit()
    client = await clients(jobs_app, user)
    state = {"search": prefix, "sortBy": "id", "sort": "desc"}

    answer = await client.get("/admin/tag/export/csv", params=state)

    assert answer.status_code == 303
    page = await client.get(answer.headers["location"])
    assert page.status_code == 200 and "exported by a job" in page.text and "My jobs" in page.text
    assert REFRESH in page.text and 'data-status="queued"' in page.text
    job_id = await run_queued(jobs_database, answer)
    done = await client.get(f"/admin/jobs/{job_id}")
    assert f"/admin/jobs/{job_id}/download" in done.text
    download = await client.get(f"/admin/jobs/{job_id}/download")
    assert download.status_code == 200
    streamed = await (await clients(streaming_app, user)).get("/admin/tag/export/csv", params=state)
    assert streamed.status_code == 200
    assert download.content == streamed.content
    assert download.content.decode().splitlines()[1].endswith(f"{prefix}4")  # the list's order: id desc

    # At the threshold or below, the same app streams.
    jobs = await count_jobs(session)
    small = await client.get("/admin/tag/export/csv", params={"search": f"{prefix}1"})
    assert small.status_code == 200 and small.headers["content-type"].startswith("text/csv")
    assert await count_jobs(session) == jobs


@pytest.mark.postgres
@pytest.mark.parametrize("source", [None, "https://elsewhere.example/page", "null"])
async def test_a_cross_site_export_link_streams_the_file_and_starts_no_job(
    make_app: Apps, clients: Any, session: AsyncSession, source: str | None
) -> None:
    """A job is a write: a GET that does not come from this site's pages (a link or image on another
    site) must not start one, or any site could make a signed-in user's browser queue exports."""
    app, _ = make_app(job_threshold_rows=0)
    await make_tag(session, name=unique("xsite-"))
    user = await make_user(session, roles=["auditor"])
    await session.commit()
    client = await clients(app, user)
    del client.headers["referer"]
    jobs = await count_jobs(session)
    headers = {} if source is None else {"referer": source}
    answer = await client.get("/admin/tag/export/csv", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert await count_jobs(session) == jobs


@pytest.mark.postgres
async def test_another_user_can_neither_see_nor_download_the_export_job(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, database = make_app(job_threshold_rows=0)
    await make_tag(session, name=unique("other-"))
    owner = await make_user(session, roles=["auditor"])
    other = await make_user(session, roles=["auditor"])
    await session.commit()
    job_id = await run_queued(database, await (await clients(app, owner)).get("/admin/tag/export/json"))

    stranger = await clients(app, other)
    for path in (f"/admin/jobs/{job_id}", f"/admin/jobs/{job_id}/download"):
        assert (await stranger.get(path)).status_code == 404, path
    assert f'data-job-id="{job_id}"' not in (await stranger.get("/admin/jobs")).text


async def test_without_the_export_permission_no_job_is_submitted(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, _ = make_app(job_threshold_rows=0)
    await make_tag(session, name=unique("closed-"))
    user, _role = await user_with(session, ["tag.view"])
    jobs = await count_jobs(session)

    refused = await (await clients(app, user)).get("/admin/tag/export/csv")

    assert refused.status_code == 403
    assert await count_jobs(session) == jobs


@pytest.mark.sqlite
async def test_sqlite_streams_whatever_the_threshold(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, _ = make_app(job_threshold_rows=0)
    prefix = unique("lite-")
    for index in range(3):
        await make_tag(session, name=f"{prefix}{index}")
    user = await make_user(session, roles=["auditor"])
    jobs = await count_jobs(session)

    answer = await (await clients(app, user)).get("/admin/tag/export/csv", params={"search": prefix})

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert len(answer.content.decode().splitlines()) == 1 + 3
    assert await count_jobs(session) == jobs


async def export_customers(app: Starlette, database: Database, client: httpx.AsyncClient, user: User) -> int:
    """A done export job of customers: through the list on PostgreSQL, through the service on SQLite."""
    if not database.settings.is_sqlite:
        return await run_queued(database, await client.get("/admin/customer/export/csv"))
    async with database.sessions() as session:
        actor = await actor_of(session, user)
    job = await JobService(database).submit(actor, kind="export", table="customer", format="csv")
    assert job.status is JobStatus.DONE, job.error
    return job.id


async def test_a_download_is_refused_once_the_owner_may_no_longer_see_its_personal_data(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, database = make_app(job_threshold_rows=0)
    customer = await make_customer(session, email=f"{unique('pii')}@example.com")
    user, role = await user_with(session, PII_ROLE)
    client = await clients(app, user)
    job_id = await export_customers(app, database, client, user)
    job = await session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.params["shown_pii"] == ["address", "email", "phone"]
    download = await client.get(f"/admin/jobs/{job_id}/download")
    assert download.status_code == 200 and customer.email in download.text

    await take_away(session, role, "customer.view_pii")

    refused = await client.get(f"/admin/jobs/{job_id}/download")
    assert refused.status_code == 403
    assert PII_GONE in refused.text and customer.email not in refused.text
    page = await client.get(f"/admin/jobs/{job_id}")
    assert page.status_code == 200 and "/download" not in page.text and 'id="job-file-gone"' in page.text
    listing = await client.get("/admin/jobs")
    assert f"/admin/jobs/{job_id}/download" not in listing.text


async def test_a_masked_export_stays_downloadable_without_personal_data(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, database = make_app(job_threshold_rows=0)
    customer = await make_customer(session, email=f"{unique('masked')}@example.com")
    user, _role = await user_with(session, [code for code in PII_ROLE if not code.endswith("view_pii")])
    client = await clients(app, user)

    job_id = await export_customers(app, database, client, user)

    job = await session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.params["shown_pii"] == []
    download = await client.get(f"/admin/jobs/{job_id}/download")
    assert download.status_code == 200
    assert customer.name in download.text and customer.email not in download.text
    assert masking.MASK in download.text


async def test_an_export_job_without_a_record_of_its_personal_data_needs_view_pii(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, _ = make_app()
    user, _role = await user_with(session, [code for code in PII_ROLE if not code.endswith("view_pii")])
    job = await make_job(session, user, model="customer", settings=app.state.admin.database.settings)
    await session.commit()

    refused = await (await clients(app, user)).get(f"/admin/jobs/{job.id}/download")

    assert refused.status_code == 403 and PII_GONE in refused.text


def customer_report(emails: Sequence[str]) -> dict[str, Any]:
    return {
        "model": "customer",
        "file_name": "customers.csv",
        "file_hash": "0" * 64,
        "match_by": "email",
        "import_id": None,
        "written": True,
        "totals": {"new": 1, "changed": 1, "unchanged": 0, "error": 1},
        "unknown_headers": [],
        "ignored_headers": [],
        "notes": [],
        "rows": [
            {"number": 2, "status": "new", "key": emails[0], "record_id": 7, "changes": {}, "errors": {}},
            {
                "number": 3,
                "status": "changed",
                "key": emails[1],
                "record_id": 8,
                "changes": {"Email": [emails[1], emails[2]], "Name": ["Old Name", "New Name"]},
                "errors": {},
            },
            {
                "number": 4,
                "status": "error",
                "key": "",
                "record_id": None,
                "changes": {},
                "errors": {"Email": ["Enter a valid email address."]},
            },
        ],
        "rows_not_listed": 0,
    }


async def test_an_import_report_shows_personal_data_only_to_who_may_see_it_now(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, _ = make_app()
    emails = [f"{unique(name)}@example.com" for name in ("new", "old", "changed")]
    user, role = await user_with(session, PII_ROLE)
    done = await make_job(
        session, user, kind=JobKind.IMPORT, model="customer", report=customer_report(emails)
    )
    refused = await make_job(
        session,
        user,
        kind=JobKind.IMPORT,
        model="customer",
        status=JobStatus.FAILED,
        params={"file_name": "customers.csv", "key": "email"},
        error=f"Each Email may appear once in a file, but it repeats: rows 2 and 3 ({emails[0]}).",
    )
    await session.commit()
    client = await clients(app, user)
    seen = (await client.get(f"/admin/jobs/{done.id}")).text
    assert all(email in seen for email in emails) and "New Name" in seen
    assert emails[0] in (await client.get(f"/admin/jobs/{refused.id}")).text

    await take_away(session, role, "customer.view_pii")

    masked = await client.get(f"/admin/jobs/{done.id}")
    assert masked.status_code == 200
    assert not any(email in masked.text for email in emails)
    assert masked.text.count(masking.MASK) >= 4  # two keys, the email's before and after
    assert "Old Name" in masked.text and "New Name" in masked.text  # not personal data
    assert "Enter a valid email address." in masked.text
    failed = await client.get(f"/admin/jobs/{refused.id}")
    assert failed.status_code == 200 and emails[0] not in failed.text and KEY_HIDDEN in failed.text
