"""Refuse a NUL character in a URL or a form before any view sees it.

PostgreSQL cannot store or compare text holding NUL: a search, filter, ajax
lookup, sign-in or form value carrying `%00` fails in the driver (a 500), or,
in a streamed export, after the response has started (a silently cut file).
No field of the admin takes NUL, so it is refused once, here, with a 400 for
every route. The services refuse it too (backend/schemas/base.py), for the CLI.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.errors import error_response

NUL = "\x00"
MESSAGE = "The request holds a NUL character (%00), which no field accepts. Remove it and try again."
FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"


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
            await self._refuse(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if not content_type.startswith(FORM_CONTENT_TYPE):
            await self.app(scope, receive, send)
            return
        # A URL-encoded form is read whole here (the view would read it whole anyway) and replayed.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if has_nul(body.decode("latin-1")):
            await self._refuse(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(Request(scope, receive), 400, "Bad request", MESSAGE)
        await response(scope, receive, send)
