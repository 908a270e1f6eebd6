"""On PostgreSQL, the preview of a file above JOB_THRESHOLD_ROWS runs as a job; its page imports the rows.

The preview job writes nothing (rows and audit unchanged) and shows the same
report as the in-request preview, masked as import reports are. "Import these
rows" on its page (CSRF-protected, the owner's alone, needing `<table>.import`)
starts an import job of the same stored file with the hash the preview saw.
Below the threshold, and always on SQLite, the preview stays in the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.db.session import Database
from backend.jobs import files
from backend.jobs.previews import IMPORT_JOB, PREVIEW_FILE_GONE
from backend.jobs.runner import run_job
from backend.models import AuditEntry, Product, Tag, User
from backend.models.jobs import Job, JobKind, JobStatus
from backend.services.exchange.importing import FILE_CHANGED
from tests.admin.conftest import Apps, page_token
from tests.admin.test_import_views import count, products_csv, upload
from tests.factories import make_role, make_user, unique

JOB_PAGE = re.compile(r"/admin/jobs/(\d+)$")
TAG_ROLE = ["tag.view", "tag.add", "tag.change", "tag.import"]
TOO_LONG = "x" * 61  # a tag's name holds at most 60 characters


async def tag_user(session: AsyncSession, permissions: Sequence[str] = TAG_ROLE) -> User:
    role = await make_role(session, permissions=permissions)
    user = await make_user(session)
    user.roles = [role]
    await session.commit()
    return user


def job_id_of(answer: httpx.Response) -> int:
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    found = JOB_PAGE.search(answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


async def run(database: Database, job_id: int, status: JobStatus = JobStatus.DONE) -> Job:
    """The job run here in-process, as a worker would (in the test's transaction)."""
    job = await run_job(database, job_id, live_progress=False)
    assert job is not None and job.status is status, job and job.error
    return job


async def import_rows(
    client: httpx.AsyncClient, job_id: int, *, digest: str | None = None, skip_errors: bool = False
) -> httpx.Response:
    page = await client.get(f"/admin/jobs/{job_id}")
    shown = re.search(r'name="file_hash" value="([0-9a-f]{64})"', page.text)
    assert shown or digest is not None, "no import form on the preview's page"
    data = {"csrf_token": await page_token(client), "file_hash": digest or (shown and shown.group(1)) or ""}
    if skip_errors:
        data["skip_errors"] = "yes"
    return await client.post(f"/admin/jobs/{job_id}/import", data=data)


async def previewed_tags(
    make_app: Apps, clients: Any, session: AsyncSession, names: Sequence[str], user: User | None = None
) -> tuple[httpx.AsyncClient, Database, int]:
    """A tag file uploaded above the threshold and its preview job run; the client, database, job id."""
    app, database = make_app(job_threshold_rows=0)
    client = await clients(app, user or await tag_user(session))
    content = ("Name\n" + "".join(f"{name}\n" for name in names)).encode()
    job_id = job_id_of(await upload(client, content, identity="tag", name="tags.csv", key="name"))
    await run(database, job_id)
    return client, database, job_id


async def count_jobs(session: AsyncSession, kind: JobKind) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind)) or 0)


