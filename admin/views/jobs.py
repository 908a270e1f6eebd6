"""My jobs: the long imports and exports a user started, their progress, files and reports.

Every page is the signed-in user's own: another user's job id is a 404, as
is an id that cannot name one. A job still queued or running refreshes its
page every 2 s (a meta refresh: the CSP allows no inline script). A done
export's file is sent from disk to its owner only, after checking they may
still export those rows and see the personal data it holds; an import's
report is masked for whoever looks at it (backend/jobs/exchange.py,
`shown_report`); a failed job can be retried (a POST with the CSRF
token, ending in a flash message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqladmin import BaseView, expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from admin import outcomes
from admin.auth import current_actor
from admin.controls import database_of
from admin.params import path_id
from backend.errors import Conflict, DatabaseUnavailable
from backend.jobs.exchange import shown_error, shown_report
from backend.jobs.progress import duration_text, progress_of
from backend.jobs.service import JobService
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
        "rate": f"{progress.rate:,.0f} rows/s" if progress.rate else "",
        "eta": duration_text(progress.eta) if progress.eta is not None else "",
        "unfinished": not job.status.finished,
        "can_download": service.can_download(actor, job),
    }


class JobsView(BaseView):
    """The signed-in user's jobs, newest first, and one page per job."""

    name = "My jobs"
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
        context = {
            **_shown(request, service, job, datetime.now(UTC)),
            "report": shown_report(actor, job.report) if job.kind is JobKind.IMPORT and job.report else None,
            "error": shown_error(actor, job),
            "can_retry": job.status is JobStatus.FAILED and actor.has_perm(f"{job.model}.{job.kind.value}"),
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
            outcomes.succeeded(request, f"Job {job_id} ran again and is done.")
        elif job.status is JobStatus.FAILED:
            outcomes.refused(request, f"Job {job_id} ran again and failed: {job.error}")
        else:
            outcomes.succeeded(request, f"Job {job_id} is queued again; this page follows its progress.")
        return RedirectResponse(str(page), status_code=303)
