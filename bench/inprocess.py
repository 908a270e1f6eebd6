"""The admin in this process: the exact SQL of a page, its floor through raw asyncpg, and a profile.

`./dev bench` measures pages over HTTP against uvicorn; this module answers what those figures
cannot: how much of a page is its SQL (the database floor) and where the rest goes.

- `capture_statements` builds the same app in this process (`create_app`, over the bench's database),
  signs in and requests each page once through httpx's ASGI transport, with an engine event that
  records every statement and its parameters as asyncpg receives them (SQLAlchemy's asyncpg dialect
  already writes `$1` placeholders).
- `time_statements` runs those statements, in order, on one raw asyncpg connection: the page's
  database floor (no pool checkout, no BEGIN/ROLLBACK, no ORM, no rendering, no session check in
  Python: only the statements and their round trips).
- `profile_page` samples the stack of the thread serving the page every half millisecond (stdlib
  only: a thread reading `sys._current_frames()`) and sorts each sample into session lookup, waiting
  for PostgreSQL, SQL in Python (statement building, driver, ORM rows), rendering, middleware, or
  other. Sampling costs little and, unlike cProfile, does not inflate the many small calls of a
  template.
"""

from __future__ import annotations

import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from admin.app import create_app
from backend.config import load_settings

SAMPLE_INTERVAL_S = 0.0005
# Where a sample goes: the session lookup wherever it is on the stack; otherwise the innermost frame
# that one of these markers names (a part of its file name, or "file::function"), from the innermost
# frame outwards.
SESSION_LOOKUP = ("admin/auth.py::authenticate", "backend/services/auth.py", "backend/repositories/auth.py")
MIDDLEWARE = (
    "/starlette/middleware/",
    "/itsdangerous/",
    "admin/i18n.py::__call__",
    "admin/security.py",
    "admin/input_guard.py",
    "admin/requests.py",
    "admin/metrics.py",
    "admin/diagnostics.py",
)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting for PostgreSQL", ("/selectors.py",)),
    ("middleware", MIDDLEWARE),
    ("SQL in Python (build, driver, ORM rows)", ("/sqlalchemy/", "/asyncpg/")),
    (
        "rendering (templates, cells, formatting)",
        (
            ".html",
            "/jinja2/",
            "/markupsafe/",
            "/babel/",
            "admin/listing.py",
            "admin/formatting.py",
            "admin/columns.py",
            "admin/i18n.py",
            "sqladmin/templating.py",
        ),
    ),
    # httpx's ASGI transport runs in this process: its share is the client's, not the server's.
    ("the in-process client (httpx)", ("/httpx/",)),
)
OTHER = "other (routing, views, permissions, event loop)"
# Wrappers every request passes (their own time is in the middleware group) and the caller's frames:
# left out of the cumulative list.
NOT_CUMULATIVE = (
    *MIDDLEWARE,
    "/starlette/",
    "/httpx/",
    "/asyncio/",
    "/bench/",
    "/anyio/",
    "/threading.py",
    "/contextlib.py",
    "sqladmin/authentication.py",
)
REPO = str(Path(__file__).resolve().parent.parent) + "/"


def _names(code: CodeType, marker: str) -> bool:
    """Whether `marker` ("part/of/file" or "part/of/file::function") names the frame's code."""
    path, _, function = marker.partition("::")
    return path in code.co_filename and (not function or code.co_name == function)


@dataclass
class Capture:
    """Statements (text, parameters) of each page, in the order the page ran them."""

    statements: dict[str, list[tuple[str, tuple[Any, ...]]]] = field(default_factory=dict)


