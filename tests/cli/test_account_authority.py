"""The CLI acts as the system: the account-authority rule lets it manage every account."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Runner

PASSWORD = "cli-password-that-is-long"


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    result = cli("migrate", url=fresh_url)
    assert result.code == 0, result.err
    return fresh_url


def test_cli_manages_managers_and_superusers(cli: Runner, db_url: str) -> None:
    assert cli("createsuperuser", "--username", "root", "--password", PASSWORD, url=db_url).code == 0
    made = cli(
        "users", "create", "--username", "mia", "--role", "manager", "--password", PASSWORD, url=db_url
    )
    assert made.code == 0, made.err
    for username in ("mia", "root"):
        changed = cli("users", "set-password", username, "--password", "another-long-password", url=db_url)
        assert changed.code == 0, changed.err
        deactivated = cli("users", "deactivate", username, url=db_url)
        assert deactivated.code == 0, deactivated.err
    listing = cli("users", "list", url=db_url).out.splitlines()
    assert listing[0].startswith("mia") and listing[0].endswith("[inactive]")
    assert listing[1].startswith("root") and listing[1].endswith("[superuser, inactive]")


def test_cli_refuses_an_overlong_password_in_one_line(cli: Runner, db_url: str) -> None:
    cli("users", "create", "--username", "sam", "--password", PASSWORD, url=db_url)
    result = cli("users", "set-password", "sam", "--password", "p" * 100_000, url=db_url)
    assert result.code == 1 and result.no_traceback
    assert result.err.splitlines() == [
        "Error: The password is not acceptable.",
        "  password: Use at most 1024 characters.",
    ]
