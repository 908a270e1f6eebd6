"""One failure policy for every route: 503 when the database is down, a safe 500 otherwise.

SQLAdmin runs as a mounted Starlette app with its own middleware stack, so
`install_error_handlers` is applied to the outer app and to SQLAdmin's.
"""

from __future__ import annotations

import html
import logging
import uuid

from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from admin.keyset import ListChanged
from admin.security import REQUEST_ID_HEADER
from backend.db.errors import is_database_unavailable
from backend.errors import AppError, Conflict, NotFound, PermissionDenied

logger = logging.getLogger("custodian.web")

UNAVAILABLE_MESSAGE = "The database is unavailable right now. Please try again in a moment."
INTERNAL_MESSAGE = "Something went wrong on our side. The error has been logged."

# Rendered without templates or the database (they may be what failed), in the admin's own style.
# 4xx pages of the admin are rendered inside its layout instead (admin/error_pages.py).
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/admin/statics/css/tabler.min.css"></head>
<body><div class="page page-center"><div class="container-tight py-4">
<div class="card"><div class="card-body">
<div class="text-muted mb-1">Error {status_code}</div>
<h2 class="card-title" id="error-title">{title}</h2><p id="error-message">{message}</p>{extra}
<a class="btn" href="/admin/">Back to the admin</a>
</div></div></div></div></body></html>"""


def status_for(exc: AppError) -> int:
    """The HTTP status of a service's refusal, the same on every route.

    A conflict about one input field (a duplicate SKU) is a problem with that
    input, shown next to the field: 400. A conflict with the record's state
    (a stale version, a category that still has products) is a 409.
    """
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict) and exc.field is None:
        return 409
    return 400


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or uuid.uuid4().hex)


def _wants_html(request: Request) -> bool:
    return request.url.path.startswith("/admin") or "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request, status_code: int, title: str, message: str, *, extra: str = ""
) -> Response:
    if _wants_html(request):
        body = _PAGE.format(
            status_code=status_code, title=html.escape(title), message=html.escape(message), extra=extra
        )
        return HTMLResponse(body, status_code=status_code)
    return JSONResponse({"error": title, "detail": message}, status_code=status_code)


def unavailable_response(request: Request, error: BaseException) -> Response:
    logger.warning("database unavailable on %s %s: %r", request.method, request.url.path, error)
    response = error_response(request, 503, "Service unavailable", UNAVAILABLE_MESSAGE)
    response.headers["Retry-After"] = "5"
    return response


def internal_error_response(request: Request, error: BaseException) -> Response:
    correlation_id = request_id(request)
    logger.error(
        "unhandled error on %s %s [request %s]",
        request.method,
        request.url.path,
        correlation_id,
        exc_info=error,
    )
    response: Response
    if _wants_html(request):
        extra = f"<p>Reference: <code>{html.escape(correlation_id)}</code></p>"
        response = error_response(request, 500, "Internal error", INTERNAL_MESSAGE, extra=extra)
    else:
        response = JSONResponse(
            {"error": "Internal error", "detail": INTERNAL_MESSAGE, "request_id": correlation_id},
            status_code=500,
        )
    # Set here too: the outermost handler runs outside ResponseHeadersMiddleware.
    response.headers[REQUEST_ID_HEADER] = correlation_id
    return response


async def _database_error(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        return unavailable_response(request, exc)
    return internal_error_response(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return internal_error_response(request, exc)


async def _list_changed(request: Request, exc: Exception) -> Response:
    # A page link made for another sort, search, filter or page size: that list starts at its first page.
    if not isinstance(exc, ListChanged):
        raise TypeError(f"expected ListChanged, got {type(exc).__name__}")
    return RedirectResponse(exc.first_page, status_code=302)


def install_error_handlers(app: Starlette) -> None:
    """Map database outages to 503, any other failure to a generic 500 page, a stale list link to page 1."""
    app.add_exception_handler(ListChanged, _list_changed)
    for error_class in (OSError, sa_exc.DBAPIError, sa_exc.TimeoutError):
        app.add_exception_handler(error_class, _database_error)
    # Starlette calls this from its outermost middleware, then re-raises so
    # the server logs the failure too; the body never includes the exception.
    app.add_exception_handler(Exception, _unexpected_error)
