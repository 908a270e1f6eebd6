"""The request's one unit of work, and the services it runs.

An admin request reads and writes through one session: the row a form edits
is loaded once, checked, shown and saved in the same transaction.
`request_uow(request)` opens the unit of work on first use, as the signed-in
actor (a writing unit unless the method is GET or HEAD, which may read from a
replica until it writes: backend/db/replicas.py); `RequestUnitOfWork`,
a pure ASGI middleware, closes it after the response has been sent, so a
streamed export still reads through it. A unit that was not committed is
rolled back when it closes.

SQLAdmin's own reads (its row loaders, form choices, ajax lookups) take a
session from the admin's `session_maker`: `RequestSessions` is that maker,
and hands them the same unit's session.

The sign-in check (admin/auth.py) runs its session lookup in the request's
unit when the request only reads, from the primary (`unit_for_session_lookup`):
opened as nobody, handed to the signed-in actor right after (`acting_as`). A
request that writes, or a GET that may read a replica, keeps a short unit of
its own for the lookup on the primary.

With read replicas, a browser that has just written reads the primary for a
while (`READ_PRIMARY_COOKIE`): the page a save redirects to shows the save,
though a replica may not have replayed it yet.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.actors import ANONYMOUS, current_actor
from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.services.base import CrudService
from backend.services.registry import service_for

# The scope["state"] key of the request's lazy unit of work (Starlette's `request.state` reads the same dict).
STATE_KEY = "custodian_request_unit"
READ_METHODS = frozenset({"GET", "HEAD"})
# Set on the answer to a write that succeeded; while the browser keeps it, its reads go to the primary.
READ_PRIMARY_COOKIE = "custodian_read_primary"

ServiceClass = type[CrudService[Any, Any, Any]]


class LazyRequestUnit:
    """The unit of work of one request, opened on first use and closed by the middleware."""

    def __init__(self, database: Database, scope: Scope, *, read_replica: bool) -> None:
        self.database = database
        self.scope = scope
        self.read_replica = read_replica
        self.uow: UnitOfWork | None = None
        # Opened as nobody for the sign-in check's session lookup (`unit_for_session_lookup`).
        self.opened_for_lookup = False
        self._stack = AsyncExitStack()

    async def open(self) -> UnitOfWork:
        if self.uow is None:
            request = Request(self.scope)
            writes = request.method not in READ_METHODS
            read_replica = self.read_replica and not writes
            self.uow = await self._stack.enter_async_context(
                unit_of_work(self.database, current_actor(request), writes=writes, read_replica=read_replica)
            )
        return self.uow

    async def close(self) -> None:
        self.uow = None
        await self._stack.aclose()

    def may_hold_session_lookup(self) -> bool:
        """Whether the sign-in check's session lookup may run in this unit: the request only reads
        (a writing unit takes SQLite's write lock from its first statement, and would hold it
        against the units a handler opens for itself) and reads the primary (there is no replica
        to read, or the browser has just written)."""
        reads = self.scope["method"] in READ_METHODS
        return reads and not (self.read_replica and self.database.replicas)


# The lazy unit of the request this task serves; read where SQLAdmin gives no request (its session maker).
_current: contextvars.ContextVar[LazyRequestUnit | None] = contextvars.ContextVar(
    "custodian_request_unit", default=None
)


class RequestUnitOfWork:
    """Gives each HTTP request a lazily opened unit of work and closes it once the response is sent."""

    def __init__(self, app: ASGIApp, *, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wrote_lately = READ_PRIMARY_COOKIE in Request(scope).cookies
        unit = LazyRequestUnit(self.database, scope, read_replica=not wrote_lately)
        scope.setdefault("state", {})[STATE_KEY] = unit
        token = _current.set(unit)
        if self.database.replicas and scope["method"] not in READ_METHODS:
            send = self._reading_primary_after(send)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
            await unit.close()

    def _reading_primary_after(self, send: Send) -> Send:
        """`send`, telling the browser to read the primary until replicas have replayed this write:
        a replica in use is at most REPLICA_MAX_LAG_SECONDS behind as of its last check."""
        settings = self.database.settings
        seconds = math.ceil(settings.replica_max_lag_seconds + settings.replica_check_interval_seconds)
        cookie = f"{READ_PRIMARY_COOKIE}=1; Max-Age={seconds}; Path=/; HttpOnly; SameSite=Lax"
        cookie += "; Secure" if settings.is_production else ""

        async def send_marking_writes(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return send_marking_writes


def _lazy_unit(request: Request) -> LazyRequestUnit:
    unit = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(unit, LazyRequestUnit):
        raise RuntimeError("RequestUnitOfWork is not installed on this app (see admin/app.py).")
    return unit


async def request_uow(request: Request) -> UnitOfWork:
    """The request's one unit of work, opened on first use as the signed-in actor.

    Commit is explicit (`await uow.commit()`); whatever is not committed is
    rolled back when the response has been sent.
    """
    return await _lazy_unit(request).open()


async def request_service(
    request: Request, model: type[Any], *, service: ServiceClass | None = None
) -> CrudService[Any, Any, Any]:
    """The service of `model` (or `service`, when a view names its own) on the request's unit of work."""
    service_class = service or service_class_for(model)
    return service_class(await request_uow(request))


async def unit_for_session_lookup(request: Request) -> UnitOfWork | None:
    """The request's unit of work, opened now as nobody, when the sign-in check may run its session
    lookup in it; else None (the check opens a short unit of its own on the primary).

    It may when the unit is not open yet, only reads, and reads the primary anyway. `acting_as`
    then hands the unit to the signed-in actor before anything else uses it.
    """
    unit = _lazy_unit(request)
    if unit.uow is not None or not unit.may_hold_session_lookup() or current_actor(request) is not ANONYMOUS:
        return None
    unit.opened_for_lookup = True
    return await unit.open()


def acting_as(request: Request, actor: Actor) -> None:
    """Once the sign-in check knows who signs in: the request's unit, if the check's lookup opened it
    as nobody, acts as `actor` from now on (a unit opened any other way already does)."""
    unit = _lazy_unit(request)
    if unit.uow is not None and unit.opened_for_lookup:
        unit.opened_for_lookup = False
        unit.uow.signed_in(actor)


def service_class_for(model: type[Any]) -> ServiceClass:
    """The service the registry declares or derives for `model` (`NotFound` for a model it does not know)."""
    return service_for(model)


class RequestSessions:
    """The admin's `session_maker`: the request's unit-of-work session, left open until the response is sent.

    Outside a request (start-up, a test calling a view directly) it opens and
    closes a session of its own.
    """

    class_ = AsyncSession  # how SQLAdmin tells an async session maker from a sync one

    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, **_options: Any) -> AbstractAsyncContextManager[AsyncSession]:
        # SQLAdmin asks for expire_on_commit=False; the unit's sessions are made that way already.
        return self._session()

    def configure(self, **_options: Any) -> None:
        """SQLAdmin turns autoflush off here; the unit's sessions are made without it already."""

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        unit = _current.get()
        if unit is None:
            async with self.database.sessions() as session:
                yield session
        else:
            yield (await unit.open()).session
