"""Read replicas, against a real PostgreSQL streaming standby (tests/replica.py).

Where a read ran is proven two ways: rows written on the primary while the
standby's replay is paused are missing from what a page shows, and a
statement recorder on each engine shows which server ran what. Then the
faults: a standby stopped with requests in flight, one lagging past the limit,
and a URL that names no server at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.app import create_app
from admin.requests import READ_PRIMARY_COOKIE
from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.errors import ConfigurationError
from backend.models import AuthSession, Tag
from tests.admin.conftest import client_for, sign_in
from tests.cli.conftest import run_manage_py
from tests.databases import TEST_SECRET_KEY, make_settings, migrated_database
from tests.factories import make_user
from tests.replica import DATABASE, ReplicatedPair, replicated_pair

# One worker runs the module: one primary and standby pair, its tests in file order.
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("replicas")]
OPS = "ops"
OPS_PASSWORD = "ops-long-password-1"
NOWHERE = "postgresql+asyncpg://postgres@127.0.0.1:1/custodian"  # nothing listens on port 1
# Page reads that may come from a replica; the dashboard is the admin's index.
READ_PAGES = ("/admin/tag/list", "/admin/tag/list?search=replica", "/admin/tag/export/csv", "/admin/")


@pytest.fixture(scope="module")
def pair(db_backend: str) -> Iterator[ReplicatedPair]:
    """A primary and its streaming standby for this module (per xdist worker), stopped at the end."""
    with replicated_pair() as started:
        yield started


@pytest.fixture(scope="module")
async def primary_url(pair: ReplicatedPair) -> str:
    """The pair's database, migrated, with a superuser, replayed on the standby."""
    async with migrated_database(make_settings(pair.primary_url)) as uow:
        await make_user(uow.session, username=OPS, password=OPS_PASSWORD, is_superuser=True)
    pair.wait_caught_up()
    return pair.primary_url


@pytest.fixture(autouse=True)
def replay_running(pair: ReplicatedPair) -> Iterator[None]:
    """Every test leaves the standby running and replaying, whatever it did to it."""
    yield
    if not (pair.replica.data / "postmaster.pid").exists():
        pair.replica.start()
    pair.resume_replay()


def replicated(pair: ReplicatedPair, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_replica_urls": pair.replica_url,
        "replica_max_lag_seconds": 600,
        "replica_check_interval_seconds": 600,
    }
    values.update(overrides)
    return make_settings(pair.primary_url, **values)


class Recorder:
    """The statements each engine ran, to tell which server served a request."""

    def __init__(self, primary: AsyncEngine, replicas: list[AsyncEngine]) -> None:
        self.on_primary: list[str] = []
        self.on_replica: list[str] = []
        event.listen(primary.sync_engine, "before_cursor_execute", self._to(self.on_primary))
        for engine in replicas:
            event.listen(engine.sync_engine, "before_cursor_execute", self._to(self.on_replica))

    @staticmethod
    def _to(sink: list[str]) -> Any:
        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            sink.append(statement)

        return record

    def clear(self) -> None:
        self.on_primary.clear()
        self.on_replica.clear()

    def page_reads_on_primary(self) -> list[str]:
        """What the primary ran besides the sign-in check (the session lookup, and its touch)."""
        return [statement for statement in self.on_primary if "auth_session" not in statement]

    def page_reads_on_replica(self) -> list[str]:
        """What the replicas ran besides their health checks."""
        return [statement for statement in self.on_replica if "pg_is_in_recovery" not in statement]


@asynccontextmanager
async def signed_in(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Database, Recorder]]:
    database = Database(settings)
    recorder = Recorder(database.engine, [replica.engine for replica in database.replicas.all])
    client = client_for(create_app(settings, database=database))
    try:
        assert (await sign_in(client, OPS, OPS_PASSWORD)).status_code == 302
        client.cookies.delete(READ_PRIMARY_COOKIE)  # signing in is a write: reads would go to the primary
        yield client, database, recorder
    finally:
        await client.aclose()
        await database.dispose()


