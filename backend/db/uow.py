"""Unit of work: one session, one transaction, committed only on request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from backend.config import Settings
from backend.db import audit as audit_trail
from backend.db.audit import ACTOR_KEY, AUDIT_ENABLED_KEY
from backend.db.base import Base
from backend.db.errors import is_database_unavailable, short_reason
from backend.db.replicas import Replica, ReplicaSession
from backend.db.session import WRITE_INTENT, Database
from backend.repositories.base import Repository

if TYPE_CHECKING:
    from backend.auth.actor import Actor

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=Base)
RepositoryT = TypeVar("RepositoryT", bound=Repository[Any])


class UnitOfWork:
    """A session whose transaction is committed only by an explicit `commit()`.

    It also carries who is acting and the settings, and hands out one
    repository per model (`repo`), so services need nothing else. What its
    session flushes is audited as the actor (backend.db.audit), installed here.
    A unit of work either writes (the default: on SQLite its transaction begins
    with `BEGIN IMMEDIATE`, so it waits for other writers instead of failing
    with "database is locked") or only reads (`writes=False`: it never takes
    SQLite's write lock, so a long read such as an export blocks no writer).

    Reads go to a read replica (`replica`) only while the unit has not
    declared a write: a unit that writes, from the start or after
    `begin_writing()`, reads and writes on the primary, so it sees what it wrote.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        actor: Actor,
        settings: Settings,
        audit: bool = True,
        writes: bool = True,
        replica: Replica | None = None,
    ) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings
        self.committed = False
        self.writes = False
        self.restoring = False  # writing a recorded state back (backend/services/restoring.py)
        self._repositories: dict[type[Any], Repository[Any]] = {}
        session.info[ACTOR_KEY] = actor
        session.info[AUDIT_ENABLED_KEY] = audit
        audit_trail.install(session.sync_session)
        if writes:
            self._declare_writes()
        else:
            # A write in a unit declared read-only would run in a deferred
            # SQLite transaction and could fail under load: refuse it always.
            event.listen(session.sync_session, "before_flush", self._refuse_undeclared_write)
            event.listen(session.sync_session, "do_orm_execute", self._refuse_undeclared_dml)
            if isinstance(session.sync_session, ReplicaSession):
                session.sync_session.read_from(replica)

    @overload
    def repo(self, kind: type[RepositoryT]) -> RepositoryT: ...

    @overload
    def repo(self, kind: type[ModelT]) -> Repository[ModelT]: ...

    def repo(self, kind: type[Any]) -> Repository[Any]:
        """The repository of a model (`uow.repo(Product)`), one per model in this unit of work.

        Pass a repository class (`uow.repo(AuditEntryRepository)`) for the
        queries it adds; it is the same object `repo(AuditEntry)` returns.
        """
        model = kind.model if isinstance(kind, type) and issubclass(kind, Repository) else kind
        repository = self._repositories.get(model)
        if repository is None:
            repository = Repository.class_for(model)(self.session, model)
            self._repositories[model] = repository
        return repository

    def audit_as(self, actor: Actor) -> None:
        """Record what is flushed from now on as done by `actor` (who signed in); permissions stay."""
        self.session.info[ACTOR_KEY] = actor

    def signed_in(self, actor: Actor) -> None:
        """Act as `actor` from now on: a unit opened as nobody for a request's session lookup.

        Refused for a unit that acts as someone already or holds changes: nothing done as one actor
        may be credited to another.
        """
        if self.actor.user_id is not None or self.session.new or self.session.dirty or self.session.deleted:
            raise RuntimeError("Only a unit that has done nothing but a session lookup can take an actor.")
        self.actor = actor
        self.audit_as(actor)

    def back_to_reading(self) -> None:
        """After a commit, make the unit's next transaction a read again (a unit opened to read that
        wrote one stamp): on SQLite a page or an export must not hold the write lock."""
        if self.session.in_transaction():
            raise RuntimeError("Commit first: a transaction under way cannot change what it declared.")
        self.session.execution_options = self.session.execution_options.union({WRITE_INTENT: False})
        self.writes = False

    async def flush(self) -> None:
        """Write pending changes now, without a savepoint (a failure spoils the unit of work)."""
        await self.session.flush()

    async def begin_writing(self) -> None:
        """Turn a unit of work that has only read so far into one that writes.

        Its read transaction ends (objects read in it are expired: copy what
        is still needed first) and the next statement begins a write
        transaction. Does nothing for a unit of work opened to write.
        """
        if self.writes:
            return
        if self.session.new or self.session.dirty or self.session.deleted:
            raise RuntimeError("A unit of work with pending changes cannot switch to writing.")
        await self.session.rollback()
        self._declare_writes()

    def _refuse_undeclared_write(self, session: Session, *_args: Any) -> None:
        if not self.writes and (session.new or session.dirty or session.deleted):
            raise RuntimeError("This unit of work was opened read-only: call begin_writing() first.")

    def _refuse_undeclared_dml(self, state: ORMExecuteState) -> None:
        if not self.writes and (state.is_insert or state.is_update or state.is_delete):
            raise RuntimeError("This unit of work was opened read-only: call begin_writing() first.")

    def _declare_writes(self) -> None:
        # Read by the engine's "begin" event when the session next takes a
        # connection: the session's next transaction, normally its first.
        self.session.execution_options = self.session.execution_options.union({WRITE_INTENT: True})
        self.writes = True
        if isinstance(self.session.sync_session, ReplicaSession):
            self.session.sync_session.read_from(None)

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


@asynccontextmanager
async def unit_of_work(
    database: Database,
    actor: Actor,
    *,
    audit: bool = True,
    writes: bool = True,
    read_replica: bool = False,
) -> AsyncIterator[UnitOfWork]:
    """Open a session for one request or command, acting as `actor`.

    What the session writes is audited in the same transaction, as `actor`;
    `audit=False` is for seeding that asks to be left out. `writes=False`
    declares a unit that only reads (pages, exports): on SQLite it does not
    take the write lock. `read_replica=True` lets such a unit read from a
    healthy read replica (what pages show, never sign-in or permissions: a
    replica may lag); there is none with no DATABASE_REPLICA_URLS, or none healthy.

    Leaving the block without `await uow.commit()` (or by an exception) rolls
    back whatever was flushed; the session is closed in every case.
    """
    replica = await database.replicas.choose() if read_replica and not writes else None
    session = database.sessions()
    uow = UnitOfWork(
        session, actor=actor, settings=database.settings, audit=audit, writes=writes, replica=replica
    )
    try:
        yield uow
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    """Close `session`: roll back whatever was not committed and give back its connection.

    Unlike rollback() closing does not expire loaded objects, so what a read returned stays
    usable. A connection that died meanwhile (the database or PgBouncer went away after the
    last statement) has nothing left to roll back: the pool discards it, and closing must not
    fail a request whose answer may already be on its way.
    """
    try:
        await session.close()
    except Exception as error:
        if not is_database_unavailable(error):
            raise
        logger.warning("a connection died before its session closed: %s", short_reason(error))
        await session.invalidate()
