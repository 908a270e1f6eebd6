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
"""

from __future__ import annotations

SQLADMIN_LOGGER = "sqladmin.application"


def action_route_prefix(identity: str) -> str:
    """The start of the route names SQLAdmin gives a model view's `@action` endpoints."""
    return f"action-{identity}-"
