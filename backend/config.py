"""Typed settings, read from the environment and an optional `.env` file.

This is the only module that reads the process environment. Everything else
takes a `Settings` instance as an argument, so tests can build one directly.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from backend.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = REPO_ROOT / "var" / "custodian.sqlite3"
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
# Development-only key: refused when ENVIRONMENT=production.
INSECURE_SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 - a known placeholder
MIN_PRODUCTION_SECRET_LENGTH = 32

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DatabasePooler(StrEnum):
    """What sits between the app and PostgreSQL; said, never guessed (a PgBouncer looks like a server)."""

    NONE = "none"
    PGBOUNCER = "pgbouncer"  # in transaction pooling mode


# Who REQUIRE_2FA_FOR may name.
TWO_FACTOR_GROUPS = ("superusers", "everyone")

# prometheus_client reads this variable itself, at import, in every worker.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MIN_METRICS_TOKEN_LENGTH = 16


PositiveSeconds = Annotated[float, Field(gt=0, le=600)]


class Settings(BaseSettings):
    """Process-wide configuration. Field names map to upper-case variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Environment = Environment.DEVELOPMENT
    # Shown on every admin page instead of the environment's name ("staging", "eu-production").
    environment_label: str | None = Field(default=None, min_length=1, max_length=40)
    database_url: str = DEFAULT_DATABASE_URL
    # `pgbouncer`: DATABASE_URL points at a PgBouncer in transaction pooling mode (backend/db/pooling.py).
    database_pooler: DatabasePooler = DatabasePooler.NONE
    # A connection straight to PostgreSQL, for what transaction pooling breaks: migrations (one
    # session-long transaction with DDL) and the job queue (LISTEN/NOTIFY, advisory locks).
    database_direct_url: str | None = None
    # PostgreSQL streaming replicas, comma-separated (backend/db/replicas.py): list pages, searches,
    # counts, exports and the dashboard read from one of them; writes, reads after a write, sign-in and
    # permission lookups use DATABASE_URL.
    database_replica_urls: str | None = None
    # A replica further behind the primary than this, or unreachable, is skipped until it catches up.
    replica_max_lag_seconds: PositiveSeconds = 5.0
    # How long a replica's health (reachable, lag) is trusted before it is checked again.
    replica_check_interval_seconds: PositiveSeconds = 5.0
    secret_key: str = INSECURE_SECRET_KEY
    allow_sqlite_in_production: bool = False

    # PostgreSQL connection pool (SQLAlchemy QueuePool).
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout: PositiveSeconds = 5.0
    db_pool_recycle: int = Field(default=1800, ge=-1)
    # Bounded waits so a dead database surfaces as a 503 within seconds.
    db_connect_timeout: PositiveSeconds = 5.0
    db_command_timeout: PositiveSeconds = 30.0
    # SQLite: how long a writer waits for a lock before giving up.
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)

    # Passwords: argon2id cost (OWASP's baseline by default) and policy.
    password_hash_memory_kib: int = Field(default=19456, ge=1024, le=1_048_576)
    password_hash_time_cost: int = Field(default=2, ge=1, le=20)
    password_min_length: int = Field(default=10, ge=8, le=128)

    # Admin sign-in sessions (server-side; the cookie carries only a random token).
    session_idle_timeout_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    session_absolute_timeout_hours: int = Field(default=12, ge=1, le=24 * 30)

    # Login throttling, counted in the database so it holds across processes.
    login_max_failures_per_user: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_address: int = Field(default=20, ge=1, le=10000)
    login_throttle_window_minutes: int = Field(default=15, ge=1, le=24 * 60)

    # Who must sign in with a second factor (TOTP), comma-separated: `superusers`, `everyone`, or empty
    # for nobody; a role's "requires two-factor" flag adds its holders (backend/services/two_factor.py).
    require_2fa_for: str = "superusers"
    # Passkeys (WebAuthn): the relying party id (the site's host name, e.g. `admin.example.com`) and
    # the origin browsers sign (`https://admin.example.com`); unset, both follow each request's host.
    webauthn_rp_id: str | None = Field(default=None, min_length=1, max_length=253)
    webauthn_origin: str | None = Field(default=None, min_length=1, max_length=300)

    # Imports: what one uploaded or given file may hold; larger files are refused before any row is read.
    import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024, le=2 * 1024**3)
    import_max_rows: int = Field(default=200_000, ge=1, le=10_000_000)
    import_max_cell_chars: int = Field(default=65_536, ge=64, le=10_000_000)
    # On PostgreSQL, an import or export of more rows than this runs as a job (`manage.py worker`).
    job_threshold_rows: int = Field(default=20_000, ge=0, le=10_000_000)
    # Where jobs keep their files (an import's upload, an export's result): never a web-served folder,
    # and the same folder for the web app and every worker.
    job_files_dir: Path = REPO_ROOT / "var" / "jobs"
    # A finished job's upload and result are deleted this many days after it ended (`manage.py jobs
    # cleanup`, and every worker hourly): they may hold personal data.
    job_files_keep_days: int = Field(default=7, ge=1, le=3650)
    # How often a worker says it is alive; one silent for three times this is taken for dead.
    job_heartbeat_seconds: float = Field(default=10.0, gt=0, le=600)

    # GET /metrics in Prometheus' text format; when on, only for `Authorization: Bearer METRICS_TOKEN`,
    # or, with no token set (refused in production), for clients on the loopback interface.
    metrics_enabled: bool = False
    metrics_token: str | None = Field(default=None, min_length=MIN_METRICS_TOKEN_LENGTH)
    # A statement that runs longer than this is counted and logged (SQL only, never its values).
    metrics_slow_statement_ms: int = Field(default=500, ge=1, le=600_000)
    # Where several workers pool their metrics (prometheus_client's multiprocess mode); `runserver
    # --workers N` makes a temporary one when this is not set.
    prometheus_multiproc_dir: Path | None = None

    log_level: str = "INFO"
    # Jinja checks every template's file time at each use when on (about 0.5 ms of a list page):
    # for editing templates. `runserver --reload` turns it on for its process.
    templates_auto_reload: bool = False
    # Adds an X-SQL-Statements header to every response (used by bench/).
    debug_sql_header: bool = False

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        url = self._parsed_url()
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"DATABASE_URL uses the driver '{url.drivername}'; use one of: {', '.join(SUPPORTED_DRIVERS)}"
            )
        self._check_pooler()
        self._check_replicas()
        unknown = sorted(self.two_factor_required_for - set(TWO_FACTOR_GROUPS))
        if unknown:
            raise ValueError(
                f"REQUIRE_2FA_FOR names {', '.join(unknown)}; use {' or '.join(TWO_FACTOR_GROUPS)} "
                "(comma-separated), or leave it empty for nobody"
            )
        if self.environment is Environment.PRODUCTION:
            if self.metrics_enabled and self.metrics_token is None:
                raise ValueError(
                    "METRICS_TOKEN must be set when METRICS_ENABLED=true in production "
                    "(behind a proxy every client looks local)"
                )
            if self.secret_key == INSECURE_SECRET_KEY or len(self.secret_key) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production"
                )
            if self.is_sqlite and not self.allow_sqlite_in_production:
                raise ValueError(
                    "DATABASE_URL points at SQLite in production; use PostgreSQL "
                    "or set ALLOW_SQLITE_IN_PRODUCTION=true"
                )
        return self

    def _check_pooler(self) -> None:
        if self.database_direct_url is not None:
            direct = _parse_url(self.database_direct_url, "DATABASE_DIRECT_URL")
            if direct.drivername != "postgresql+asyncpg" or self.is_sqlite:
                raise ValueError(
                    "DATABASE_DIRECT_URL is for PostgreSQL: use postgresql+asyncpg://, as DATABASE_URL does"
                )
        if self.database_pooler is DatabasePooler.PGBOUNCER:
            if self.is_sqlite:
                raise ValueError("DATABASE_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL")
            if self.database_direct_url is None:
                raise ValueError(
                    "DATABASE_POOLER=pgbouncer needs DATABASE_DIRECT_URL: migrations and the job queue "
                    "cannot run through transaction pooling"
                )

    def _check_replicas(self) -> None:
        urls = self.replica_urls
        if urls and self.is_sqlite:
            raise ValueError(
                "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL: SQLite has no read replicas"
            )
        for position, url in enumerate(urls, start=1):
            if url.drivername != "postgresql+asyncpg":
                raise ValueError(
                    f"DATABASE_REPLICA_URLS: replica {position} uses the driver '{url.drivername}'; "
                    "use postgresql+asyncpg://, as DATABASE_URL does"
                )

    @property
    def two_factor_required_for(self) -> frozenset[str]:
        """REQUIRE_2FA_FOR as a set of names: {"superusers"}, {"everyone"}, or empty for nobody."""
        return frozenset(item.strip().lower() for item in self.require_2fa_for.split(",") if item.strip())

    @property
    def replica_urls(self) -> tuple[URL, ...]:
        """DATABASE_REPLICA_URLS, parsed; empty when unset."""
        text = (self.database_replica_urls or "").strip()
        if not text:
            return ()
        items = [item.strip() for item in text.split(",")]
        if "" in items:
            raise ValueError("DATABASE_REPLICA_URLS has an empty entry; separate the URLs with single commas")
        return tuple(
            _parse_url(item, f"DATABASE_REPLICA_URLS: replica {position}")
            for position, item in enumerate(items, start=1)
        )

    def _parsed_url(self) -> URL:
        return _parse_url(self.database_url, "DATABASE_URL")

    @property
    def url(self) -> URL:
        return self._parsed_url()

    @property
    def direct_url(self) -> URL:
        """Where migrations and the job queue connect: DATABASE_DIRECT_URL, else DATABASE_URL."""
        if self.database_direct_url is None:
            return self.url
        return _parse_url(self.database_direct_url, "DATABASE_DIRECT_URL")

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def safe_database_url(self) -> str:
        """The database URL with its password hidden, for logs and reports."""
        return self.url.render_as_string(hide_password=True)


def _parse_url(value: str, variable: str) -> URL:
    try:
        return make_url(value)
    except ArgumentError as exc:
        raise ValueError(f"{variable} is not a valid database URL") from exc


def share_metrics_dir(path: Path) -> None:
    """Point prometheus_client at `path`, in this process and every worker it starts afterwards."""
    os.environ[METRICS_DIR_VARIABLE] = str(path)


def reload_templates_in_workers() -> None:
    """Turn `templates_auto_reload` on in the processes started afterwards (`runserver --reload`)."""
    os.environ["TEMPLATES_AUTO_RELOAD"] = "true"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, or raise `ConfigurationError`.

    The error message names the variable to fix, in one line.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated by pydantic
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{location.upper()}: {message}" if location else message)
    return "Invalid settings: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, loaded once."""
    return load_settings()
