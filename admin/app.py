"""The Starlette application: SQLAdmin at /admin, liveness and readiness probes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqladmin import ModelView
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from admin.diagnostics import StatementCountMiddleware, count_statements
from admin.errors import install_error_handlers
from admin.input_guard import NulGuardMiddleware
from admin.metrics import metrics_wiring
from admin.requests import RequestUnitOfWork
from admin.security import ResponseHeadersMiddleware
from admin.site import FAVICON_URL, CustodianAdmin
from admin.views import discover
from backend.auth.permissions import admin_models
from backend.config import Settings, get_settings
from backend.db.session import Database
from backend.services.health import database_checks


class ImproperlyConfigured(RuntimeError):
    pass


def create_app(settings: Settings, *, database: Database | None = None) -> Starlette:
    """Build the web app for `settings`: one engine, disposed by the lifespan."""
    _configure_logging(settings)
    database = database or Database(settings)
    replica_engines = [replica.engine for replica in database.replicas.all]
    metrics = metrics_wiring(settings, database.engine, replica_engines)
    # The metrics read the statement count that the debug header reports.
    count_sql = settings.debug_sql_header or settings.metrics_enabled

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await database.dispose()

    app = Starlette(
        routes=[
            Route("/", _root, methods=["GET"]),
            Route("/health", _health, methods=["GET"]),
            Route("/ready", _ready, methods=["GET"]),
            # Browsers ask for it at the root of every site they visit.
            Route("/favicon.ico", _favicon, methods=["GET"]),
            *metrics.routes,
        ],
        middleware=[
            *metrics.middleware,
            Middleware(ResponseHeadersMiddleware, hsts=settings.is_production),
            Middleware(NulGuardMiddleware),
            Middleware(RequestUnitOfWork, database=database),
            *([Middleware(StatementCountMiddleware)] if count_sql else []),
        ],
        lifespan=lifespan,
    )
    if count_sql:
        for engine in (database.engine, *replica_engines):  # a page read on a replica counts its statements
            count_statements(engine)
    app.state.settings = settings
    app.state.database = database
    install_error_handlers(app)

    admin = CustodianAdmin(app, settings=settings, database=database)
    for view in discover():
        admin.add_view(view)
    _check_every_model_has_a_view(admin)
    app.state.admin = admin
    return app


def _check_every_model_has_a_view(admin: CustodianAdmin) -> None:
    shown = {view.model for view in admin.views if isinstance(view, ModelView)}
    missing = [model.__name__ for model in admin_models() if model not in shown]
    if missing:
        raise ImproperlyConfigured(
            f"No admin view for {', '.join(missing)}: declare one in a module of admin/views/, "
            "or give the model `policy = Policy(admin=False)`."
        )


def create_app_from_environment() -> Starlette:
    """The factory uvicorn calls (`manage.py runserver`)."""
    return create_app(get_settings())


async def _root(_request: Request) -> Response:
    return RedirectResponse("/admin/", status_code=302)


async def _favicon(_request: Request) -> Response:
    return RedirectResponse(FAVICON_URL, status_code=301)


async def _health(_request: Request) -> Response:
    """Liveness: the process answers. Never touches the database."""
    return JSONResponse({"status": "ok"})


async def _ready(request: Request) -> Response:
    """Readiness: the database answers and its schema is at the migration head.

    Each read replica is listed with its lag; one that is down or lagging does
    not make the app unready, since the primary serves its reads meanwhile.
    """
    database: Database = request.app.state.database
    checks = await database_checks(database.settings, database.engine)
    ready = all(check.ok for check in checks)
    body: dict[str, object] = {
        "status": "ready" if ready else "unavailable",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    if database.replicas:
        body["replicas"] = {status.name: status.as_dict() for status in await database.replicas.check()}
    if not ready:
        body["reason"] = next(check.detail for check in checks if not check.ok)
    return JSONResponse(body, status_code=200 if ready else 503)


def _configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
