from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.config import DEFAULT_DATABASE_URL, INSECURE_SECRET_KEY, Environment, load_settings
from backend.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 48


def test_defaults_use_embedded_sqlite_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SECRET_KEY", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(REPO / "tests")  # no .env here
    settings = load_settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert "/var/" in settings.database_url


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:s3cret@db.internal/app")
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    settings = load_settings()
    assert settings.db_pool_size == 7
    assert not settings.is_sqlite
    assert "s3cret" not in settings.safe_database_url


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        load_settings(
            environment="production",
            secret_key=INSECURE_SECRET_KEY,
            database_url="postgresql+asyncpg://db/app",
        )


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        load_settings(
            environment="production", secret_key="short", database_url="postgresql+asyncpg://db/app"
        )


def test_production_refuses_sqlite_unless_explicitly_allowed() -> None:
    with pytest.raises(ConfigurationError, match="ALLOW_SQLITE_IN_PRODUCTION"):
        load_settings(environment="production", secret_key=STRONG_KEY)
    allowed = load_settings(environment="production", secret_key=STRONG_KEY, allow_sqlite_in_production=True)
    assert allowed.is_production


def test_unsupported_driver_is_named() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(database_url="mysql+pymysql://db/app")


def test_invalid_values_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="DB_POOL_SIZE"):
        load_settings(db_pool_size=0)
    with pytest.raises(ConfigurationError, match="ENVIRONMENT"):
        load_settings(environment="staging")


def test_only_the_config_module_reads_the_environment() -> None:
    pattern = re.compile(r"os\.environ|os\.getenv|getenv\(")
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("backend", "admin", "migrations")
        for path in (REPO / folder).rglob("*.py")
        if path.name != "config.py" and pattern.search(path.read_text())
    ]
    assert (REPO / "manage.py").read_text().count("os.environ") == 0
    assert offenders == []
