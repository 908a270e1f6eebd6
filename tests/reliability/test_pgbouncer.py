"""The app through PgBouncer in transaction pooling mode (Debian's 1.18, no named prepared statements).

Lists, a write, sign-in and its audit entry run through the app's own engine
(DATABASE_POOLER=pgbouncer) while migrations and the job queue take
DATABASE_DIRECT_URL. A control shows the suite can fail: the same traffic
without the recipe breaks on prepared statements. Then PgBouncer is killed
under load: quick 503s, and the same running app recovers once it is back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from admin.app import create_app
from backend.config import DatabasePooler, Settings
from backend.db import migrations
from backend.db.session import Database, create_engine
from backend.errors import ConfigurationError
from backend.jobs.queue import opened, queue_conninfo
from backend.models import AuditEntry, Tag
from tests.admin.conftest import client_for, csrf_from, page_token, sign_in
from tests.databases import TEST_SECRET_KEY, make_settings, migrated_database, throwaway_database
from tests.factories import make_user
from tests.pgbouncer import PgBouncer, running_pgbouncer
from tests.serving import running_server

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres
OPS = "ops"
OPS_PASSWORD = "ops-long-password-1"


def pooled(bouncer: PgBouncer, direct_url: str, **overrides: object) -> Settings:
    return make_settings(
        bouncer.url_for(direct_url),
        database_pooler="pgbouncer",
        database_direct_url=direct_url,
        **overrides,
    )


@pytest.fixture
async def direct_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, migrated (directly) and with a superuser."""
    async with throwaway_database(db_backend, tmp_path) as url:
        async with migrated_database(make_settings(url)) as uow:
            await make_user(uow.session, username=OPS, password=OPS_PASSWORD, is_superuser=True)
        yield url


def test_pgbouncer_needs_a_direct_url_and_postgresql() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_DIRECT_URL"):
        make_settings("postgresql+asyncpg://app@127.0.0.1:6432/app", database_pooler="pgbouncer")
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        make_settings("sqlite+aiosqlite:///x.sqlite3", database_pooler="pgbouncer")
    with pytest.raises(ConfigurationError, match="DATABASE_DIRECT_URL"):
        make_settings("postgresql+asyncpg://app@db/app", database_direct_url="sqlite+aiosqlite:///x.sqlite3")
    plain = make_settings("postgresql+asyncpg://app@db:5432/app")
    assert plain.database_pooler is DatabasePooler.NONE and plain.direct_url == plain.url


async def test_lists_writes_sign_in_and_audit_through_pgbouncer(
    pgbouncer: PgBouncer, direct_url: str
) -> None:
    settings = pooled(pgbouncer, direct_url)
    database = Database(settings)
    assert database.engine.url.port == pgbouncer.port
    app = create_app(settings, database=database)
    clients = [client_for(app) for _ in range(3)]
    try:
        for client in clients:
            assert (await sign_in(client, OPS, OPS_PASSWORD)).status_code == 302
        token = await page_token(clients[0])
        created = await clients[0].post(
            "/admin/tag/create",
            data={"name": "through-pgbouncer", "save": "Save"},
            headers={"X-CSRF-Token": token},
        )
        assert created.status_code == 302, created.text
        # Many transactions at once: each may land on any server connection PgBouncer holds.
        pages = await asyncio.gather(
            *(
                client.get(path)
                for _ in range(8)
                for client in clients
                for path in ("/admin/tag/list", "/admin/product/list?search=a", "/admin/audit-log")
            )
        )
        assert {page.status_code for page in pages} == {200}
        assert "through-pgbouncer" in (await clients[1].get("/admin/tag/list")).text
        assert (await clients[2].get("/ready")).status_code == 200

        async with database.sessions() as session:
            tag = (await session.execute(select(Tag).where(Tag.name == "through-pgbouncer"))).scalar_one()
            entries = (
                await session.execute(
                    select(AuditEntry.action).where(
                        AuditEntry.actor_name == OPS, AuditEntry.action.in_(("create", "login"))
                    )
                )
            ).scalars()
            actions = list(entries)
        assert "create" in actions and tag.id is not None
    finally:
        for client in clients:
            await client.aclose()
        await database.dispose()


