"""Alembic, driven from code: migrate, roll back, autogenerate, report status.

Every command runs on one connection from a migration engine and inside one
transaction (see migrations/env.py), so a revision that fails halfway leaves
the schema as it was, on PostgreSQL and on SQLite alike. That engine connects
to `DATABASE_DIRECT_URL` when it is set: behind PgBouncer in transaction
pooling mode, a migration gets a server session of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import REPO_ROOT, Settings
from backend.db.errors import is_database_unavailable, unavailable
from backend.db.session import create_engine
from backend.errors import MigrationError

MIGRATIONS_DIR = REPO_ROOT / "migrations"
T = TypeVar("T")


@dataclass(frozen=True)
class Revision:
    id: str
    message: str
    applied: bool


@dataclass(frozen=True)
class MigrationStatus:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    revisions: tuple[Revision, ...]

    @property
    def pending(self) -> tuple[Revision, ...]:
        return tuple(r for r in self.revisions if not r.applied)

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)


def alembic_config(settings: Settings, *, script_location: Path | None = None) -> Config:
    """An Alembic `Config` for this project and database; no alembic.ini needed."""
    config = alembic_config_without_settings(script_location)
    config.attributes["settings"] = settings
    return config


def alembic_config_without_settings(script_location: Path | None = None) -> Config:
    """Enough configuration to read the revision files, without a database."""
    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "40")
    return config


def script_directory(config: Config) -> ScriptDirectory:
    return ScriptDirectory.from_config(config)


async def run_with_connection(config: Config, operation: Callable[[Config], T]) -> T:
    """Run a synchronous Alembic `operation` with a live connection in `config`.

    Database outages become `DatabaseUnavailable`; Alembic's own errors
    (unknown revision, bad message) become `MigrationError`.
    """
    settings: Settings = config.attributes["settings"]
    engine = create_engine(settings, for_migrations=True)

    def call(connection: Connection) -> T:
        config.attributes["connection"] = connection
        try:
            return operation(config)
        finally:
            config.attributes.pop("connection", None)

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(call)
    except CommandError as exc:
        raise migration_error(exc) from exc
    except Exception as exc:
        if is_database_unavailable(exc):
            raise unavailable(settings, exc) from exc
        raise
    finally:
        await engine.dispose()


SHOWMIGRATIONS = "python manage.py showmigrations"
MIGRATE = "python manage.py migrate"
_RELATIVE_REVISION = re.compile(r"[+-]\d+$")  # -1, 0003+1: relative to where the database is


def migration_error(error: CommandError) -> MigrationError:
    """Alembic's error as one line; a revision that names nothing points to `showmigrations`."""
    cause = error.__cause__
    if isinstance(cause, ResolutionError):
        return MigrationError(
            f"Unknown revision '{cause.argument}'; run '{SHOWMIGRATIONS}' to list the revisions."
        )
    if isinstance(cause, RevisionError):
        message = str(error).strip().splitlines()[0].rstrip(".")
        return MigrationError(f"{message}; run '{SHOWMIGRATIONS}' to see where the database is.")
    return MigrationError(str(error))


def check_revision(config: Config, revision: str) -> None:
    """Fail early, before any prompt, for a REVISION that names no revision file.

    Relative targets (`-1`, `0003+1`) depend on the database's position and
    are checked when applied.
    """
    if _RELATIVE_REVISION.search(revision):
        return
    try:
        script_directory(config).get_revisions(revision)
    except CommandError as exc:
        raise migration_error(exc) from exc


async def upgrade(config: Config, revision: str = "head") -> None:
    await run_with_connection(config, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(config: Config, revision: str) -> None:
    await run_with_connection(config, lambda cfg: command.downgrade(cfg, revision))


async def make_migration(config: Config, message: str) -> Path:
    """Autogenerate a revision from the difference between models and database."""
    if not message.strip():
        raise MigrationError("A migration needs a message (-m).")
    rev_id = _next_revision_id(script_directory(config))

    def generate(cfg: Config) -> Path:
        script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        if script is None or isinstance(script, list):
            raise MigrationError("Alembic did not produce exactly one revision.")
        path = Path(script.path)
        path.write_text(_without_boilerplate(path.read_text(encoding="utf-8")), encoding="utf-8")
        return path

    return await run_with_connection(config, generate)


async def status(config: Config) -> MigrationStatus:
    """Which revisions exist, and which of them the database has applied."""

    def read(cfg: Config) -> MigrationStatus:
        connection: Connection = cfg.attributes["connection"]
        current = MigrationContext.configure(connection).get_current_heads()
        return _status_from(script_directory(cfg), current)

    return await run_with_connection(config, read)


def _status_from(script: ScriptDirectory, current: tuple[str, ...]) -> MigrationStatus:
    applied = {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()
    ordered = list(reversed(list(script.walk_revisions("base", "heads"))))
    revisions = tuple(
        Revision(id=rev.revision, message=rev.doc or "", applied=rev.revision in applied) for rev in ordered
    )
    return MigrationStatus(current=tuple(current), heads=tuple(script.get_heads()), revisions=revisions)


def _without_boilerplate(source: str) -> str:
    for marker in (
        "    # ### commands auto generated by Alembic - please adjust! ###\n",
        "    # ### end Alembic commands ###\n",
    ):
        source = source.replace(marker, "")
    return source


def _next_revision_id(script: ScriptDirectory) -> str:
    """Sequential ids (0001, 0002, ...) keep the versions folder in reading order."""
    numbers = [int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What autogenerate compares: everything but the PostgreSQL-only trigram indexes and job queue.

    Those are managed by hand in their revisions (the queue's tables are
    procrastinate's, 0007); autogenerate must neither drop nor re-create them.
    """
    if type_ == "table" and reflected and compare_to is None and (name or "").startswith("procrastinate_"):
        return False
    return not (type_ == "index" and reflected and compare_to is None and (name or "").endswith("_trgm"))


def head_revisions(config: Config) -> tuple[str, ...]:
    """The revisions the code expects the database to be at (read from files only)."""
    return tuple(script_directory(config).get_heads())


def database_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions the database says it is at (run with `AsyncConnection.run_sync`)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


@lru_cache(maxsize=1)
def expected_heads() -> tuple[str, ...]:
    """This code's head revisions; cached, as the revision files do not change while the process runs."""
    return head_revisions(alembic_config_without_settings())


async def not_migrated(settings: Settings, engine: AsyncEngine) -> MigrationError | None:
    """An error saying to run `migrate` first when the schema is not at this code's head, else None.

    Asks Alembic's version table rather than reading a driver's error text, so
    it means the same on SQLite and PostgreSQL. None too when the database
    cannot be asked: the caller's own error then stands.
    """
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(database_revisions)
    except (SQLAlchemyError, OSError):
        return None
    expected = expected_heads()
    if set(current) == set(expected):
        return None
    if not current:
        return MigrationError(
            f"The database at {settings.safe_database_url} is not migrated: run '{MIGRATE}' first."
        )
    return MigrationError(
        f"The database at {settings.safe_database_url} is not fully migrated "
        f"(it is at {', '.join(current)}, the code expects {', '.join(expected)}): run '{MIGRATE}' first."
    )
