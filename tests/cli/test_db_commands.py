from __future__ import annotations

import json
import os
import time

from tests.cli.conftest import Runner, run_manage_py
from tests.databases import TEST_SECRET_KEY, UNREACHABLE_POSTGRES_URL


def test_help_lists_every_command_with_a_description(cli: Runner) -> None:
    result = cli("--help")
    assert result.code == 0
    for name in ("migrate", "makemigrations", "downgrade", "showmigrations", "check", "shell"):
        line = next(line for line in result.out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10


def test_migrate_showmigrations_and_check_on_a_fresh_database(cli: Runner, fresh_url: str) -> None:
    pending = cli("showmigrations", url=fresh_url)
    assert pending.code == 0
    assert "[ ] 0001" in pending.out and "pending" in pending.out

    unhealthy = cli("check", url=fresh_url)
    assert unhealthy.code == 1
    assert "migrations pending" in unhealthy.out

    migrated = cli("migrate", url=fresh_url)
    assert migrated.code == 0, migrated.err
    assert "Applied 0001" in migrated.out

    again = cli("migrate", url=fresh_url)
    assert again.code == 0 and "No migrations to apply." in again.out

    assert "[X] 0001" in cli("showmigrations", url=fresh_url).out
    healthy = cli("check", "--json", url=fresh_url)
    assert healthy.code == 0
    report = json.loads(healthy.out)
    assert report["healthy"] is True
    assert {c["name"] for c in report["checks"]} == {"settings", "database", "migrations"}


def test_downgrade_needs_confirmation_and_rolls_back(cli: Runner, fresh_url: str) -> None:
    assert cli("migrate", url=fresh_url).code == 0
    env = {**os.environ, "DATABASE_URL": fresh_url, "SECRET_KEY": TEST_SECRET_KEY, "ENVIRONMENT": "test"}
    refused = run_manage_py("downgrade", "base", env=env)  # no terminal to confirm on
    assert refused.code == 1 and refused.err.strip().endswith("Cancelled.")
    assert "[X] 0001" in cli("showmigrations", url=fresh_url).out

    done = cli("downgrade", "base", "--yes", url=fresh_url)
    assert done.code == 0, done.err
    assert "[ ] 0001" in cli("showmigrations", url=fresh_url).out


def test_unknown_revision_is_one_line_and_exit_1(cli: Runner, fresh_url: str) -> None:
    result = cli("migrate", "nope", url=fresh_url)
    assert result.code == 1
    assert result.err.strip().splitlines() == ["Error: Can't locate revision identified by 'nope'"]
    assert result.no_traceback


def test_bad_argument_exits_2_with_one_line(cli: Runner) -> None:
    result = cli("migrate", "--bogus")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("Error: No such option '--bogus'")
    assert cli("no-such-command").code == 2


def test_unreachable_database_is_reported_quickly(cli: Runner) -> None:
    started = time.monotonic()
    check = cli("check", url=UNREACHABLE_POSTGRES_URL)
    assert check.code == 1
    assert "Cannot reach the database" in check.out
    report = json.loads(cli("check", "--json", url=UNREACHABLE_POSTGRES_URL).out)
    assert report["healthy"] is False and "Cannot reach the database" in report["reason"]

    migrate = cli("migrate", url=UNREACHABLE_POSTGRES_URL)
    assert migrate.code == 1
    assert migrate.err.startswith(
        "Error: Cannot reach the database at postgresql+asyncpg://postgres@127.0.0.1:1/"
    )
    assert migrate.no_traceback
    assert time.monotonic() - started < 10


def test_bad_settings_are_one_line(cli: Runner) -> None:
    result = cli("migrate", env={"ENVIRONMENT": "production", "SECRET_KEY": "short"})
    assert result.code == 1
    expected = "SECRET_KEY must be set to a random value of at least 32 characters in production"
    assert result.err.strip().splitlines() == [f"Error: Invalid settings: {expected}"]
    check = cli("check", "--json", env={"ENVIRONMENT": "production", "SECRET_KEY": "short"})
    assert check.code == 1 and "SECRET_KEY" in json.loads(check.out)["reason"]


def test_traceback_flag_shows_the_traceback(fresh_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": fresh_url, "SECRET_KEY": TEST_SECRET_KEY, "ENVIRONMENT": "test"}
    plain = run_manage_py("migrate", "nope", env=env)
    assert plain.code == 1 and plain.no_traceback
    detailed = run_manage_py("--traceback", "migrate", "nope", env=env)
    assert detailed.code != 0 and "Traceback" in detailed.err


def test_shell_runs_code_with_models_loaded(cli: Runner, fresh_url: str) -> None:
    result = cli(
        "shell",
        "-c",
        "print(User.__tablename__, settings.environment.value, sessions is db.sessions)",
        url=fresh_url,
    )
    assert result.code == 0, result.err
    assert result.out.strip() == "user test True"
