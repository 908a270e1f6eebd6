#!/usr/bin/env python
"""Custodian's command line: `python manage.py --help` lists every command."""

from __future__ import annotations

import sys

import click

from backend.cli import cli, main
from backend.cli.context import current_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
def runserver(host: str, port: int, reload: bool) -> None:
    """Serve the admin with uvicorn at http://HOST:PORT/admin."""
    import uvicorn  # the web stack loads only for this command

    settings = current_settings()  # fail here, in one line, on bad settings
    click.echo(f"Custodian ({settings.environment.value}) on http://{host}:{port}/admin")
    uvicorn.run(
        "admin.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
    )


cli.add_command(runserver)

if __name__ == "__main__":
    sys.exit(main())
