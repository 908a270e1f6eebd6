"""Parallel sign-ins on a SQLite file never fail: writers wait for each other, none gets a 503.

The app runs on a database and engine of its own (not the rolled-back test
connection), so every request opens real SQLite transactions that compete
for the write lock as they do in production.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from admin.app import create_app
from backend.config import Settings
from backend.db.session import Database
from backend.models import AuthSession, LoginAttempt
from backend.services.auth import TOUCH_INTERVAL
from tests.databases import make_settings, migrated_database
from tests.factories import make_user

pytestmark = pytest.mark.sqlite

PASSWORD = "a-long-enough-password-1"
USERS = 6
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def own_settings(fresh_url: str) -> AsyncIterator[Settings]:
    """A migrated SQLite file with users, and settings that never throttle these attempts."""
    settings = make_settings(
        fresh_url, login_max_failures_per_user=1000, login_max_failures_per_address=10000
    )
    async with migrated_database(settings) as uow:
        for n in range(USERS):
            await make_user(uow.session, username=f"user{n}", password=PASSWORD, roles=["viewer"])
    yield settings


def _client(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _sign_in(client: httpx.AsyncClient, username: str, password: str) -> int:
    page = await client.get("/admin/login")
    match = _CSRF.search(page.text)
    assert match, page.text
    data = {"username": username, "password": password, "csrf_token": match.group(1), "next": ""}
    response = await client.post("/admin/login", data=data)
    if response.status_code == 302:
        # The first page after sign-in authenticates (a read) while others sign in.
        response = await client.get("/admin/")
    return response.status_code


async def test_parallel_sign_ins_and_session_touches_never_fail(own_settings: Settings) -> None:
    database = Database(own_settings)  # its own engine and pool: real concurrent transactions
    app = create_app(own_settings, database=database)
    attempts = [(f"user{n % USERS}", PASSWORD if n % 2 else "wrong-password-123") for n in range(16)]
    clients = [_client(app) for _ in attempts]
    try:
        statuses = await asyncio.gather(
            *(_sign_in(client, user, pw) for client, (user, pw) in zip(clients, attempts, strict=True))
        )
        assert all(code < 500 for code in statuses), statuses
        assert statuses == [200 if pw == PASSWORD else 400 for _, pw in attempts]
        async with database.sessions() as session:
            recorded = (await session.execute(select(func.count()).select_from(LoginAttempt))).scalar_one()
            opened = (await session.execute(select(func.count()).select_from(AuthSession))).scalar_one()
            assert recorded == len(attempts)
            assert opened == sum(1 for _, pw in attempts if pw == PASSWORD)

            # Every session is due for its last-seen touch: each next request reads, then writes.
            stale = datetime.now(UTC) - TOUCH_INTERVAL * 2
            await session.execute(update(AuthSession).values(last_seen_at=stale))
            await session.commit()
        signed_in = [client for client, (_, pw) in zip(clients, attempts, strict=True) if pw == PASSWORD]
        pages = await asyncio.gather(*(client.get("/admin/") for client in signed_in for _ in range(2)))
        assert [page.status_code for page in pages] == [200] * len(pages)
        async with database.sessions() as session:
            touched = await session.execute(select(AuthSession.last_seen_at))
            assert all(seen > stale for seen in touched.scalars())
    finally:
        for client in clients:
            await client.aclose()
        await database.dispose()
