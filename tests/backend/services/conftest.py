"""Service tests share the test's session: one identity map, one savepoint chain.

The unit-of-work semantics themselves (rollback unless committed, closing)
are proven in tests/backend/db/test_uow.py with real `unit_of_work` calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork

UowFactory = Callable[[Actor], AbstractAsyncContextManager[UnitOfWork]]


@pytest.fixture
def uow_as(session: AsyncSession, settings: Settings) -> UowFactory:
    """`async with uow_as(actor) as uow:` — work as `actor` in the test's session."""

    @asynccontextmanager
    async def make(actor: Actor) -> AsyncIterator[UnitOfWork]:
        yield UnitOfWork(session, actor=actor, settings=settings)

    return make


@pytest.fixture
def system_uow(session: AsyncSession, settings: Settings) -> UnitOfWork:
    return UnitOfWork(session, actor=Actor.system("tests"), settings=settings)
