"""What this admin assumes of SQLAdmin beyond its documented API, in one place.

No private SQLAdmin name is used. These are the public but undocumented
shapes the admin relies on; tests/admin/test_sqladmin_adapter.py checks each
one, so an SQLAdmin release that changes them fails there, loudly.

- `@action` routes are named `action-<identity>-<slug>` and registered for
  GET; `CustodianAdmin.add_model_view` finds them by that name to make them
  POST-only (a state change is never a GET).
- Failed creates and edits are logged on the `sqladmin.application` logger,
  which `admin.refusals.HideRefusals` filters.
- The admin's `session_maker` is called as `session_maker(**options)` and used
  as an async context manager, and is told async by its `class_`
  (`admin.requests.RequestSessions`).
- The create and edit templates show a variable `error` above the form,
  which admin/templates/sqladmin/{create,edit}.html set from the refusal.
- SQLAdmin's own base page (`sqladmin_original/base.html`, its documented
  prefix for extending its templates) opens with `<html lang="en">`;
  `speak_the_page_language` makes that the reader's language at load time
  (`LanguageOfPage`), so no copy of the template drifts from SQLAdmin's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, Environment, TemplateNotFound

SQLADMIN_LOGGER = "sqladmin.application"
SQLADMIN_BASE_PAGE = "sqladmin_original/base.html"
ENGLISH_ROOT = '<html lang="en">'
READERS_ROOT = '<html lang="{{ active_locale() }}">'


class LanguageOfPage(BaseLoader):
    """`loader`, but SQLAdmin's base page names the language the page is written in."""

    def __init__(self, loader: BaseLoader) -> None:
        self.loader = loader

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.loader.get_source(environment, template)
        if template == SQLADMIN_BASE_PAGE:
            if ENGLISH_ROOT not in source:
                raise TemplateNotFound(
                    f"{template} no longer opens with {ENGLISH_ROOT} (admin/sqladmin_adapter.py)"
                )
            source = source.replace(ENGLISH_ROOT, READERS_ROOT, 1)
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.loader.list_templates()


def speak_the_page_language(environment: Any) -> None:
    """Wrap the admin's template loader in `LanguageOfPage` (needs `active_locale` among the globals)."""
    environment.loader = LanguageOfPage(environment.loader)


def action_route_prefix(identity: str) -> str:
    """The start of the route names SQLAdmin gives a model view's `@action` endpoints."""
    return f"action-{identity}-"
