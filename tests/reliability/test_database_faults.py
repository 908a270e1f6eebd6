"""PostgreSQL stopped under load: quick 503s, honest health checks, recovery, no lost writes.

The server is the machine's own cluster, stopped with `pg_ctlcluster ... stop -m fast` and
started again; it is always left running. Tests that run after it are unaffected: every pool
pre-pings its connections, so the ones the restart killed are replaced.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from backend.db.session import Database
from backend.models import Tag
from tests.databases import TEST_SECRET_KEY, make_settings, migrated_database
from tests.factories import make_user
from tests.serving import running_server

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.exclusive]


def _cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
    )


async def _wait_for_postgres(url: str) -> None:
    database = Database(make_settings(url))
    try:
        for _ in range(100):
            try:
                async with database.engine.connect() as connection:
                    await connection.exec_driver_sql("SELECT 1")
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise RuntimeError("PostgreSQL did not come back")
    finally:
        await database.dispose()


async def _prepare(url: str) -> None:
    async with migrated_database(make_settings(url)) as uow:
        await make_user(uow.session, username="ops", password="ops-long-password-1", is_superuser=True)


def _signed_in(base: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/admin/login", data={"username": "ops", "password": "ops-long-password-1", "csrf_token": token}
    )
    assert response.status_code == 302
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/admin/").text).group(1)  # type: ignore[union-attr]
    return client, token


def _create_tag(client: httpx.Client, token: str, name: str) -> int:
    return client.post(
        "/admin/tag/create", data={"name": name, "save": "Save"}, headers={"X-CSRF-Token": token}
    ).status_code


def _under_load(base: str, env: dict[str, str], acknowledged: list[str], fresh_url: str) -> None:
    """Writes before, during and after a stopped cluster; the acknowledged ones are recorded."""
    client, token = _signed_in(base)
    for n in range(10):
        if _create_tag(client, token, f"before-{n}") == 302:
            acknowledged.append(f"before-{n}")
    assert len(acknowledged) == 10

    _cluster("stop")
    try:
        for n in range(5):
            started = time.monotonic()
            status = _create_tag(client, token, f"during-{n}")
            assert status == 503, status
            assert time.monotonic() - started < 8
            assert client.get("/admin/tag/list").status_code == 503
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 503 and "Cannot reach the database" in ready.json()["reason"]
        assert httpx.get(f"{base}/health").status_code == 200
        started = time.monotonic()
        check = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 1 and "Cannot reach the database" in check.stdout
        assert time.monotonic() - started < 15
    finally:
        _cluster("start")
    asyncio.run(_wait_for_postgres(fresh_url))

    # The app recovers on its own: no restart, the same signed-in session.
    for _ in range(50):
        if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
            break
        time.sleep(0.2)
    assert httpx.get(f"{base}/ready").status_code == 200
    for n in range(5):
        if _create_tag(client, token, f"after-{n}") == 302:
            acknowledged.append(f"after-{n}")
    assert len(acknowledged) == 15


def test_postgres_stopped_and_started_under_load(fresh_url: str) -> None:
    if not Path("/etc/postgresql").is_dir():
        pytest.fail("this test needs the machine's PostgreSQL cluster (pg_ctlcluster)")
    asyncio.run(_prepare(fresh_url))
    env = {
        **os.environ,
        "DATABASE_URL": fresh_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENVIRONMENT": "test",
        "DB_CONNECT_TIMEOUT": "2",
        "DB_POOL_TIMEOUT": "2",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_TIME_COST": "1",
    }
    acknowledged: list[str] = []
    runserver = [sys.executable, "manage.py", "runserver", "--port"]
    try:
        with running_server(
            lambda port: [*runserver, str(port)], cwd=REPO, env=env, health_path="/ready"
        ) as server:
            _under_load(server.url, env, acknowledged, fresh_url)
    finally:
        if subprocess.run(["pg_lsclusters"], capture_output=True, text=True).stdout.count("online") == 0:
            _cluster("start")

    async def stored() -> set[str]:
        database = Database(make_settings(fresh_url))
        try:
            async with database.sessions() as session:
                return set((await session.execute(select(Tag.name))).scalars())
        finally:
            await database.dispose()

    names = asyncio.run(stored())
    assert set(acknowledged) <= names  # no acknowledged write is missing
    assert not any(name.startswith("during-") for name in names)  # nothing refused was half-written