async def test_without_the_recipe_statements_collide(pgbouncer: PgBouncer, direct_url: str) -> None:
    """The control: a stock asyncpg engine fails on the same PgBouncer, so the test above can fail."""
    engine = create_async_engine(pgbouncer.url_for(direct_url), pool_size=3)

    async def reads() -> None:
        for n in range(30):
            async with engine.connect() as connection:
                await connection.execute(select(Tag.id).where(Tag.name == str(n)))
                await connection.commit()

    try:
        with pytest.raises(DBAPIError, match="prepared statement"):
            await asyncio.gather(*(reads() for _ in range(6)))
    finally:
        await engine.dispose()


async def test_migrations_and_the_job_queue_take_the_direct_url(
    pgbouncer: PgBouncer, db_backend: str, tmp_path: Path
) -> None:
    async with throwaway_database(db_backend, tmp_path) as direct:
        settings = pooled(pgbouncer, direct)
        engine = create_engine(settings, for_migrations=True)
        assert engine.url.port != pgbouncer.port
        await engine.dispose()
        assert f":{pgbouncer.port}/" not in queue_conninfo(settings)

        config = migrations.alembic_config(settings)
        await migrations.upgrade(config)
        status = await migrations.status(config)
        assert status.at_head
        database = Database(settings)
        try:
            assert (
                await migrations.not_migrated(settings, database.engine) is None
            )  # as seen through PgBouncer
        finally:
            await database.dispose()
        async with opened(settings) as queue:
            assert await queue.check_connection_async()


def _signed_in(base: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=30)
    login = client.get("/admin/login")
    response = client.post(
        "/admin/login", data={"username": OPS, "password": OPS_PASSWORD, "csrf_token": csrf_from(login.text)}
    )
    assert response.status_code == 302, response.text
    return client, csrf_from(client.get("/admin/").text)


def _create_tag(client: httpx.Client, token: str, name: str) -> int:
    response = client.post(
        "/admin/tag/create", data={"name": name, "save": "Save"}, headers={"X-CSRF-Token": token}
    )
    return response.status_code


class Readers:
    """Background list requests, so PgBouncer dies with queries in flight."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens to the test
        while self.running and time.monotonic() < deadline:
            try:
                self.statuses.append(self.client.get("/admin/tag/list").status_code)
            except httpx.HTTPError as error:
                self.statuses.append(0)
                self.errors.append(repr(error))

    def __enter__(self) -> Readers:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.running = False
        self.thread.join(timeout=30)


def test_pgbouncer_restarted_under_load(direct_url: str) -> None:
    with running_pgbouncer() as bouncer:
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATABASE_URL": bouncer.url_for(direct_url),
            "DATABASE_POOLER": "pgbouncer",
            "DATABASE_DIRECT_URL": direct_url,
            "DB_CONNECT_TIMEOUT": "2",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PASSWORD_HASH_TIME_COST": "1",
        }
        command = [sys.executable, "manage.py", "runserver", "--port"]
        acknowledged: list[str] = []
        with running_server(
            lambda port: [*command, str(port)], cwd=REPO, env=env, health_path="/ready"
        ) as server:
            client, token = _signed_in(server.url)
            with Readers(httpx.Client(base_url=server.url, cookies=client.cookies, timeout=30)) as readers:
                for n in range(5):
                    assert _create_tag(client, token, f"before-{n}") == 302
                    acknowledged.append(f"before-{n}")
                bouncer.stop()
                try:
                    for n in range(3):
                        started = time.monotonic()
                        assert _create_tag(client, token, f"during-{n}") == 503
                        assert time.monotonic() - started < 8
                    assert httpx.get(f"{server.url}/ready", timeout=10).status_code == 503
                    assert httpx.get(f"{server.url}/health").status_code == 200
                finally:
                    bouncer.start()
                # No app restart: the next connection goes to the PgBouncer that is back.
                for n in range(5):
                    assert _create_tag(client, token, f"after-{n}") == 302
                    acknowledged.append(f"after-{n}")
            client.close()
        assert 503 in readers.statuses and readers.statuses[-1] == 200
        assert set(readers.statuses) <= {200, 503}, (readers.statuses, readers.errors)

    async def stored() -> set[str]:
        database = Database(make_settings(direct_url))
        try:
            async with database.sessions() as session:
                return set((await session.execute(select(Tag.name))).scalars())
        finally:
            await database.dispose()

    names = asyncio.run(stored())
    assert set(acknowledged) <= names
    assert not any(name.startswith("during-") for name in names)
