from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyotp
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
    client: httpx.AsyncClient,
    username: str,
    password: str = DEFAULT_PASSWORD,
    *,
    totp_secret: str | None = None,
    steps_ahead: int = 0,
) -> httpx.Response:
    """Sign in with the password, then, given the user's TOTP secret, with the code it computes.

    `steps_ahead` picks the code of a later 30-second step (the server accepts one step of clock
    skew): a code is accepted once, so a second sign-in in the same step uses the next one.
    """
    page = await client.get("/admin/login")
    response = await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text), "next": ""},
    )
    if totp_secret is None or response.status_code != 302:
        return response
    form = await client.get("/admin/two-factor")
    return await client.post(
        "/admin/two-factor",
        data={"code": totp_code(totp_secret, steps_ahead), "csrf_token": csrf_from(form.text), "next": ""},
    )


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app with `secret` shows now, or `steps_ahead` 30-second steps later."""
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + 30 * steps_ahead)


_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_RECOVERY = re.compile(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>")


async def enrol_through_page(client: httpx.AsyncClient) -> tuple[str, list[str], httpx.Response]:
    """Set up TOTP on the enrolment page as a person would: the secret read from the page, the
    code computed from it. Returns the secret, the recovery codes shown and the confirming response."""
    page = await client.get("/admin/two-factor/enrol")
    assert page.status_code == 200, page.text
    secret_match, token_match = _SECRET.search(page.text), _FORM_TOKEN.search(page.text)
    assert secret_match and token_match, "no secret or form token on the enrolment page"
    secret = secret_match.group(1)
    confirmed = await client.post(
        "/admin/two-factor/enrol",
        data={
            "code": totp_code(secret),
            "form_token": token_match.group(1),
            "csrf_token": csrf_from(page.text),
            "next": "",
        },
    )
    return secret, _RECOVERY.findall(confirmed.text), confirmed


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
