"""Import the rows a preview job read: the second step of a large import, from the preview's page.

On PostgreSQL the preview of a file above `JOB_THRESHOLD_ROWS` is a job
(`JobKind.PREVIEW`, `exchange.run_preview`) that keeps its upload. Its
owner, holding `<table>.import`, then starts the import of that same file
without uploading it again: the preview's upload is claimed (a rename, so
one preview starts one import), handed to a new import job with the hash
the preview saw, and removed once that job holds its own copy. Each job
records the other (`preview_job` in the import's params, `import_job` in
the preview's), so both pages can link to each other.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from backend.auth.actor import Actor
from backend.db.uow import unit_of_work
from backend.errors import Conflict, NotFound
from backend.jobs import files
from backend.jobs.runner import BOOKKEEPER
from backend.jobs.service import PREVIEW_JOB, JobService
from backend.models.jobs import Job, JobKind, JobStatus
from backend.services.exchange.importing import FILE_CHANGED, file_hash

IMPORT_JOB = "import_job"  # a preview's params: the import job it led to
PREVIEW_FILE_GONE = "The file of this preview is no longer kept; upload it again to import it."
NOT_A_PREVIEW = "This job is not the preview of an import."
PREVIEW_UNFINISHED = "This preview is not finished yet; its rows can be imported once it is done."


async def import_previewed(
    jobs: JobService, actor: Actor, job_id: int, *, expected_hash: str, skip_errors: bool = False
) -> Job:
    """Submit the import of the file the actor's done preview job `job_id` read; the import job.

    `expected_hash` is the hash the preview's page showed: it must be the
    stored file's. `NotFound` for another user's job or one that is no
    preview, `PermissionDenied` without `<table>.import`, `Conflict` while the
    preview runs, when its file is no longer kept (or was imported already),
    or is not the one previewed (`FILE_CHANGED`).
    """
    preview = await jobs.get_mine(actor, job_id)
    if preview.kind is not JobKind.PREVIEW:
        raise NotFound(NOT_A_PREVIEW)
    actor.require(f"{preview.model}.import")
    if preview.status is not JobStatus.DONE:
        raise Conflict(PREVIEW_UNFINISHED if not preview.status.finished else PREVIEW_FILE_GONE)
    settings = jobs.settings
    claimed = await asyncio.to_thread(files.claim_upload, settings, preview)
    if claimed is None:
        raise Conflict(preview_gone(preview))
    try:
        data = await asyncio.to_thread(claimed.read_bytes)
        if not expected_hash == file_hash(data) == preview.params.get("hash"):
            raise Conflict(FILE_CHANGED)
        params = {**preview.params, "skip_errors": skip_errors, PREVIEW_JOB: preview.id}
        job = await jobs.submit(
            actor, kind=JobKind.IMPORT, table=preview.model, format=preview.format, params=params, data=data
        )
    except BaseException:
        # Whatever refused the import (the hash, the queue), the preview's page may offer it again.
        await asyncio.to_thread(files.put_back, settings, preview)
        raise
    files.remove_claimed(settings, preview)
    async with unit_of_work(jobs.database, BOOKKEEPER, audit=False) as uow:
        linked = {**preview.params, IMPORT_JOB: job.id}
        await uow.session.execute(update(Job).where(Job.id == preview.id).values(params=linked))
        await uow.commit()
    return job


def preview_gone(preview: Job) -> str:
    """Why a preview's rows cannot be imported from its page any more."""
    imported = preview.params.get(IMPORT_JOB)
    if isinstance(imported, int):
        return f"These rows were imported already, by job #{imported}."
    return PREVIEW_FILE_GONE


def can_import_previewed(jobs: JobService, actor: Actor, job: Job) -> bool:
    """Whether `import_previewed` would start an import of this preview now (for offering the form)."""
    return (
        job.kind is JobKind.PREVIEW
        and job.status is JobStatus.DONE
        and actor.user_id is not None
        and job.owner_id == actor.user_id
        and actor.has_perm(f"{job.model}.import")
        and files.upload_path(jobs.settings, job).is_file()
    )
