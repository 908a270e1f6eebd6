"""GET /metrics: off by default, closed to strangers when on, and counting what it says it counts."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from admin.app import create_app
from admin.diagnostics import HEADER
from admin.metrics import route_template
from backend.config import Settings
from backend.db.session import Database
from backend.errors import ConfigurationError
from backend.models import User
from tests.admin.conftest import Apps, client_for
from tests.databases import make_settings
from tests.factories import make_user

TOKEN = "metrics-token-0123456789abcdef"
Clients = Callable[[Starlette, User], Awaitable[httpx.AsyncClient]]


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(body: str, name: str, **labels: str) -> float:
    return samples(body).get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_off_by_default(make_app: Apps) -> None:
    app, _ = make_app()
    async with client_for(app) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_without_a_token_only_the_loopback_may_scrape(make_app: Apps) -> None:
    app, _ = make_app(metrics_enabled=True)
    async with client_for(app) as local:  # httpx's in-process client comes from 127.0.0.1
        response = await local.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    stranger = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=stranger, base_url="http://testserver") as remote:
        refused = await remote.get("/metrics")
    assert refused.status_code == 403
    assert "custodian_" not in refused.text


async def test_with_a_token_everyone_needs_it(make_app: Apps) -> None:
    app, _ = make_app(metrics_enabled=True, metrics_token=TOKEN)
    async with client_for(app) as client:
        assert (await client.get("/metrics")).status_code == 403
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 403
        assert (await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})).status_code == 403
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
    assert "custodian_db_pool_checked_out" in allowed.text


def test_production_refuses_open_metrics() -> None:
    url = "postgresql+asyncpg://db/app"
    production: dict[str, object] = {"environment": "production", "secret_key": "k" * 48}
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        make_settings(url, **production, metrics_enabled=True)
    assert make_settings(url, **production, metrics_enabled=True, metrics_token=TOKEN).metrics_enabled
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        make_settings(url, metrics_token="short")


async def test_requests_latency_and_statements_by_route(
    make_app: Apps, clients: Clients, session: AsyncSession
) -> None:
    app, _ = make_app(metrics_enabled=True)
    user = await make_user(session, is_superuser=True)
    await session.commit()
    client = await clients(app, user)
    for _ in range(3):
        page = await client.get("/admin/tag/list")
        assert page.status_code == 200
        assert HEADER.decode() not in page.headers  # read by the metrics, not sent
    assert (await client.get("/admin/tag/details/999999999")).status_code == 404
    body = (await client.get("/metrics")).text

    listing = {"method": "GET", "route": "/admin/{identity}/list"}
    assert value(body, "custodian_http_requests_total", status="200", **listing) == 3
    assert value(body, "custodian_http_request_duration_seconds_count", **listing) == 3
    assert value(body, "custodian_http_request_statements_count", route=listing["route"]) == 3
    assert value(body, "custodian_http_request_statements_sum", route=listing["route"]) >= 3
    details = {"method": "GET", "route": "/admin/{identity}/details/{pk:path}", "status": "404"}
    assert value(body, "custodian_http_requests_total", **details) == 1
    assert value(body, "custodian_db_pool_checked_out") == 0  # every request gave its connection back
    assert not re.search(r'route="/admin/tag/', body)  # templates, never raw paths


async def test_the_debug_header_still_works_alongside(
    make_app: Apps, clients: Clients, session: AsyncSession
) -> None:
    app, _ = make_app(metrics_enabled=True, debug_sql_header=True)
    user = await make_user(session, is_superuser=True)
    await session.commit()
    client = await clients(app, user)
    page = await client.get("/admin/tag/list")
    assert int(page.headers[HEADER.decode()]) >= 1


async def test_slow_statements_are_counted_and_logged_without_values(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    local = settings.model_copy(update={"metrics_enabled": True, "metrics_slow_statement_ms": 50})
    database = Database(local)
    app = create_app(local, database=database)
    slow = "SELECT pg_sleep(:pause)" if not local.is_sqlite else _SQLITE_SLOW
    try:
        with caplog.at_level(logging.WARNING, logger="admin.metrics"):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                await connection.execute(text(slow), {"pause": 0.2})
        async with client_for(app) as client:
            body = (await client.get("/metrics")).text
    finally:
        await database.dispose()
    assert value(body, "custodian_db_slow_statements_total") == 1
    assert any("Slow statement" in record.getMessage() for record in caplog.records)
    assert not any("0.2" in record.getMessage() for record in caplog.records)


# About a second of work on SQLite, which has no sleep; `:pause` is bound only to be kept out of the log.
_SQLITE_SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    "SELECT count(*) + 0 * :pause FROM n"
)


def test_route_templates_follow_mounts(make_app: Apps) -> None:
    app, _ = make_app()

    def template(path: str, method: str = "GET") -> str:
        return route_template(app.routes, {"type": "http", "path": path, "root_path": "", "method": method})

    assert template("/admin/product/details/12") == "/admin/{identity}/details/{pk:path}"
    assert template("/admin/") == "/admin/"
    assert template("/admin/statics/css/main.css") == "/admin/statics/{path}"
    assert template("/health") == "/health"
    assert template("/health", "POST") == "/health"
    assert template("/nothing/here") == "<unmatched>"
