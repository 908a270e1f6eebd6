"""What the admin assumes of SQLAdmin beyond its documented API (admin/sqladmin_adapter.py).

Each test fails loudly when an SQLAdmin release changes one of these shapes.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import sqladmin
from sqladmin import application
from sqladmin.helpers import is_async_session_maker
from starlette.applications import Starlette
from starlette.routing import Route

from admin.requests import RequestSessions
from admin.site import CustodianAdmin
from admin.sqladmin_adapter import ENGLISH_ROOT, SQLADMIN_BASE_PAGE, SQLADMIN_LOGGER, action_route_prefix
from backend.config import Settings
from backend.db.session import Database


def test_the_tested_release_range() -> None:
    major, minor = (int(part) for part in version("sqladmin").split(".")[:2])
    assert (major, minor) == (0, 32)


def test_action_routes_are_named_by_view_and_slug_and_taken_as_post_only(
    settings: Settings, database: Database
) -> None:
    app = Starlette()
    admin = CustodianAdmin(app, settings=settings, database=database)
    from admin.views.store import ProductAdmin

    admin.add_view(ProductAdmin)
    prefix = action_route_prefix("product")
    actions = [r for r in admin.admin.router.routes if isinstance(r, Route) and r.name.startswith(prefix)]
    assert {route.name.removeprefix(prefix) for route in actions} >= {"mark-active", "mark-draft"}
    assert all(route.methods == {"POST"} for route in actions)


def test_failed_writes_are_logged_on_the_filtered_logger() -> None:
    assert application.logger.name == SQLADMIN_LOGGER
    assert "logger.exception(e)" in inspect.getsource(application.Admin.edit)


def test_the_request_session_maker_passes_for_an_async_one(database: Database) -> None:
    assert is_async_session_maker(RequestSessions(database))  # type: ignore[arg-type]  # a stand-in


def test_create_and_edit_templates_show_error_above_the_form() -> None:
    templates = Path(sqladmin.__file__).parent / "templates" / "sqladmin"
    for name in ("create.html", "edit.html"):
        text = (templates / name).read_text()
        assert "{% if error %}" in text and "{{ error }}" in text, name


def test_edit_asks_for_its_context_before_it_validates_the_form() -> None:
    source = inspect.getsource(application.Admin.edit)
    assert source.index("edit_context(request)") < source.index("form.validate()")
    assert source.index("get_object_for_edit(request)") < source.index("update_model(")


def test_sqladmin_base_page_opens_with_an_english_root_that_the_loader_makes_the_readers(
    settings: Settings, database: Database
) -> None:
    admin = CustodianAdmin(Starlette(), settings=settings, database=database)
    environment = admin.templates.env
    assert environment.loader is not None
    shipped = Path(sqladmin.__file__).parent / "templates" / "sqladmin" / "base.html"
    assert ENGLISH_ROOT in shipped.read_text()
    source, _filename, _uptodate = environment.loader.get_source(environment, SQLADMIN_BASE_PAGE)
    assert ENGLISH_ROOT not in source and '<html lang="{{ active_locale() }}">' in source
