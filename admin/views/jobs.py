"""My jobs: the long imports and exports a user started, their progress, files and reports.

Every page is the signed-in user's own: another user's job id is a 404, as
is an id that cannot name one. A job still queued or running refreshes its
page every 2 s (a meta refresh: the CSP allows no inline script). A done
export's file is sent from disk to its owner only, after checking they may
still export those rows and see the personal data it holds; an import's
report is masked for whoever looks at it (backend/jobs/exchange.py,
`shown_report`); a failed job can be retried (a POST with the CSRF
token, ending in a flash message). A done import preview (the preview of a
large file, on PostgreSQL) shows what an import would do and offers "Import
these rows": a POST with the CSRF token that starts the import of the same
stored file (backend/jobs/previews.py) and answers with the import job's page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqladmin import BaseView, expose
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from admin import outcomes
from admin.auth import current_actor
from admin.controls import database_of
from admin.formatting import number
from admin.i18n import lazy_gettext, translated
from admin.params import path_id
from backend.auth.actor import Actor
from backend.errors import Conflict, DatabaseUnavailable
from backend.jobs.exchange import shown_error, shown_report
from backend.jobs.previews import IMPORT_JOB, can_import_previewed, import_previewed, preview_gone
from backend.jobs.progress import duration_text, progress_of
from backend.jobs.service import PREVIEW_JOB, JobService
from backend.models.jobs import Job, JobKind, JobStatus

JOB_ACTIONS = (".export", ".import")


def _jobs(request: Request) -> JobService:
    return JobService(database_of(request))


def _shown(request: Request, service: JobService, job: Job, now: datetime) -> dict[str, Any]:
    """What the pages show of a job: its progress, and the links its owner may follow now."""
    progress = progress_of(job, now)
    actor = current_actor(request)
    return {
        "job": job,
        "progress": progress,
        "rate": translated("%(rate)s rows/s", rate=number(round(progress.rate))) if progress.rate else "",
        "eta": duration_text(progress.eta) if progress.eta is not None else "",
        "unfinished": not job.status.finished,
        "can_download": service.can_download(actor, job),
    }


def _preview_context(service: JobService, actor: Actor, job: Job) -> dict[str, Any]:
    """What the page says of the preview/import pair a job belongs to, and whether it offers the import."""
    linked = job.params.get(IMPORT_JOB if job.kind is JobKind.PREVIEW else PREVIEW_JOB)
    context: dict[str, Any] = {
        "is_preview": job.kind is JobKind.PREVIEW,
        "linked_job": linked if isinstance(linked, int) else None,
        "can_import": can_import_previewed(service, actor, job),
        "import_refused": None,
    }
    if job.kind is JobKind.PREVIEW and job.status is JobStatus.DONE and not context["can_import"]:
        permission = f"{job.model}.import"
        context["import_refused"] = (
            preview_gone(job)
            if actor.has_perm(permission)
            else translated("You need the permission %(codename)s to import these rows.", codename=permission)
        )
    return context


class JobsView(BaseView):
    """The signed-in user's jobs, newest first, and one page per job."""

    name = lazy_gettext("My jobs")
    icon = "fa-solid fa-list-check"
    identity = "jobs"

    def is_accessible(self, request: Request) -> bool:
        # Everyone signed in may look at their own jobs; the pages show nothing else.
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        # In the menu of those who can start a job: who may export or import something.
        actor = current_actor(request)
        return actor.is_superuser or any(code.endswith(JOB_ACTIONS) for code in actor.permissions)

    @expose("/jobs", methods=["GET"], identity="jobs")
    async def jobs(self, request: Request) -> Response:
        service = _jobs(request)
        try:
            found = await service.my_jobs(current_actor(request))
        except DatabaseUnavailable as exc:
            raise HTTPException(status_code=503, detail=exc.message) from exc
        now = datetime.now(UTC)
        context = {
            "rows": [_shown(request, service, job, now) for job in found],
            "unfinished": any(not job.status.finished for job in found),
        }
        return await self.templates.TemplateResponse(request, "custodian/jobs.html", context)

    @expose("/jobs/{pk}", methods=["GET"], identity="jobs-detail")
    async def detail(self, request: Request) -> Response:
        service = _jobs(request)
        try:
            job = await service.get_mine(current_actor(request), path_id(request))
        except DatabaseUnavailable as exc:
            raise HTTPException(status_code=503, detail=exc.message) from exc
        actor = current_actor(request)
        may_retry = actor.has_perm(f"{job.model}.{job.kind.permission}")
        context = {
            **_shown(request, service, job, datetime.now(UTC)),
            **_preview_context(service, actor, job),
            "report": shown_report(actor, job.report) if job.kind.reads_upload and job.report else None,
            "error": shown_error(actor, job),
            "can_retry": job.status is JobStatus.FAILED and may_retry,
            "can_read_audit": actor.has_perm("audit.view"),
        }
        return await self.templates.TemplateResponse(request, "custodian/jobs_detail.html", context)

    @expose("/jobs/{pk}/download", methods=["GET"], identity="jobs-download")
    async def download(self, request: Request) -> Response:
        try:
            found = await _jobs(request).result_file(current_actor(request), path_id(request))
        except DatabaseUnavailable as exc:
            raise HTTPException(status_code=503, detail=exc.message) from exc
        # A file sent as it is read, never shown inline: it is data for a spreadsheet, not a page.
        return FileResponse(
            found.path,
            media_type=found.media_type,
            filename=found.name,
            content_disposition_type="attachment",
        )

    @expose("/jobs/{pk}/retry", methods=["POST"], identity="jobs-retry")
    async def retry(self, request: Request) -> Response:
        job_id = path_id(request)
        page = request.url_for("admin:view-jobs-detail", pk=job_id)
        try:
            job = await _jobs(request).retry(current_actor(request), job_id)
        except Conflict as exc:
            outcomes.refused(request, exc.message)
            return RedirectResponse(str(page), status_code=303)
        except DatabaseUnavailable as exc:
            outcomes.refused(request, exc.message)
            return RedirectResponse(str(page), status_code=303)
        if job.status is JobStatus.DONE:
            outcomes.succeeded(request, translated("Job %(id)s ran again and is done.", id=job_id))
        elif job.status is JobStatus.FAILED:
            outcomes.refused(
                request, translated("Job %(id)s ran again and failed: %(error)s", id=job_id, error=job.error)
            )
        else:
            outcomes.succeeded(
                request, translated("Job %(id)s is queued again; this page follows its progress.", id=job_id)
            )
        return RedirectResponse(str(page), status_code=303)

    @expose("/jobs/{pk}/import", methods=["POST"], identity="jobs-import")
    async def import_rows(self, request: Request) -> Response:
        """Import the rows a done preview job read ("Import these rows"); the import job's page.

        Another user's job is a 404 and a missing `<table>.import` a 403 (the
        service's refusals, through the admin's error pages); a preview whose
        file is gone, or changed, stays on its page with the reason.
        """
        job_id = path_id(request)
        form = await request.form()  # its CSRF token was checked with the session (admin/auth.py)
        page = request.url_for("admin:view-jobs-detail", pk=job_id)
        try:
            job = await import_previewed(
                _jobs(request),
                current_actor(request),
                job_id,
                expected_hash=_text(form, "file_hash"),
                skip_errors=_text(form, "skip_errors") == "yes",
            )
        except (Conflict, DatabaseUnavailable) as exc:
            outcomes.refused(request, exc.message)
            return RedirectResponse(str(page), status_code=303)
        name = job.params.get("file_name") or translated("The file")
        if job.status is JobStatus.FAILED:  # SQLite runs it at once; its reason may name hidden keys
            reason = shown_error(current_actor(request), job)
            outcomes.refused(
                request, translated("The import of %(file)s failed: %(reason)s", file=name, reason=reason)
            )
        elif job.status is JobStatus.DONE:
            outcomes.succeeded(request, translated("%(file)s was imported; its report is below.", file=name))
        else:
            outcomes.succeeded(
                request,
                translated(
                    "%(file)s is being imported as a job; this page shows its progress and then its report.",
                    file=name,
                ),
            )
        return RedirectResponse(str(request.url_for("admin:view-jobs-detail", pk=job.id)), status_code=303)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
