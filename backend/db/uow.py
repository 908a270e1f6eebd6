"""Unit of work: one session, one transaction, committed only on request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.db.session import Database

if TYPE_CHECKING:
    from backend.auth.actor import Actor

# Read by the audit trail (backend.services.audit) after every flush.
ACTOR_KEY = "custodian.actor"
AUDIT_ENABLED_KEY = "custodian.audit"


class UnitOfWork:
    """A session whose transaction is committed only by an explicit `commit()`.

    It also carries who is acting and the settings, so services need nothing else.
    """

    def __init__(
        self, session: AsyncSession, *, actor: Actor, settings: Settings, audit: bool = True
    ) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings
        self.committed = False
        session.info[ACTOR_KEY] = actor
        session.info[AUDIT_ENABLED_KEY] = audit

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


@asynccontextmanager
async def unit_of_work(database: Database, actor: Actor, *, audit: bool = True) -> AsyncIterator[UnitOfWork]:
    """Open a session for one request or command, acting as `actor`.

    What the session writes is audited in the same transaction, as `actor`;
    `audit=False` is for seeding that asks to be left out.

    Leaving the block without `await uow.commit()` (or by an exception) rolls
    back whatever was flushed; the session is closed in every case.
    """
    session = database.sessions()
    uow = UnitOfWork(session, actor=actor, settings=database.settings, audit=audit)
    try:
        yield uow
    finally:
        # Closing rolls back whatever was not committed. Unlike rollback() it
        # does not expire loaded objects, so what a read returned stays usable.
        await session.close()
