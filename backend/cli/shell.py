"""`manage.py shell`: a Python prompt with the settings, database and models loaded."""

from __future__ import annotations

import asyncio
import code
from typing import Any

import click

import backend.models as models_module
from backend.cli.context import current_settings
from backend.db.session import Database
from backend.db.uow import unit_of_work

BANNER = """Custodian shell. Loaded: settings, db (Database), sessions, unit_of_work, models, {models}.
Async code runs with run(coro), e.g. run(db.engine.dispose())."""


@click.command()
@click.option("-c", "--command", "command_text", help="Run this Python code instead of a prompt.")
def shell(command_text: str | None) -> None:
    """Open a Python shell with settings, sessions and models loaded."""
    settings = current_settings()
    loop = asyncio.new_event_loop()
    database = Database(settings)
    namespace: dict[str, Any] = {
        "settings": settings,
        "db": database,
        "sessions": database.sessions,
        "unit_of_work": unit_of_work,
        "models": models_module,
        "run": loop.run_until_complete,
        **{name: getattr(models_module, name) for name in models_module.__all__},
    }
    try:
        if command_text is not None:
            exec(compile(command_text, "<shell -c>", "exec"), namespace)  # noqa: S102 - the developer's own code
        else:
            code.interact(banner=BANNER.format(models=", ".join(models_module.__all__)), local=namespace)
    finally:
        loop.run_until_complete(database.dispose())
        loop.close()
