"""What every process pays at start-up: libraries only some requests need are loaded when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _loaded_at_start(library: str, *modules: str) -> bool:
    """Whether importing `modules` in a fresh interpreter loads `library`."""
    script = f"import sys, {', '.join(modules)}; print({library!r} in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    return found.stdout.strip() == "True"


def test_the_app_and_the_cli_start_without_webauthn() -> None:
    """webauthn and its dependencies (about 15 MB) load with the first passkey ceremony."""
    assert not _loaded_at_start("webauthn", "admin.app", "backend.cli")


def test_the_app_starts_without_the_job_queue() -> None:
    """procrastinate and psycopg (about 12 MB) load when a job is queued or checked on."""
    assert not _loaded_at_start("procrastinate", "admin.app")
