"""Health checks shared by `manage.py check` and the web app's `/ready`."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.db import migrations
from backend.db.errors import is_database_unavailable, unavailable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class HealthReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def reason(self) -> str:
        """The first failing check's detail, or 'ok'."""
        for check in self.checks:
            if not check.ok:
                return check.detail
        return "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "reason": self.reason,
            "checks": [asdict(check) for check in self.checks],
        }


def settings_check(settings: Settings) -> Check:
    detail = f"environment={settings.environment.value}, database={settings.safe_database_url}"
    return Check("settings", True, detail)


def missing_database_file(settings: Settings) -> Check | None:
    """A failing check when the settings name a SQLite file that does not exist, else None.

    Connecting would create the file, empty, and report it reachable: callers
    run this before they build an engine, so a check changes nothing.
    """
    path = sqlite_file(settings)
    if path is None or path.exists():
        return None
    return Check(
        "database",
        False,
        f"The database file {path.absolute()} does not exist; check DATABASE_URL, "
        "or run 'python manage.py migrate' to create it",
    )


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file the settings name; None for PostgreSQL and in-memory databases."""
    database = settings.url.database if settings.is_sqlite else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


async def database_checks(settings: Settings, engine: AsyncEngine) -> list[Check]:
    """Whether the database answers in time, and whether its schema is at the head.

    Bounded by the connect timeout, so a dead server yields an unhealthy
    report within seconds instead of a hang.
    """
    missing = missing_database_file(settings)
    if missing is not None:
        return [missing]
    try:
        async with asyncio.timeout(settings.db_connect_timeout + 1):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                current = await connection.run_sync(migrations.database_revisions)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return [Check("database", False, unavailable(settings, exc).message)]

    checks = [Check("database", True, f"reachable at {settings.safe_database_url}")]
    expected = migrations.expected_heads()
    if set(current) == set(expected):
        checks.append(Check("migrations", True, f"at head ({', '.join(expected)})"))
    else:
        at = ", ".join(current) or "an empty schema"
        checks.append(
            Check(
                "migrations",
                False,
                f"migrations pending: database is at {at}, code expects {', '.join(expected)}; "
                "run 'python manage.py migrate'",
            )
        )
    return checks
