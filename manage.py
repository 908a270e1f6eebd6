#!/usr/bin/env python
"""Custodian's command line: `python manage.py --help` lists every command."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from backend.cli import cli, main
from backend.cli.context import current_settings
from backend.config import Settings, reload_templates_in_workers, share_metrics_dir


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port (production: about one per core).",
)
def runserver(host: str, port: int, reload: bool, workers: int) -> None:
    """Serve the admin with uvicorn at http://HOST:PORT/admin."""
    import uvicorn  # the web stack loads only for this command

    if reload and workers > 1:
        raise click.UsageError("--reload restarts a single process: use it without --workers.")
    settings = current_settings()  # fail here, in one line, on bad settings
    plural = "s" if workers > 1 else ""
    # The loopback address by its name: passkeys (WebAuthn) work at a domain name, never at an IP.
    shown_host = "localhost" if host == "127.0.0.1" else host
    click.echo(
        f"Custodian ({settings.environment.value}) on http://{shown_host}:{port}/admin, "
        f"{workers} worker{plural}"
    )
    if reload:  # a template edited while it runs shows at the next request
        reload_templates_in_workers()
    with _shared_metrics(settings, workers=workers):
        uvicorn.run(
            "admin.app:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            workers=workers,
            log_level=settings.log_level.lower(),
            proxy_headers=False,
        )


@contextlib.contextmanager
def _shared_metrics(settings: Settings, *, workers: int) -> Iterator[None]:
    """Give the workers one folder to pool their metrics in, emptied of an earlier run's values.

    Set before uvicorn starts a worker, and so before any of them imports
    prometheus_client, which reads PROMETHEUS_MULTIPROC_DIR once, at import.
    """
    if not settings.metrics_enabled:
        yield
        return
    folder = settings.prometheus_multiproc_dir
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        share_metrics_dir(folder)
        yield
        return
    if workers == 1:
        yield  # one process: its own registry holds every value
        return
    with tempfile.TemporaryDirectory(prefix="custodian-metrics-") as made:
        share_metrics_dir(Path(made))
        yield


cli.add_command(runserver)

if __name__ == "__main__":
    sys.exit(main())
