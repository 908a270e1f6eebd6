"""Jobs as their owners see them: submit one, list "my jobs", open one, download its file, retry it.

A job is its owner's alone: another user's job id is `NotFound`, never a
403 that would tell it exists. Submitting needs the permission of the kind
(`<table>.export`, or `<table>.import` for an import and its preview), and so does every later use of the
result: a download re-checks that the owner still holds it, and that they
may still see the personal data the file holds unmasked (`shown_pii`).

On PostgreSQL a submitted job is queued for a worker (`manage.py worker`);
on SQLite it runs in this process at once, and `submit` returns it finished.
Each step commits in a short unit of work of its own, so call these outside
any open write transaction (on SQLite the job's own writes need the lock).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import Conflict, DatabaseUnavailable, NotFound, PermissionDenied, ValidationFailed
from backend.jobs import files
from backend.jobs.exchange import SHOWN_PII
from backend.jobs.export_query import ExportQuery
from backend.jobs.runner import BOOKKEEPER, run_job
from backend.jobs.store import UNFINISHED, JobRepository
from backend.models.jobs import Job, JobKind, JobStatus
from backend.services import masking
from backend.services.exchange.importing import file_hash
from backend.services.exchange.reading import FORMATS
from backend.services.registry import service_for

logger = logging.getLogger(__name__)

NO_SUCH_JOB = "No such job."
LISTED_JOBS = 100  # "My jobs" shows this many, newest first
FILE_NAME_LIMIT = 255
NOT_QUEUED = "The job could not be queued (the job queue did not answer); retry it in a moment."
PII_GONE = "You may no longer see personal data this file holds; export again."
PREVIEW_JOB = "preview_job"  # an import's params: the preview job whose file it imports (previews.py)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed({field: [message]}, message)


@dataclass(frozen=True)
class ResultFile:
    path: Path
    name: str  # what the download is called: "product.csv"
    media_type: str


def runs_as_job(database: Database, rows: int) -> bool:
    """Whether an import or export of `rows` rows should be a job: on PostgreSQL, above the threshold."""
    settings = database.settings
    return not settings.is_sqlite and rows > settings.job_threshold_rows


def sees_what_it_holds(actor: Actor, job: Job) -> bool:
    """Whether `actor` may see every personal-data field an export job's file holds unmasked.

    An export that recorded none (written before `shown_pii` was kept) is
    taken to hold all of its model's personal data.
    """
    recorded = job.params.get(SHOWN_PII)
    model = masking.model_for(job.model)
    fields = recorded if isinstance(recorded, list) else sorted(masking.pii_fields(model))
    return all(masking.can_see(actor, job.model, str(name)) for name in fields)


class JobService:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.settings = database.settings

    # Submitting -------------------------------------------------------------------

    async def submit(
        self,
        actor: Actor,
        *,
        kind: JobKind | str,
        table: str,
        format: str,
        params: dict[str, Any] | None = None,
        data: bytes | None = None,
    ) -> Job:
        """A new job of `kind` over `table`'s rows; `data` is an import's file (its name in params).

        Import and preview params: `file_name` (shown only), `key` (the column
        rows are matched by), `skip_errors`, `hash` (the SHA-256 its preview
        saw; computed when absent), and an import's `preview_job` (the preview
        job it follows, if any). Export params: an `ExportQuery`'s.
        """
        if actor.user_id is None:
            raise PermissionDenied("Jobs are run for a signed-in user.")
        job_kind = self._kind(kind)
        model = service_for(table).model  # NotFound for a table that is no model
        actor.require(f"{table}.{job_kind.permission}")
        if format not in FORMATS:
            raise _invalid("format", f"The format must be one of {', '.join(FORMATS)}.")
        params = dict(params or {})
        if job_kind is JobKind.EXPORT:
            query = ExportQuery.from_params(params)
            query.check(model, actor)
            params = query.as_params()
        else:
            params = self._import_params(params, data)
        job = Job(
            kind=job_kind,
            model=table,
            format=format,
            owner_id=actor.user_id,
            owner_name=actor.username[:150],
            client_address=actor.client_address,
            status=JobStatus.QUEUED,
            params=params,
            file_token=secrets.token_hex(16),
        )
        async with unit_of_work(self.database, actor, audit=False) as uow:
            uow.session.add(job)
            await uow.flush()
            if data is not None:
                await files.write_upload(self.settings, job, data)
            try:
                await uow.commit()
            except BaseException:
                files.remove_files(self.settings, job)
                raise
        return await self._dispatch(job.id)

    def _kind(self, kind: JobKind | str) -> JobKind:
        try:
            return JobKind(kind)
        except ValueError as exc:
            kinds = ", ".join(member.value for member in JobKind)
            raise _invalid("kind", f"A job is one of: {kinds}.") from exc

    def _import_params(self, params: dict[str, Any], data: bytes | None) -> dict[str, Any]:
        if data is None:
            raise _invalid("file", "An import job needs its file.")
        if len(data) > self.settings.import_max_bytes:
            raise _invalid("file", "The file is larger than IMPORT_MAX_BYTES allows.")
        key = params.get("key")
        expected = params.get("hash")
        kept: dict[str, Any] = {
            "file_name": str(params.get("file_name") or "")[:FILE_NAME_LIMIT],
            "key": str(key)[:64] if key else None,
            "skip_errors": bool(params.get("skip_errors")),
            "hash": str(expected) if expected else file_hash(data),
        }
        if isinstance(params.get(PREVIEW_JOB), int):
            kept[PREVIEW_JOB] = params[PREVIEW_JOB]
        json.dumps(kept)  # what the column stores: refuse here, not in the database
        return kept

    async def _dispatch(self, job_id: int) -> Job:
        """Run the job now (SQLite) or queue it for a worker (PostgreSQL); the job as it then stands."""
        if self.settings.is_sqlite:
            await run_job(self.database, job_id, live_progress=False)
        else:
            # Imported here: procrastinate and psycopg add about 12 MB to a process, and most of
            # the admin's requests never queue a job.
            from backend.jobs import queue

            try:
                queue_job_id = await queue.enqueue(self.settings, job_id)
            except DatabaseUnavailable:
                await self._fail_unqueued(job_id)
                raise
            async with unit_of_work(self.database, BOOKKEEPER, audit=False) as uow:
                await uow.repo(JobRepository).set_queue_job(job_id, queue_job_id)
                await uow.commit()
        return await self._fresh(job_id)

    async def _fail_unqueued(self, job_id: int) -> None:
        try:
            async with unit_of_work(self.database, BOOKKEEPER, audit=False) as uow:
                await uow.repo(JobRepository).fail(job_id, NOT_QUEUED, expected=(JobStatus.QUEUED,))
                await uow.commit()
        except Exception:  # the database is likely down too: the job stays queued, a retry will tell
            logger.exception("Job %s could not be marked as not queued", job_id)

    # Reading ----------------------------------------------------------------------

    async def my_jobs(self, actor: Actor, *, limit: int = LISTED_JOBS) -> list[Job]:
        """The actor's jobs, newest first; those whose worker died are failed first (see `queue`)."""
        if actor.user_id is None:
            return []
        jobs = await self._owned(actor.user_id, limit)
        if await self._failed_stalled(jobs):
            jobs = await self._owned(actor.user_id, limit)
        return jobs

    async def get_mine(self, actor: Actor, job_id: int) -> Job:
        """The actor's job `job_id`; `NotFound` for any other, whoever's it is."""
        job = await self._fresh(job_id)
        if actor.user_id is None or job.owner_id != actor.user_id:
            raise NotFound(NO_SUCH_JOB)
        if await self._failed_stalled([job]):
            job = await self._fresh(job_id)
        return job

    async def result_file(self, actor: Actor, job_id: int) -> ResultFile:
        """The file a done export wrote, for its owner while they may still export these rows and see
        the personal data it holds (`PermissionDenied` otherwise, `NotFound` when there is no file)."""
        job = await self.get_mine(actor, job_id)
        if job.kind is not JobKind.EXPORT or job.status is not JobStatus.DONE or not job.result_name:
            raise NotFound("This job has no file to download.")
        actor.require(f"{job.model}.export")
        if not sees_what_it_holds(actor, job):
            raise PermissionDenied(PII_GONE)
        path = files.result_path(self.settings, job)
        if not path.is_file():
            raise NotFound("The file of this export is no longer kept; export again.")
        return ResultFile(path=path, name=job.result_name, media_type=job.result_media_type or "")

    def has_result_file(self, job: Job) -> bool:
        return job.status is JobStatus.DONE and files.result_path(self.settings, job).is_file()

    def can_download(self, actor: Actor, job: Job) -> bool:
        """Whether `result_file` would hand `actor` this job's file now (for offering the link)."""
        return (
            job.kind is JobKind.EXPORT
            and actor.user_id is not None
            and job.owner_id == actor.user_id
            and actor.has_perm(f"{job.model}.export")
            and sees_what_it_holds(actor, job)
            and self.has_result_file(job)
        )

    async def newest(self, *, limit: int, statuses: tuple[JobStatus, ...] = ()) -> list[Job]:
        """Every user's jobs, newest first (the CLI's `jobs list`, which acts as the system)."""
        jobs = await self._newest(limit, statuses)
        if await self._failed_stalled(jobs):
            jobs = await self._newest(limit, statuses)
        return jobs

    # Retrying ---------------------------------------------------------------------

    async def retry(self, actor: Actor, job_id: int) -> Job:
        """A new attempt at a failed job of the actor's, with the same file and parameters."""
        job = await self.get_mine(actor, job_id)
        if job.status is not JobStatus.FAILED:
            raise Conflict("Only a failed job can be retried.")
        actor.require(f"{job.model}.{job.kind.permission}")
        if job.kind.reads_upload and not files.upload_path(self.settings, job).is_file():
            raise Conflict("The uploaded file of this job is no longer kept; import the file again.")
        async with unit_of_work(self.database, actor, audit=False) as uow:
            if not await uow.repo(JobRepository).requeue(job_id):
                raise Conflict("This job was retried already.")
            await uow.commit()
        return await self._dispatch(job_id)

    # Helpers ----------------------------------------------------------------------

    async def _fresh(self, job_id: int) -> Job:
        async with unit_of_work(self.database, BOOKKEEPER, writes=False) as uow:
            job = await uow.repo(JobRepository).fresh(job_id)
        if job is None:
            raise NotFound(NO_SUCH_JOB)
        return job

    async def _owned(self, owner_id: int, limit: int) -> list[Job]:
        async with unit_of_work(self.database, BOOKKEEPER, writes=False) as uow:
            return await uow.repo(JobRepository).owned_by(owner_id, limit=limit)

    async def _newest(self, limit: int, statuses: tuple[JobStatus, ...]) -> list[Job]:
        async with unit_of_work(self.database, BOOKKEEPER, writes=False) as uow:
            return await uow.repo(JobRepository).newest(limit=limit, statuses=statuses)

    async def _failed_stalled(self, jobs: list[Job]) -> bool:
        """On PostgreSQL, when some of `jobs` should be running: fail those whose worker died."""
        if self.settings.is_sqlite or not any(job.status in UNFINISHED for job in jobs):
            return False
        from backend.jobs import queue  # see _dispatch

        return bool(await queue.fail_stalled_now(self.database))