async def add_tag(primary_url: str, name: str) -> None:
    """A row written straight to the primary."""
    database = Database(make_settings(primary_url))
    try:
        async with database.sessions() as session:
            session.add(Tag(name=name))
            await session.commit()
    finally:
        await database.dispose()


def seen_on_replica(pair: ReplicatedPair, name: str, timeout: float = 15) -> None:
    """Until a query on the standby sees the tag: a standby just made from a base backup can have
    replayed a commit (its LSN) before its snapshots show it, so replay position alone is not enough."""
    deadline = time.monotonic() + timeout
    query = f"SELECT count(*) FROM tag WHERE name = '{name}'"
    while pair.replica.sql(query, database=DATABASE) != "1":
        if time.monotonic() > deadline:
            raise AssertionError(f"the standby never showed the tag {name} within {timeout:.0f} s")
        time.sleep(0.05)


async def test_pages_searches_counts_exports_and_the_dashboard_read_from_the_replica(
    pair: ReplicatedPair, primary_url: str
) -> None:
    await add_tag(primary_url, "replica-old")
    pair.wait_caught_up()
    seen_on_replica(pair, "replica-old")
    pair.pause_replay()
    await add_tag(primary_url, "replica-new")  # on the primary only, while replay is paused
    async with signed_in(replicated(pair)) as (client, _database, recorder):
        for path in READ_PAGES:
            recorder.clear()
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text[:500])
            assert recorder.page_reads_on_replica(), path
            assert recorder.page_reads_on_primary() == [], path
            if path != "/admin/":
                assert "replica-old" in page.text and "replica-new" not in page.text, path
        pair.resume_replay()
        pair.wait_caught_up()
        assert "replica-new" in (await client.get("/admin/tag/list?search=replica")).text


async def test_writes_and_reads_after_a_write_go_to_the_primary(
    pair: ReplicatedPair, primary_url: str
) -> None:
    pair.pause_replay()
    async with signed_in(replicated(pair)) as (client, database, recorder):
        recorder.clear()
        page = await client.get("/admin/tag/create")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        recorder.clear()
        created = await client.post(
            "/admin/tag/create", data={"name": "written-on-primary", "save": "Save", "csrf_token": token}
        )
        assert created.status_code == 302, created.text[:500]
        assert recorder.on_replica == []  # a request that writes reads the primary from its start

        # The page the save leads to shows it: for a while this browser reads the primary.
        assert f"{READ_PRIMARY_COOKIE}=1; Max-Age=1200;" in created.headers["set-cookie"]
        recorder.clear()
        assert "written-on-primary" in (await client.get("/admin/tag/list")).text
        assert recorder.page_reads_on_replica() == []
        client.cookies.delete(READ_PRIMARY_COOKIE)
        assert "written-on-primary" not in (await client.get("/admin/tag/list")).text  # replay is paused
        assert recorder.page_reads_on_replica()

        # A unit that starts read-only reads the replica until it writes, then the primary.
        async with unit_of_work(database, Actor.system("tests"), writes=False, read_replica=True) as uow:
            recorder.clear()
            assert await uow.repo(Tag).get_by(name="written-on-primary") is None  # not replayed yet
            assert recorder.page_reads_on_replica() and not recorder.on_primary
            await uow.begin_writing()
            uow.repo(Tag).stage(Tag(name="written-then-read"))
            await uow.flush()
            recorder.clear()
            names = set((await uow.session.execute(select(Tag.name))).scalars())
            assert {"written-on-primary", "written-then-read"} <= names
            assert recorder.on_primary and not recorder.on_replica


