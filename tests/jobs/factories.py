"""Job rows for page tests and the crawler: every kind and status, written directly (setup only)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.jobs import files
from backend.models import User
from backend.models.jobs import Job, JobKind, JobStatus
from backend.services.exchange.importing import file_hash

EXPORTED = b"ID,Name\r\n1,kettle\r\n"
PREVIEWED = b"Name\r\nred\r\n" + b"x" * 61 + b"\r\n"  # a preview job's upload: a new tag, one too long

IMPORT_REPORT: dict[str, Any] = {
    "model": "tag",
    "file_name": "tags.csv",
    "file_hash": "0" * 64,
    "match_by": "name",
    "import_id": None,
    "written": False,
    "totals": {"new": 1, "changed": 0, "unchanged": 0, "error": 1},
    "unknown_headers": ["Colour"],
    "ignored_headers": [],
    "notes": ["Read as Windows-1252: the file is not UTF-8."],
    "rows": [
        {"number": 2, "status": "new", "key": "red", "record_id": None, "changes": {}, "errors": {}},
        {
            "number": 3,
            "status": "error",
            "key": "blue",
            "record_id": None,
            "changes": {},
            "errors": {"Name": ["Ensure this value has at most 60 characters."]},
        },
    ],
    "rows_not_listed": 0,
}


async def make_job(
    session: AsyncSession, owner: User, *, settings: Settings | None = None, **overrides: Any
) -> Job:
    """A job of `owner`; a done export gets its file when `settings` says where files go."""
    now = datetime.now(UTC)
    status = overrides.pop("status", JobStatus.DONE)
    values: dict[str, Any] = {
        "kind": JobKind.EXPORT,
        "model": "tag",
        "format": "csv",
        "owner_id": owner.id,
        "owner_name": owner.username,
        "status": status,
        "params": {},
        "file_token": secrets.token_hex(16),
        "created_at": now - timedelta(minutes=5),
        "attempts": 0 if status is JobStatus.QUEUED else 1,
    }
    if status is not JobStatus.QUEUED:
        values.update(started_at=now - timedelta(seconds=40), rows_done=500, rows_total=1000)
    if status.finished:
        values.update(finished_at=now - timedelta(seconds=1), rows_done=1000)
    if status is JobStatus.FAILED:
        values.update(error="The worker stopped while running this job; nothing was written.")
    if status is JobStatus.DONE and overrides.get("kind", JobKind.EXPORT) is JobKind.EXPORT:
        values.update(result_name="tag.csv", result_media_type="text/csv; charset=utf-8")
    values.update(overrides)
    job = Job(**values)
    session.add(job)
    await session.flush()
    if settings is not None and job.result_name:
        files.jobs_folder(settings)
        files.result_path(settings, job).write_bytes(EXPORTED)
    return job


async def jobs_of_every_kind(
    session: AsyncSession, owner: User, settings: Settings | None = None
) -> list[Job]:
    """One job per status, a failed import with its report, and a done preview (with its upload when
    `settings` says where files go)."""
    made = [
        await make_job(session, owner, status=status, settings=settings)
        for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED)
    ]
    made.append(
        await make_job(
            session,
            owner,
            kind=JobKind.IMPORT,
            status=JobStatus.FAILED,
            params={"file_name": "tags.csv", "hash": "0" * 64},
            report=IMPORT_REPORT,
            error="1 row has an error: nothing was imported.",
        )
    )
    digest = file_hash(PREVIEWED)
    preview = await make_job(
        session,
        owner,
        kind=JobKind.PREVIEW,
        params={"file_name": "tags.csv", "key": "name", "hash": digest},
        report={**IMPORT_REPORT, "file_hash": digest},
    )
    if settings is not None:
        files.jobs_folder(settings)
        files.upload_path(settings, preview).write_bytes(PREVIEWED)
    made.append(preview)
    return made
