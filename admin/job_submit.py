"""Hand long work to a job from any admin route: submit it as the signed-in user, show its page.

An import confirm (admin/imports.py) and an export (admin/export.py) above
`JOB_THRESHOLD_ROWS` on PostgreSQL both end here, so both answer the same
way: a 303 to the job's page, where progress and then the file or report
appear, with a message saying so (the page stays under "My jobs").
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from admin import outcomes
from admin.auth import current_actor
from admin.controls import database_of
from backend.errors import DatabaseUnavailable
from backend.jobs.service import JobService


async def submit_job(
    request: Request,
    *,
    kind: str,
    table: str,
    format: str,
    params: dict[str, Any],
    message: str,
    data: bytes | None = None,
) -> RedirectResponse:
    """Submit a job (`JobService.submit`, whose `AppError`s reach the admin's error pages) and redirect
    to its page with `message`; 503 when the queue cannot be reached."""
    try:
        job = await JobService(database_of(request)).submit(
            current_actor(request), kind=kind, table=table, format=format, params=params, data=data
        )
    except DatabaseUnavailable as exc:
        raise HTTPException(status_code=503, detail=exc.message) from exc
    outcomes.succeeded(request, message)
    return RedirectResponse(request.url_for("admin:view-jobs-detail", pk=job.id), status_code=303)