async def test_sign_in_and_a_revoked_session_read_the_primary(pair: ReplicatedPair, primary_url: str) -> None:
    async with signed_in(replicated(pair)) as (client, _database, _recorder):
        assert (await client.get("/admin/tag/list")).status_code == 200
        pair.wait_caught_up()
        pair.pause_replay()
        await revoke_sessions(primary_url)
        # The standby still holds the session open; the primary has it revoked.
        still_open = "SELECT count(*) FROM auth_session WHERE revoked_at IS NULL"
        assert pair.replica.sql(still_open, database=DATABASE) != "0"
        refused = await client.get("/admin/tag/list")
        assert refused.status_code == 302 and "/admin/login" in refused.headers["location"]


async def revoke_sessions(primary_url: str) -> None:
    database = Database(make_settings(primary_url))
    try:
        async with database.sessions() as session:
            await session.execute(update(AuthSession).values(revoked_at=text("now()")))
            await session.commit()
    finally:
        await database.dispose()


async def test_a_replica_stopped_under_reads_falls_back_to_the_primary(
    pair: ReplicatedPair, primary_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backend.db.replicas")
    async with signed_in(replicated(pair)) as (client, database, recorder):
        recorder.clear()
        assert (await client.get("/admin/tag/list")).status_code == 200
        assert recorder.page_reads_on_replica()

        async def reads() -> list[int]:
            statuses = []
            for _ in range(15):
                for path in ("/admin/tag/list", "/admin/tag/list?search=replica"):
                    statuses.append((await client.get(path)).status_code)
            return statuses

        # The standby stops (fast shutdown: its connections drop) while reads are in flight.
        during = await asyncio.gather(reads(), reads(), asyncio.to_thread(pair.replica.stop))
        assert set(during[0]) | set(during[1]) == {200}

        recorder.clear()
        for path in READ_PAGES:  # its health is cached as good for 600 s: each read finds it gone
            assert (await client.get(path)).status_code == 200, path
        assert recorder.on_replica == [] and recorder.page_reads_on_primary()
        assert any("runs on the primary" in record.message for record in caplog.records)
        ready = await client.get("/ready")
        assert ready.status_code == 200
        (status,) = ready.json()["replicas"].values()
        assert status["ok"] is False and "is unavailable" in status["detail"]

        pair.replica.start()
        pair.wait_caught_up()
        ready = await client.get("/ready")  # checks again: the standby is back
        (status,) = ready.json()["replicas"].values()
        assert status["ok"] is True, status
        recorder.clear()
        assert (await client.get("/admin/tag/list")).status_code == 200
        assert recorder.page_reads_on_replica() and recorder.page_reads_on_primary() == []
        assert database.replicas.all[0].status is not None and database.replicas.all[0].status.ok


async def test_a_replica_lagging_past_the_limit_is_skipped(pair: ReplicatedPair, primary_url: str) -> None:
    settings = replicated(pair, replica_max_lag_seconds=1, replica_check_interval_seconds=0.1)
    async with signed_in(settings) as (client, _database, recorder):
        pair.wait_caught_up()
        await asyncio.sleep(1.5)  # an idle primary: the last replayed transaction is older than the limit
        ready = await client.get("/ready")
        (status,) = ready.json()["replicas"].values()
        assert status == {**status, "ok": True, "lag_seconds": 0.0}  # caught up, so 0 behind

        pair.pause_replay()
        await add_tag(primary_url, "lagging-behind")
        await asyncio.sleep(1.5)
        recorder.clear()
        page = await client.get("/admin/tag/list?search=lagging")
        assert page.status_code == 200 and "lagging-behind" in page.text  # from the primary
        assert recorder.page_reads_on_replica() == []
        ready = await client.get("/ready")
        assert ready.status_code == 200
        (status,) = ready.json()["replicas"].values()
        assert status["ok"] is False and status["lag_seconds"] > 1
        assert "REPLICA_MAX_LAG_SECONDS" in status["detail"]

        pair.resume_replay()
        pair.wait_caught_up()
        await asyncio.sleep(0.2)
        recorder.clear()
        assert "lagging-behind" in (await client.get("/admin/tag/list?search=lagging")).text
        assert recorder.page_reads_on_replica()


async def test_a_wrong_replica_url_fails_check_and_the_app_serves_from_the_primary(
    pair: ReplicatedPair, primary_url: str
) -> None:
    env = {
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": primary_url,
        "DATABASE_REPLICA_URLS": f"{pair.replica_url},{NOWHERE}",
        "DB_CONNECT_TIMEOUT": "2",
        "PATH": os.environ.get("PATH", ""),
    }
    check = await asyncio.to_thread(run_manage_py, "check", env=env)
    assert check.code == 1
    failed = [line for line in check.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL replica 2: {NOWHERE} is unavailable ("), check.out
    assert f"ok   replica 1: {pair.replica.url().render_as_string()}" in check.out
    assert "Traceback" not in check.out + check.err
    report = json.loads((await asyncio.to_thread(run_manage_py, "check", "--json", env=env)).out)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["replica 2"]

    settings = make_settings(primary_url, database_replica_urls=NOWHERE)
    async with signed_in(settings) as (client, _database, recorder):
        for path in READ_PAGES:
            assert (await client.get(path)).status_code == 200, path
        assert recorder.on_replica == []
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["replicas"]["replica 1"]["ok"] is False


def test_replica_settings_are_checked() -> None:
    postgres = "postgresql+asyncpg://app@db:5432/app"
    with pytest.raises(ConfigurationError, match="SQLite has no read replicas"):
        make_settings("sqlite+aiosqlite:///x.sqlite3", database_replica_urls=postgres)
    with pytest.raises(ConfigurationError, match="replica 2 uses the driver 'postgresql'"):
        make_settings(postgres, database_replica_urls=f"{postgres}, postgresql://app@r2/app")
    with pytest.raises(ConfigurationError, match="empty entry"):
        make_settings(postgres, database_replica_urls=f"{postgres},,{postgres}")
    with pytest.raises(ConfigurationError, match="replica 1 is not a valid database URL"):
        make_settings(postgres, database_replica_urls="not a url")
    two = f" {postgres} , postgresql+asyncpg://app@r2/app "
    settings = make_settings(postgres, database_replica_urls=two)
    assert [url.host for url in settings.replica_urls] == ["db", "r2"]
    assert make_settings(postgres, database_replica_urls="").replica_urls == ()


async def test_a_replica_never_checked_is_checked_at_once_however_young_the_machine() -> None:
    """time.monotonic() counts from boot: a machine up for less than the check interval still checks."""
    postgres = "postgresql+asyncpg://app@db:5432/app"
    settings = make_settings(postgres, database_replica_urls=postgres, replica_check_interval_seconds=600)
    database = Database(settings)
    try:
        (replica,) = database.replicas.all
        assert replica.due(now=5.0, interval=600)
        replica.checked_at = 1.0
        assert not replica.due(now=5.0, interval=600)
        assert replica.due(now=601.0, interval=600)
    finally:
        await database.dispose()


async def test_statements_run_on_the_replica_are_counted_and_measured(pair: ReplicatedPair) -> None:
    """X-SQL-Statements and /metrics count a page's statements wherever they ran."""
    settings = replicated(pair, debug_sql_header=True, metrics_enabled=True, metrics_slow_statement_ms=1)
    async with signed_in(settings) as (client, _database, recorder):
        recorder.clear()
        page = await client.get("/admin/tag/list")
        assert page.status_code == 200 and recorder.page_reads_on_replica()
        counted = int(page.headers["x-sql-statements"])
        assert counted >= len(recorder.page_reads_on_replica()) + len(recorder.on_primary)
        exposition = (await client.get("/metrics")).text
    slow = [line for line in exposition.splitlines() if line.startswith("custodian_db_slow_statements_total")]
    assert slow and float(slow[0].rsplit(" ", 1)[1]) >= 1