@pytest.mark.postgres
async def test_a_large_upload_is_previewed_by_a_job_that_writes_nothing(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    app, database = make_app(job_threshold_rows=2)
    content, product_id, new_sku = await products_csv(session)
    manager = await clients(app, await make_user(session, roles=["manager"]))
    products, entries = await count(session, Product), await count(session, AuditEntry)

    answer = await upload(manager, content, name="spring.csv")

    job_id = job_id_of(answer)
    waiting = await manager.get(answer.headers["location"])
    assert "spring.csv has 3 rows, so it is previewed by a job" in waiting.text
    assert 'data-status="queued"' in waiting.text and 'id="job-import-form"' not in waiting.text
    job = await run(database, job_id)
    assert job.kind is JobKind.PREVIEW and job.rows_done == job.rows_total == 3

    page = await manager.get(f"/admin/jobs/{job_id}")
    assert page.status_code == 200 and "Preview of product" in page.text
    assert "A preview: nothing has been written yet." in page.text
    totals = dict(re.findall(r'data-status="(\w+)">\w+: (\d+)<', page.text))
    assert totals == {"new": "1", "changed": "1", "unchanged": "0", "error": "1"}
    rows = re.findall(r'class="report-row report-(\w+)" data-row="(\d+)"', page.text)
    assert rows == [("error", "4"), ("changed", "3"), ("new", "2")]  # errors first, as in the request
    error_row = page.text.split('data-row="4"')[1].split("</tr>")[0]
    assert re.search(r'data-field="Price">Price: \w[^<]+</div>', error_row), error_row  # with its message
    assert 'id="job-import-form"' in page.text and 'id="job-import-skip-errors"' in page.text
    assert "Import these rows" in page.text
    session.expire_all()
    assert await count(session, Product) == products and await count(session, AuditEntry) == entries
    assert await session.scalar(select(Product.price).where(Product.id == product_id)) == Decimal("9.99")
    assert await session.scalar(select(func.count()).where(Product.sku == new_sku)) == 0
    assert files.upload_path(database.settings, job).is_file()  # kept for the import


@pytest.mark.postgres
@pytest.mark.parametrize("skip_errors", [False, True])
async def test_import_these_rows_imports_the_previewed_file_as_a_job(
    make_app: Apps, clients: Any, session: AsyncSession, skip_errors: bool
) -> None:
    good = [unique("preview-"), unique("preview-")]
    names = [*good, TOO_LONG] if skip_errors else good
    client, database, preview_id = await previewed_tags(make_app, clients, session, names)
    tags = await count(session, Tag)

    answer = await import_rows(client, preview_id, skip_errors=skip_errors)

    import_id = job_id_of(answer)
    assert import_id != preview_id
    queued = await client.get(answer.headers["location"])
    assert "tags.csv is being imported as a job" in queued.text
    assert f'id="job-linked" href="http://testserver/admin/jobs/{preview_id}"' in queued.text
    job = await run(database, import_id)
    assert job.kind is JobKind.IMPORT and job.report is not None and job.report["written"]
    assert job.params["skip_errors"] is skip_errors and job.params["preview_job"] == preview_id
    session.expire_all()
    assert await count(session, Tag) == tags + 2
    assert set(await session.scalars(select(Tag.name).where(Tag.name.in_(names)))) == set(good)
    tagged = select(func.count()).where(AuditEntry.import_id == job.report["import_id"])
    assert await session.scalar(tagged) == 3  # the two tags and the file
    preview = await session.get(Job, preview_id, populate_existing=True)
    assert preview is not None and preview.params[IMPORT_JOB] == import_id
    assert not files.upload_path(database.settings, preview).is_file()  # moved to the import job

    page = await client.get(f"/admin/jobs/{preview_id}")
    assert 'id="job-import-form"' not in page.text
    assert f"These rows were imported already, by job #{import_id}." in page.text
    again = await import_rows(client, preview_id, digest=preview.params["hash"])
    assert again.status_code == 303 and again.headers["location"].endswith(f"/admin/jobs/{preview_id}")
    assert await count_jobs(session, JobKind.IMPORT) == 1


@pytest.mark.postgres
async def test_rows_with_errors_import_nothing_unless_skipped(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    client, database, preview_id = await previewed_tags(make_app, clients, session, [unique("e-"), TOO_LONG])
    tags, entries = await count(session, Tag), await count(session, AuditEntry)

    page = await client.get(f"/admin/jobs/{preview_id}")
    assert "at most 60 characters" in page.text.split('class="report-row report-error"')[1]

    job = await run(database, job_id_of(await import_rows(client, preview_id)), JobStatus.FAILED)

    assert job.error == "1 row has an error: nothing was imported."
    assert await count(session, Tag) == tags and await count(session, AuditEntry) == entries


@pytest.mark.postgres
async def test_only_the_owner_with_the_import_permission_can_import_the_rows(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    owner_role = await make_role(session, permissions=TAG_ROLE)
    owner = await make_user(session)
    owner.roles = [owner_role]
    await session.commit()
    client, _database, preview_id = await previewed_tags(make_app, clients, session, [unique("o-")], owner)
    stranger = await clients(make_app(job_threshold_rows=0)[0], await tag_user(session))

    assert (await stranger.get(f"/admin/jobs/{preview_id}")).status_code == 404
    preview = await session.get(Job, preview_id)
    assert preview is not None
    digest = preview.params["hash"]
    refused = await import_rows(stranger, preview_id, digest=digest)
    assert refused.status_code == 404

    await session.refresh(owner_role, ["permissions"])
    owner_role.permissions = [p for p in owner_role.permissions if p.codename != "tag.import"]
    await session.commit()
    page = await client.get(f"/admin/jobs/{preview_id}")
    assert page.status_code == 200 and 'id="job-import-form"' not in page.text
    assert "You need the permission tag.import to import these rows." in page.text
    forbidden = await import_rows(client, preview_id, digest=digest)
    assert forbidden.status_code == 403 and "tag.import" in forbidden.text
    assert await count_jobs(session, JobKind.IMPORT) == 0


@pytest.mark.postgres
async def test_import_these_rows_needs_the_csrf_token_and_the_previewed_file(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    client, database, preview_id = await previewed_tags(make_app, clients, session, [unique("c-")])
    preview = await session.get(Job, preview_id)
    assert preview is not None
    digest = preview.params["hash"]

    no_token = await client.post(f"/admin/jobs/{preview_id}/import", data={"file_hash": digest})
    assert no_token.status_code == 403 and "security token" in no_token.text

    changed = await import_rows(client, preview_id, digest="f" * 64)
    assert changed.status_code == 303 and changed.headers["location"].endswith(f"/admin/jobs/{preview_id}")
    assert FILE_CHANGED in (await client.get(changed.headers["location"])).text

    files.upload_path(database.settings, preview).write_bytes(b"Name\nsomething else\n")
    rewritten = await import_rows(client, preview_id, digest=digest)
    assert FILE_CHANGED in (await client.get(rewritten.headers["location"])).text
    assert await count_jobs(session, JobKind.IMPORT) == 0
    assert files.upload_path(database.settings, preview).is_file()  # put back: the page still offers it


@pytest.mark.postgres
async def test_a_preview_whose_file_was_removed_says_so(
    make_app: Apps, clients: Any, session: AsyncSession
) -> None:
    client, database, preview_id = await previewed_tags(make_app, clients, session, [unique("g-")])
    preview = await session.get(Job, preview_id)
    assert preview is not None
    files.remove_files(database.settings, preview)  # as `manage.py jobs cleanup` does when it expires

    page = await client.get(f"/admin/jobs/{preview_id}")
    assert page.status_code == 200 and 'id="job-import-form"' not in page.text
    assert PREVIEW_FILE_GONE in page.text and 'id="job-report"' in page.text  # the report stays
    refused = await import_rows(client, preview_id, digest=preview.params["hash"])
    assert refused.status_code == 303
    assert PREVIEW_FILE_GONE in (await client.get(refused.headers["location"])).text
    assert await count_jobs(session, JobKind.IMPORT) == 0


async def test_at_the_threshold_and_on_sqlite_the_preview_stays_in_the_request(
    make_app: Apps, clients: Any, session: AsyncSession, settings: Settings
) -> None:
    rows = 2
    app, _database = make_app(job_threshold_rows=0 if settings.is_sqlite else rows)
    client = await clients(app, await tag_user(session))
    content = f"Name\n{unique('r-')}\n{unique('r-')}\n".encode()

    preview = await upload(client, content, identity="tag", key="name")

    assert preview.status_code == 200 and 'id="import-confirm-form"' in preview.text
    assert await count_jobs(session, JobKind.PREVIEW) == 0
