"""What every process pays at start-up: libraries only some requests need are loaded when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_app_and_the_cli_start_without_webauthn() -> None:
    """webauthn and its dependencies (about 15 MB) load with the first passkey ceremony."""
    script = "import sys, admin.app, backend.cli; print('webauthn' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "False"