@asynccontextmanager
async def signed_in_app(database_url: str, username: str, password: str) -> Any:
    """The admin in this process over `database_url`, with an httpx client signed in as `username`."""
    settings = load_settings(
        database_url=database_url, environment="development", require_2fa_for="", log_level="WARNING"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await client.get("/admin/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            if found is None:
                raise SystemExit("in-process admin: the sign-in page has no CSRF token")
            answer = await client.post(
                "/admin/login",
                data={"username": username, "password": password, "csrf_token": found.group(1)},
            )
            if answer.status_code != 302:
                raise SystemExit("in-process admin: could not sign in")
            yield app, client
    finally:
        await app.state.database.dispose()


async def capture_statements(
    database_url: str, pages: Mapping[str, str], *, username: str, password: str
) -> Capture:
    """Every statement each page of `pages` runs, from one request after a warm-up request."""
    capture = Capture()
    async with signed_in_app(database_url, username, password) as (app, client):
        recording: list[tuple[str, tuple[Any, ...]]] | None = None

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            if recording is not None:
                recording.append((statement, tuple(parameters or ())))

        event.listen(app.state.database.engine.sync_engine, "before_cursor_execute", record)
        for name, path in pages.items():
            await _get(client, path)  # warm up: caches, the pool, a due last_seen_at touch
            recording = []
            await _get(client, path)
            capture.statements[name], recording = recording, None
    return capture


async def time_statements(url: str, statements: list[tuple[str, tuple[Any, ...]]], repeats: int) -> float:
    """Median ms of running `statements` in order on one raw asyncpg connection (prepared once)."""
    connection = await asyncpg.connect(url)
    try:
        for text, parameters in statements:  # warm up: prepare each and fill the caches
            await connection.fetch(text, *parameters)
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            for text, parameters in statements:
                await connection.fetch(text, *parameters)
            durations.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
    return statistics.median(durations)


class StackSampler:
    """Samples the stack of the thread that enters it, every `interval` seconds, from another thread."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.interval = interval
        self.samples: list[tuple[CodeType, ...]] = []
        self._stop = threading.Event()
        self._target = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StackSampler:
        self._target = threading.get_ident()
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(self.interval / 5)  # so the sampler gets the GIL when it wakes
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            frame: FrameType | None = sys._current_frames().get(self._target)
            stack = []
            while frame is not None:
                stack.append(frame.f_code)
                frame = frame.f_back
            self.samples.append(tuple(stack))


def _where(code: CodeType) -> str:
    return f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_name})"


def _short(filename: str) -> str:
    for marker in ("/site-packages/", REPO, "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def group_of(stack: tuple[CodeType, ...]) -> str:
    """The group a sample (innermost frame first) is counted in."""
    if any(_names(code, marker) for code in stack for marker in SESSION_LOOKUP):
        return "session lookup (its SQL included)"
    for code in stack:
        for group, markers in GROUPS:
            if any(_names(code, marker) for marker in markers):
                return group
    return OTHER


def _cumulative(samples: list[tuple[CodeType, ...]]) -> Iterator[tuple[str, int]]:
    """(function, samples it was on the stack in), the app's frames only, most first."""
    counts: Counter[CodeType] = Counter()
    for stack in samples:
        counts.update(set(stack))
    for code, count in counts.most_common():
        if not any(_names(code, marker) for marker in NOT_CUMULATIVE):
            yield _where(code), count


async def profile_page(
    database_url: str, path: str, *, requests: int, username: str, password: str, top: int = 25
) -> dict[str, Any]:
    """Where the time of `requests` sequential requests of `path` goes, in this process."""
    async with signed_in_app(database_url, username, password) as (_app, client):
        for _ in range(5):
            await _get(client, path)
        cpu_started = time.process_time()
        started = time.perf_counter()
        for _ in range(requests):  # unsampled: the wall and CPU time of a request
            await _get(client, path)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        with StackSampler() as sampler:
            for _ in range(requests):
                await _get(client, path)
    per_request_ms = elapsed * 1000 / requests
    total = max(1, len(sampler.samples))
    groups = Counter(group_of(stack) for stack in sampler.samples)
    return {
        "path": path,
        "requests": requests,
        "ms_per_request": per_request_ms,
        # The process's CPU (this one serves and requests): what the machine's other work skews less.
        "cpu_ms_per_request": cpu * 1000 / requests,
        "samples": total,
        "groups": {
            name: {"share": count / total, "ms": per_request_ms * count / total}
            for name, count in groups.most_common()
        },
        "cumulative": [
            {"function": name, "share": count / total, "ms": per_request_ms * count / total}
            for name, count in list(_cumulative(sampler.samples))[:top]
        ],
    }


async def _get(client: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"in-process admin: {path} answered {response.status_code}")
    return response
