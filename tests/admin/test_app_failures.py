"""The web app's probes and its one failure policy, against real databases."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqladmin import BaseView, expose
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from admin.app import create_app
from backend.auth.actor import Actor
from backend.config import Settings
from backend.db import migrations
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.services.permissions import sync_permissions
from tests.admin.conftest import client_for, csrf_from, page_token, sign_in
from tests.databases import UNREACHABLE_POSTGRES_URL, make_settings
from tests.factories import make_user


class BrokenPage(BaseView):
    name = "Broken"
    required_permission = "audit.view"

    @expose("/broken", methods=["GET"])
    async def broken(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


def build_app(settings: Settings, database: Database | None = None) -> Starlette:
    app = create_app(settings, database=database)
    app.state.admin.add_view(BrokenPage)
    return app


@pytest.fixture
async def client(
    settings: Settings, database: Database, session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    """A superuser's signed-in client."""
    user = await make_user(session, is_superuser=True)
    await session.commit()
    async with client_for(build_app(settings, database)) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        yield client


async def _committed_superuser(url: str) -> str:
    """Migrate a database of the test's own and commit a superuser in it."""
    settings = make_settings(url)
    await migrations.upgrade(migrations.alembic_config(settings))
    database = Database(settings)
    try:
        async with unit_of_work(database, Actor.system("tests")) as uow:
            await sync_permissions(uow)
            await make_user(uow.session, username="root", is_superuser=True)
            await uow.commit()
    finally:
        await database.dispose()
    return "root"


@pytest.fixture
async def down_client() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose database refuses connections."""
    async with client_for(build_app(make_settings(UNREACHABLE_POSTGRES_URL))) as client:
        yield client


async def test_health_needs_no_database(down_client: httpx.AsyncClient) -> None:
    response = await down_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["migrations"]["ok"] is True


async def test_not_ready_when_database_unreachable(down_client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await down_client.get("/ready")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert "Cannot reach the database" in response.json()["reason"]


def _touch(path: str) -> None:
    Path(path).touch()


def _exists(path: str) -> bool:
    return Path(path).exists()


async def test_not_ready_when_migrations_pending(fresh_url: str) -> None:
    settings = make_settings(fresh_url)
    if settings.is_sqlite:
        _touch(str(settings.url.database))  # an empty database, not a missing one
    async with client_for(build_app(settings)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert "migrations pending" in response.json()["reason"]


@pytest.mark.sqlite
async def test_not_ready_and_nothing_created_when_the_sqlite_file_is_missing(fresh_url: str) -> None:
    settings = make_settings(fresh_url)
    path = str(settings.url.database)
    async with client_for(build_app(settings)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert "does not exist" in response.json()["reason"]
    assert not _exists(path)


async def test_admin_is_mounted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/")).status_code == 200
    root = await client.get("/")
    assert root.status_code == 302 and root.headers["location"] == "/admin/"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/user/details/abc"),
        ("GET", "/admin/user/edit/abc"),
        ("POST", "/admin/user/edit/1e999"),
        ("DELETE", "/admin/user/delete?pks=abc"),
        ("GET", "/admin/user/details/999999999"),
    ],
)
async def test_malformed_or_unknown_id_is_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    headers = {"X-CSRF-Token": await page_token(client)} if method != "GET" else {}
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 404


async def test_existing_record_is_shown(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session, username="visible-one")
    await session.commit()
    response = await client.get(f"/admin/user/details/{user.id}")
    assert response.status_code == 200
    assert "visible-one" in response.text


async def test_database_down_is_503_not_500(down_client: httpx.AsyncClient) -> None:
    token = csrf_from((await down_client.get("/admin/login")).text)  # the login page needs no database
    started = time.monotonic()
    response = await down_client.post(
        "/admin/login", data={"username": "someone", "password": "whatever", "csrf_token": token}
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert "database is unavailable" in response.text
    assert "Traceback" not in response.text and "Errno" not in response.text
    assert response.headers["retry-after"]


async def test_unexpected_error_is_generic_500_with_correlation_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/admin/broken")
    assert response.status_code == 500
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    request_id = response.headers["x-request-id"]
    assert request_id in response.text
    assert any(request_id in record.getMessage() for record in caplog.records)


async def test_json_clients_get_json_errors(down_client: httpx.AsyncClient) -> None:
    async def boom(_request: Request) -> Response:
        raise RuntimeError("hidden")

    down_client._transport.app.add_route("/api-boom", boom)  # type: ignore[attr-defined]
    response = await down_client.get("/api-boom", headers={"accept": "application/json"})
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "hidden" not in response.text


@pytest.mark.postgres
async def test_exhausted_pool_is_503(fresh_url: str) -> None:
    username = await _committed_superuser(fresh_url)
    settings = make_settings(fresh_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5)
    app = build_app(settings)
    engine = app.state.database.engine
    async with client_for(app) as client:
        assert (await sign_in(client, username)).status_code == 302
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))  # the pool's only connection, held
            response = await client.get("/admin/user/list")
    await app.state.database.dispose()
    assert response.status_code == 503


@pytest.mark.postgres
async def test_recovers_after_connections_are_killed(fresh_url: str) -> None:
    username = await _committed_superuser(fresh_url)
    app = build_app(make_settings(fresh_url))
    killer = create_async_engine(fresh_url, isolation_level="AUTOCOMMIT")
    try:
        async with client_for(app) as client:
            assert (await sign_in(client, username)).status_code == 302
            assert (await client.get("/admin/user/list")).status_code == 200
            async with killer.connect() as connection:
                killed = await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'custodian' AND datname = current_database()"
                    )
                )
                assert killed.all()
            # The pooled connection is dead; pre-ping replaces it transparently.
            assert (await client.get("/admin/user/list")).status_code == 200
            assert (await client.get("/ready")).status_code == 200
    finally:
        await killer.dispose()
        await app.state.database.dispose()
