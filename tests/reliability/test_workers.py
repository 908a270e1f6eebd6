"""Several app processes over one database: sessions, CSRF, flash messages, throttling and metrics hold.

Two `manage.py runserver` processes on two ports share one PostgreSQL database,
one SECRET_KEY and one metrics folder, as the workers of one server do: a
client signs in on A and acts on B, login failures on both add up, and either
process's /metrics counts both. Then the real thing, `runserver --workers 2`.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.admin.conftest import csrf_from
from tests.databases import TEST_SECRET_KEY, make_settings, migrated_database
from tests.factories import make_user
from tests.serving import RunningServer, running_server

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres
OPS = "ops"
OPS_PASSWORD = "ops-long-password-1"
TOKEN = "metrics-token-0123456789abcdef"
_TOAST = re.compile(r'<div class="toast-body">(.*?)</div>', re.DOTALL)


async def _prepare(url: str) -> None:
    async with migrated_database(make_settings(url)) as uow:
        await make_user(uow.session, username=OPS, password=OPS_PASSWORD, is_superuser=True)


def _environment(url: str, metrics_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_TIME_COST": "1",
        "LOGIN_MAX_FAILURES_PER_USER": "4",
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def _runserver(*options: str) -> list[str]:
    return [sys.executable, "manage.py", "runserver", *options, "--port"]


@pytest.fixture
def database_url(fresh_url: str) -> str:
    asyncio.run(_prepare(fresh_url))
    return fresh_url


@pytest.fixture
def two_processes(database_url: str, tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    env = _environment(database_url, tmp_path / "metrics")
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_server(lambda port: [*_runserver(), str(port)], cwd=REPO, env=env))
            for _ in range(2)
        ]
        yield servers[0], servers[1]


def _sign_in(client: httpx.Client, password: str = OPS_PASSWORD) -> httpx.Response:
    login = client.get("/admin/login")
    return client.post(
        "/admin/login", data={"username": OPS, "password": password, "csrf_token": csrf_from(login.text)}
    )


def _metric(body: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def _scrape(server: RunningServer) -> str:
    response = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.text


def test_a_session_started_on_one_process_acts_on_another(two_processes: tuple[RunningServer, ...]) -> None:
    a, b = two_processes
    with httpx.Client(base_url=a.url, timeout=30) as on_a, httpx.Client(base_url=b.url, timeout=30) as on_b:
        assert _sign_in(on_a).status_code == 302
        token = csrf_from(on_a.get("/admin/").text)
        on_b.cookies = on_a.cookies  # the same browser, answered by another worker
        created = on_b.post(
            "/admin/tag/create",
            data={"name": "made-on-b", "save": "Save"},
            headers={"X-CSRF-Token": token, "Referer": f"{b.url}/admin/tag/create"},
        )
        assert created.status_code == 302, created.text
        on_a.cookies = on_b.cookies
        shown = on_a.get(created.headers["location"])
        assert shown.status_code == 200
        assert any("made-on-b" in html.unescape(toast) for toast in _TOAST.findall(shown.text)), shown.text

        forged = on_b.post("/admin/tag/create", data={"name": "no-token", "save": "Save"})
        assert forged.status_code == 403  # the CSRF check holds on B as on A

    body = _scrape(a)  # A answers for both processes
    create = {"method": "POST", "route": "/admin/{identity}/create"}
    assert _metric(body, "custodian_http_requests_total", status="302", **create) == 1
    assert _metric(body, "custodian_http_requests_total", status="403", **create) == 1
    assert _scrape(b).count("custodian_http_requests_total") == body.count("custodian_http_requests_total")


def test_login_failures_on_both_processes_add_up(two_processes: tuple[RunningServer, ...]) -> None:
    a, b = two_processes
    with httpx.Client(base_url=a.url, timeout=30) as on_a, httpx.Client(base_url=b.url, timeout=30) as on_b:
        for client in (on_a, on_b, on_a, on_b):
            assert _sign_in(client, "wrong-password").status_code == 400
        assert _sign_in(on_a).status_code == 429  # four failures, two per process: locked out everywhere
        assert _sign_in(on_b).status_code == 429


def test_runserver_with_two_workers(database_url: str, tmp_path: Path) -> None:
    env = _environment(database_url, tmp_path / "metrics")
    with running_server(lambda port: [*_runserver("--workers", "2"), str(port)], cwd=REPO, env=env) as server:
        workers = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) >= 2, workers  # uvicorn's two workers (and its spawn helper)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert _sign_in(client).status_code == 302
            # Fresh connections, so the kernel spreads them over both workers; the session holds on each.
            for _ in range(10):
                with httpx.Client(base_url=server.url, cookies=client.cookies, timeout=30) as again:
                    assert again.get("/admin/tag/list").status_code == 200
            for _ in range(20):
                assert httpx.get(f"{server.url}/favicon.ico").status_code == 301
        body = _scrape(server)
    favicon = {"method": "GET", "route": "/favicon.ico", "status": "301"}
    assert _metric(body, "custodian_http_requests_total", **favicon) == 20
    listing = {"method": "GET", "route": "/admin/{identity}/list", "status": "200"}
    assert _metric(body, "custodian_http_requests_total", **listing) == 10


def test_production_refuses_to_start_workers_without_a_shared_key() -> None:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update({"ENVIRONMENT": "production", "DATABASE_URL": "postgresql+asyncpg://app@127.0.0.1:1/app"})
    result = subprocess.run(
        [sys.executable, "manage.py", "runserver", "--workers", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.stderr
