from __future__ import annotations

import pytest

from admin.app import create_app
from backend.config import Settings
from backend.db.session import Database


@pytest.mark.sqlite
@pytest.mark.parametrize("reload", [False, True])
async def test_templates_are_checked_for_changes_only_when_asked(
    settings: Settings, database: Database, reload: bool
) -> None:
    """Off by default: Jinja would stat every template file of every page (about 0.5 ms of a list)."""
    app = create_app(settings.model_copy(update={"templates_auto_reload": reload}), database=database)
    environment = app.state.admin.templates.env
    assert environment.auto_reload is reload
    template = environment.get_template("sqladmin/layout.html")
    assert environment.get_template("sqladmin/layout.html") is template  # taken from Jinja's cache
