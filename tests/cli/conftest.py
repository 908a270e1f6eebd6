from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

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


async def planner_row_estimate(url: str, table: str) -> float | None:
    """The row count the query planner has for `table`; None when it was never analyzed.

    PostgreSQL: `pg_class.reltuples` (-1 until ANALYZE or VACUUM; COPY and
    INSERT leave it alone). SQLite: the largest row count in `sqlite_stat1`.
    """
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                reltuples = await connection.scalar(
                    text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"),
                    {"table": f'"{table}"'},
                )
                return None if reltuples is None or reltuples < 0 else float(reltuples)
            has_stats = await connection.scalar(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            )
            if not has_stats:
                return None
            stats = (
                await connection.execute(
                    text("SELECT stat FROM sqlite_stat1 WHERE tbl = :table"), {"table": table}
                )
            ).scalars()
            counts = [float(stat.split()[0]) for stat in stats]
            return max(counts) if counts else None
    finally:
        await engine.dispose()
