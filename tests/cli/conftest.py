from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.cli import main
from tests.databases import TEST_SECRET_KEY

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def no_traceback(self) -> bool:
        return "Traceback" not in self.out + self.err


Runner = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run `manage.py ARGS` in this process against DATABASE_URL=url."""

    def run(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> Result:
        monkeypatch.setenv("ENVIRONMENT", "test")
        monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
        monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
        if url is not None:
            monkeypatch.setenv("DATABASE_URL", url)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_manage_py(*args: str, env: dict[str, str], timeout: float = 60) -> Result:
    """Run `python manage.py ARGS` as a real process."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
