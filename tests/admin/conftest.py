from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from admin.app import create_app
from backend.config import Settings
from backend.db.session import Database
from backend.models import User
from tests.factories import DEFAULT_PASSWORD, make_user

_CSRF = re.compile(r'name="csrf(?:_token|-token)" (?:value|content)="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    page = await client.get("/admin/login")
    return await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text), "next": ""},
    )


async def page_token(client: httpx.AsyncClient, path: str = "/admin/logout") -> str:
    """The CSRF token of the client's current session, read from a page."""
    return csrf_from((await client.get(path)).text)


@pytest.fixture
def app(settings: Settings, database: Database) -> Starlette:
    return create_app(settings, database=database)


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def new_client(app: Starlette, session: AsyncSession) -> AsyncIterator[ClientFactory]:
    """Make clients: anonymous, or signed in as a new user with the given roles."""
    clients: list[httpx.AsyncClient] = []

    async def make(
        *, roles: Sequence[str] = (), superuser: bool = False, signed_in: bool = True
    ) -> httpx.AsyncClient:
        client = client_for(app)
        clients.append(client)
        if signed_in:
            user = await make_user(session, roles=roles, is_superuser=superuser)
            await session.commit()
            response = await sign_in(client, user.username)
            assert response.status_code == 302, response.text
            client.username = user.username  # type: ignore[attr-defined]
            client.user_id = user.id  # type: ignore[attr-defined]
        return client

    yield make
    for client in clients:
        await client.aclose()


Apps = Callable[..., tuple[Starlette, Database]]


@pytest.fixture
def make_app(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> Apps:
    """Apps over the test transaction, job files under the test's directory; the app and its database.

    Settings are the test's with `overrides` (`make_app(job_threshold_rows=2)`).
    """

    def build(**overrides: Any) -> tuple[Starlette, Database]:
        local = settings.model_copy(update={"job_files_dir": tmp_path / "jobs", **overrides})
        database = Database(local, engine=engine, sessions=sessions)
        return create_app(local, database=database), database

    return build


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[Starlette, User], Awaitable[httpx.AsyncClient]]]:
    """Clients signed in as a given user on a given app, sending the Referer the admin's own pages send."""
    opened: list[httpx.AsyncClient] = []

    async def signed_in(app: Starlette, user: User) -> httpx.AsyncClient:
        client = client_for(app)
        client.headers["referer"] = "http://testserver/admin/"
        opened.append(client)
        assert (await sign_in(client, user.username)).status_code == 302
        return client

    yield signed_in
    for client in opened:
        await client.aclose()
