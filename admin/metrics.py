"""GET /metrics in Prometheus' text format: requests by route, the pool, statements, slow statements.

Off unless METRICS_ENABLED=true, and then only for `Authorization: Bearer
METRICS_TOKEN` or, with no token set (refused in production), for a client on
the loopback interface; anyone else gets a 403, and with metrics off the path
is a 404 like any unknown one.

Several workers (`runserver --workers N`) share their counts through
prometheus_client's multiprocess mode: each process writes its values to files
in PROMETHEUS_MULTIPROC_DIR and whichever worker answers the scrape adds them
up, so the numbers are the server's, not one worker's. The pool gauges count
only workers that still run: the files of a worker that died are dropped when
a scrape finds its process gone.

Statements per request reuse the statement counter of `admin.diagnostics`: it
reports through the X-SQL-Statements header, which is read here and removed
again unless DEBUG_SQL_HEADER asked for it.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.diagnostics import HEADER as STATEMENTS_HEADER
from backend.config import Settings

logger = logging.getLogger(__name__)

PATH = "/metrics"
UNMATCHED = "<unmatched>"
SLOW_STATEMENT_LOG_CHARS = 500
STATEMENT_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


@dataclass
class Metrics:
    """This process's instruments, and the exposition of every worker's values."""

    settings: Settings
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        registry = self.registry
        self.requests = Counter(
            "custodian_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "custodian_http_request_duration_seconds",
            "Time to answer an HTTP request, to its last byte.",
            ["method", "route"],
            registry=registry,
        )
        self.statements = Histogram(
            "custodian_http_request_statements",
            "SQL statements a request ran before its response began.",
            ["route"],
            buckets=STATEMENT_BUCKETS,
            registry=registry,
        )
        self.slow_statements = Counter(
            "custodian_db_slow_statements",
            "SQL statements slower than METRICS_SLOW_STATEMENT_MS.",
            registry=registry,
        )
        self.checked_out = Gauge(
            "custodian_db_pool_checked_out",
            "Database connections in use.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.overflow = Gauge(
            "custodian_db_pool_overflow",
            "Connections open beyond DB_POOL_SIZE (0 behind PgBouncer: the app keeps no pool).",
            registry=registry,
            multiprocess_mode="livesum",
        )

    def exposition(self) -> bytes:
        folder = self.settings.prometheus_multiproc_dir
        if folder is None:
            return generate_latest(self.registry)
        _forget_dead_workers(folder)
        merged = CollectorRegistry()
        # prometheus_client's multiprocess module has no annotations.
        MultiProcessCollector(merged, path=str(folder))  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def watch(self, engine: AsyncEngine, *, pool_gauges: bool = True) -> None:
        """Count the engine's slow statements and, for the primary's, its connections in use and overflow
        (a replica's pool would blur those two gauges; its statements count all the same)."""
        threshold = self.settings.metrics_slow_statement_ms / 1000
        pool = engine.sync_engine.pool

        def pool_changed() -> None:
            if isinstance(pool, QueuePool):
                self.overflow.set(max(0, pool.overflow()))

        if pool_gauges:

            @event.listens_for(engine.sync_engine, "checkout")
            def _checkout(*_args: Any) -> None:
                self.checked_out.inc()
                pool_changed()

            @event.listens_for(engine.sync_engine, "checkin")
            def _checkin(*_args: Any) -> None:
                self.checked_out.dec()
                pool_changed()

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _started(connection: Any, *_args: Any) -> None:
            # Statements on one connection run one after another: one start time per connection.
            connection.info["custodian_statement_started"] = time.perf_counter()

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _finished(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            started = connection.info.pop("custodian_statement_started", None)
            if started is None:
                return
            elapsed = time.perf_counter() - started
            if elapsed >= threshold:
                self.slow_statements.inc()
                # The SQL only: parameters are customers' data (the engines hide them for the same reason).
                logger.warning(
                    "Slow statement (%.0f ms): %s", elapsed * 1000, statement[:SLOW_STATEMENT_LOG_CHARS]
                )


def _forget_dead_workers(folder: Path) -> None:
    for path in glob.glob(os.path.join(folder, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]  # unannotated, as above
        except PermissionError:
            continue  # a process of another user runs under that id: not ours, leave it


@dataclass(frozen=True)
class MetricsWiring:
    """What the app mounts for metrics: nothing at all when they are off."""

    routes: list[BaseRoute]
    middleware: list[Middleware]


def metrics_wiring(
    settings: Settings, engine: AsyncEngine, replicas: Sequence[AsyncEngine] = ()
) -> MetricsWiring:
    if not settings.metrics_enabled:
        return MetricsWiring(routes=[], middleware=[])
    metrics = Metrics(settings)
    metrics.watch(engine)
    for replica in replicas:
        metrics.watch(replica, pool_gauges=False)

    async def endpoint(request: Request) -> Response:
        if not _may_scrape(request, settings):
            return PlainTextResponse(
                "Metrics are for the monitoring system only: send Authorization: Bearer METRICS_TOKEN.",
                status_code=403,
            )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return MetricsWiring(
        routes=[Route(PATH, endpoint, methods=["GET"])],
        middleware=[
            Middleware(RequestMetricsMiddleware, metrics=metrics, keep_header=settings.debug_sql_header)
        ],
    )


def _may_scrape(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is not None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), settings.metrics_token.encode()
        )
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by route template (bounded labels, never the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, keep_header: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.keep_header = keep_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == PATH:
            await self.app(scope, receive, send)
            return
        route = route_template(scope["app"].routes, dict(scope))
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception that escapes becomes Starlette's 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = self._statements_read(message.get("headers", []), route)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)

    def _statements_read(self, headers: list[tuple[bytes, bytes]], route: str) -> list[tuple[bytes, bytes]]:
        kept = []
        for name, value in headers:
            if name.lower() == STATEMENTS_HEADER:
                self.metrics.statements.labels(route).observe(int(value))
                if not self.keep_header:
                    continue
            kept.append((name, value))
        return kept


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template of the route `scope` goes to (`/admin/{identity}/list`), mounts included."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child}) if route.routes else UNMATCHED
            template = route.path + ("/{path}" if inner == UNMATCHED else inner)
        else:
            template = getattr(route, "path", UNMATCHED)
        if match is Match.FULL:
            return template
        partial = partial or template  # the path matched, the method did not (a 405)
    return partial or UNMATCHED
