"""Refuse a NUL character in a URL or a form before any view sees it.

PostgreSQL cannot store or compare text holding NUL: a search, filter, ajax
lookup, sign-in or form value carrying `%00` fails in the driver (a 500), or,
in a streamed export, after the response has started (a silently cut file).
No field of the admin takes NUL, so it is refused once, here, with a 400 for
every route. The services refuse it too (backend/schemas/base.py), for the CLI.

Any form may arrive as multipart (SQLAdmin's create and edit pages send it
that way), so a multipart body is read here too and held to the same rule.
No field of the admin takes a file but the import upload's
(`admin.imports.takes_file`): WTForms and the parsers take a file where text
is expected for text, and fail (a 500), so one is refused everywhere else.
The upload's body is read up to the import limit and refused with a 413
beyond it, before more of it is read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.auth import SESSION_COOKIE
from admin.errors import error_response
from admin.imports import takes_file, too_big, upload_body_limit
from backend.config import Settings

NUL = "\x00"
MESSAGE = "The request holds a NUL character (%00), which no field accepts. Remove it and try again."
FILE_MESSAGE = "This admin takes no files, and a form sent one. Send the form from its page and try again."
FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"
MULTIPART_CONTENT_TYPE = b"multipart/form-data"
# Every form here but the import upload is a few kilobytes; a larger body is refused, never buffered.
FORM_BODY_LIMIT = 1024 * 1024
FORM_TOO_BIG = "The form is larger than any form of this admin takes (1 MB). Send it from its page."


def has_nul(encoded: str) -> bool:
    """Whether URL-encoded text (a query string or a form body) decodes to anything holding NUL."""
    if NUL in encoded:
        return True
    return any(NUL in name or NUL in value for name, value in parse_qsl(encoded, keep_blank_values=True))


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if NUL in scope["path"] or has_nul(query):  # the path arrives percent-decoded
            await self._refuse(scope, receive, send, MESSAGE)
            return
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").lower()
        if not content_type.startswith((FORM_CONTENT_TYPE, MULTIPART_CONTENT_TYPE)):
            await self.app(scope, receive, send)
            return
        # The import upload's settings: its body is capped, and it alone may carry a file. Someone with
        # no session cookie at all is not signed in: their body is held to the small forms' cap.
        signed_in = SESSION_COOKIE.encode() in headers.get(b"cookie", b"")
        upload = _settings(scope) if signed_in and takes_file(_app_path(scope)) else None
        if upload is not None and _declared_length(headers) > upload_body_limit(upload):
            await self._refuse(scope, receive, send, too_big(upload), status=413)
            return
        if upload is None and _declared_length(headers) > FORM_BODY_LIMIT:
            await self._refuse(scope, receive, send, FORM_TOO_BIG, status=413)
            return
        # A form is read whole here (the view would read it whole anyway) and replayed.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if upload is not None and size > upload_body_limit(upload):
                await self._refuse(scope, receive, send, too_big(upload), status=413)
                return
            if upload is None and size > FORM_BODY_LIMIT:
                await self._refuse(scope, receive, send, FORM_TOO_BIG, status=413)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks  # the joined body is the one copy kept
        if content_type.startswith(FORM_CONTENT_TYPE):
            problem = MESSAGE if has_nul(body.decode("latin-1")) else None
        else:
            problem = await multipart_problem(scope, body, files_allowed=upload is not None)
        if problem:
            await self._refuse(scope, receive, send, problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, message: str, *, status: int = 400
    ) -> None:
        title = "File too large" if status == 413 else "Bad request"
        response = error_response(Request(scope, receive), status, title, message)
        await response(scope, receive, send)


def _app_path(scope: Scope) -> str:
    """The request's path below the app's mount point (a proxy may serve it under a prefix)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _settings(scope: Scope) -> Settings | None:
    """The app's settings (admin/app.py keeps them on its state)."""
    settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else None


def _declared_length(headers: dict[bytes, bytes]) -> int:
    """The Content-Length the client declared; 0 when it declared none (the body is counted as read)."""
    value = headers.get(b"content-length", b"")
    return int(value) if value.isdigit() and len(value) < 20 else 0


async def multipart_problem(scope: Scope, body: bytes, *, files_allowed: bool = False) -> str | None:
    """Why a multipart form body is refused (a file where none is taken, or NUL in a name, a file
    name or a value), or None.

    A body the parser cannot read is left to the view, whose parser answers it with a 400.
    """

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException:
        return None
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not files_allowed:
                    return FILE_MESSAGE
                if NUL in name or NUL in (value.filename or ""):
                    return MESSAGE
            elif NUL in name or NUL in value:
                return MESSAGE
        return None
    finally:
        await form.close()
