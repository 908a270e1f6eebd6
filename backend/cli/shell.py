"""`manage.py shell`: a Python prompt with the settings, database and models loaded."""

from __future__ import annotations

import asyncio
import code
import linecache
import traceback
from typing import Any

import click

import backend.models as models_module
from backend.cli.context import current_settings
from backend.db.session import Database
from backend.db.uow import unit_of_work

SHELL_FILENAME = "<shell -c>"
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
            _run_code(command_text, namespace)
        else:
            code.interact(banner=BANNER.format(models=", ".join(models_module.__all__)), local=namespace)
    finally:
        loop.run_until_complete(database.dispose())
        loop.close()


def _run_code(source: str, namespace: dict[str, Any]) -> None:
    """Run the developer's `-c` code; when it fails, show its traceback, as `python -c` does, and exit 1.

    The error is in their code, not in Custodian, so the CLI's one-line
    "unexpected error" would hide what they need to see.
    """
    try:
        compiled = compile(source, SHELL_FILENAME, "exec")
    except SyntaxError as exc:
        click.echo("".join(traceback.format_exception_only(exc)).rstrip(), err=True)
        raise click.exceptions.Exit(1) from exc
    # Lets the traceback quote the failing lines, as it does for a file.
    linecache.cache[SHELL_FILENAME] = (len(source), None, source.splitlines(keepends=True), SHELL_FILENAME)
    try:
        exec(compiled, namespace)  # noqa: S102 - the developer's own code
    except Exception as exc:
        # Start the traceback at their code: this frame is ours.
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None
        click.echo("".join(traceback.format_exception(type(exc), exc, frames)).rstrip(), err=True)
        raise click.exceptions.Exit(1) from exc
