"""Health checks shared by `manage.py check` and the web app's `/ready`."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from functools import lru_cache

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


@lru_cache(maxsize=1)
def _expected_heads() -> tuple[str, ...]:
    # The revision files do not change while the process runs.
    return migrations.head_revisions(migrations.alembic_config_without_settings())


async def database_checks(settings: Settings, engine: AsyncEngine) -> list[Check]:
    """Whether the database answers in time, and whether its schema is at the head.

    Bounded by the connect timeout, so a dead server yields an unhealthy
    report within seconds instead of a hang.
    """
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
    expected = _expected_heads()
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
