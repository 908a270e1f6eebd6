"""Optional `X-SQL-Statements` response header: how many statements a request ran.

Off by default; the benchmark turns it on (DEBUG_SQL_HEADER=true) to report
statements per page from the server's own count.
"""

from __future__ import annotations

import contextvars
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-sql-statements"
_statements: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "custodian_statements", default=None
)


def count_statements(engine: AsyncEngine) -> None:
    """Count every statement the engine runs into the current request's counter."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        counter = _statements.get()
        if counter is not None:
            counter[0] += 1


class StatementCountMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counter = [0]
        token = _statements.set(counter)

        async def send_with_count(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((HEADER, str(counter[0]).encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_count)
        finally:
            _statements.reset(token)
