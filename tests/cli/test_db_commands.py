from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sqlalchemy.engine import make_url

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


def test_downgrade_takes_steps_back_as_the_help_writes_them(cli: Runner, fresh_url: str) -> None:
    assert cli("migrate", url=fresh_url).code == 0
    head, previous = _applied(cli, fresh_url)[-1], _applied(cli, fresh_url)[-2]
    env = {**os.environ, "DATABASE_URL": fresh_url, "SECRET_KEY": TEST_SECRET_KEY, "ENVIRONMENT": "test"}
    refused = run_manage_py("downgrade", "-1", env=env)  # still asks first
    assert refused.code == 1 and refused.err.strip().endswith("Cancelled.")
    assert _applied(cli, fresh_url)[-1] == head

    one_step = cli("downgrade", "-1", "--yes", url=fresh_url)
    assert one_step.code == 0, one_step.err
    assert one_step.out.strip() == f"Database is at {previous}."
    assert cli("downgrade", "--yes", "-1", url=fresh_url).code == 0  # options on either side

    to_base = cli("downgrade", "base", "--yes", url=fresh_url)
    assert to_base.code == 0 and to_base.out.strip() == "Database is at base."
    below_base = cli("downgrade", "-1", "--yes", url=fresh_url)
    assert below_base.code == 1 and below_base.no_traceback
    [line] = below_base.err.strip().splitlines()
    assert line.endswith("run 'python manage.py showmigrations' to see where the database is.")

    bogus = cli("downgrade", "-x", url=fresh_url)  # other words starting with '-' are still options
    assert bogus.code == 2 and bogus.err.startswith("Error: No such option '-x'")


def _applied(cli: Runner, url: str) -> list[str]:
    listing = cli("showmigrations", url=url).out
    return [line.split()[1] for line in listing.splitlines() if line.startswith(" [X]")]


def test_unknown_revision_is_one_line_pointing_to_showmigrations(cli: Runner, fresh_url: str) -> None:
    expected = [
        "Error: Unknown revision 'nope'; run 'python manage.py showmigrations' to list the revisions."
    ]
    migrate = cli("migrate", "nope", url=fresh_url)
    assert migrate.code == 1 and migrate.no_traceback
    assert migrate.err.strip().splitlines() == expected
    # Refused before the confirmation prompt, which would otherwise wait for an answer.
    downgrade = cli("downgrade", "nope", url=fresh_url)
    assert downgrade.code == 1 and downgrade.err.strip().splitlines() == expected


def test_commands_before_migrate_say_to_run_migrate(cli: Runner, fresh_url: str) -> None:
    url = fresh_url
    for args in (("users", "list"), ("users", "set-password", "x", "--password", "a-long-password-here")):
        result = cli(*args, url=url)
        assert result.code == 1 and result.no_traceback
        assert result.err.strip().splitlines() == [
            f"Error: The database at {_safe(url)} is not migrated: run 'python manage.py migrate' first."
        ]
    assert cli("migrate", "0002", url=url).code == 0  # accounts, but no store tables yet
    partly = cli("seed", "--products", "5", url=url)
    assert partly.code == 1 and partly.no_traceback
    assert (
        partly.err.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: The database at {_safe(url)} is not fully migrated (it is at 0002, the code expects "
        )
    )
    # Its tables exist at 0002, but users have columns of later migrations (language, second factor):
    # the same clear sentence, no traceback.
    listed = cli("users", "list", url=url)
    assert listed.code == 1 and listed.no_traceback
    assert "is not fully migrated (it is at 0002" in listed.err.strip().splitlines()[-1]
    assert cli("migrate", url=url).code == 0
    assert cli("users", "list", url=url).code == 0


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def test_check_does_not_create_a_missing_sqlite_file(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "absent" / "custodian.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    result = cli("check", url=url)
    assert result.code == 1
    assert f"FAIL database: The database file {path} does not exist" in result.out
    assert "reachable" not in result.out
    report = json.loads(cli("check", "--json", url=url).out)
    assert report["healthy"] is False and "does not exist" in report["reason"]
    assert not path.parent.exists()

    assert cli("migrate", url=url).code == 0  # other commands still create it on demand
    assert cli("check", url=url).code == 0


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


def test_shell_shows_the_traceback_of_failing_code(cli: Runner, fresh_url: str) -> None:
    result = cli("shell", "-c", "def half(n):\n    return n / 0\nhalf(4)", url=fresh_url)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert '  File "<shell -c>", line 2, in half' in lines and "    return n / 0" in lines
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert "backend/cli" not in result.err  # their code's frames only
    syntax = cli("shell", "-c", "x = (", url=fresh_url)
    assert syntax.code == 1 and syntax.err.strip().splitlines()[-1].startswith("SyntaxError:")
