from __future__ import annotations

import asyncio
import os
import sqlite3

import pyotp
import pytest
from sqlalchemy.engine import make_url

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models.two_factor import Passkey
from backend.services.two_factor import TwoFactorService
from backend.services.users import UserService
from tests.cli.conftest import Runner, run_manage_py
from tests.databases import TEST_SECRET_KEY, make_settings

PASSWORD = "cli-password-that-is-long"


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    result = cli("migrate", url=fresh_url)
    assert result.code == 0, result.err
    assert "Created roles: auditor, editor, manager, viewer." in result.out
    return fresh_url


def test_migrate_syncs_permissions_idempotently(cli: Runner, db_url: str) -> None:
    again = cli("migrate", url=db_url)
    assert again.code == 0 and "Permissions are up to date." in again.out
    sync = cli("permissions", "sync", url=db_url)
    assert sync.code == 0 and sync.out.strip() == "Permissions are up to date."


def test_createsuperuser_and_users_list(cli: Runner, db_url: str) -> None:
    created = cli(
        "createsuperuser",
        "--username",
        "root",
        "--email",
        "root@example.com",
        "--password",
        PASSWORD,
        url=db_url,
    )
    assert created.code == 0, created.err
    assert created.out.strip() == "Superuser root created."
    listing = cli("users", "list", url=db_url)
    assert "root" in listing.out and "[superuser]" in listing.out and "1 user." in listing.out


def test_createsuperuser_reads_the_environment_and_refuses_to_prompt(cli: Runner, db_url: str) -> None:
    missing = cli("createsuperuser", "--username", "root", "--no-input", url=db_url)
    assert missing.code == 1
    assert missing.err.strip() == "Error: A password is required: pass --password or set CUSTODIAN_PASSWORD."
    from_env = cli(
        "createsuperuser",
        "--username",
        "root",
        "--no-input",
        url=db_url,
        env={"CUSTODIAN_PASSWORD": PASSWORD},
    )
    assert from_env.code == 0, from_env.err


def test_users_create_with_role_and_errors(cli: Runner, db_url: str) -> None:
    ok = cli("users", "create", "--username", "vera", "--role", "viewer", "--password", PASSWORD, url=db_url)
    assert ok.code == 0 and "roles: viewer" in ok.out
    duplicate = cli("users", "create", "--username", "vera", "--password", PASSWORD, url=db_url)
    assert duplicate.code == 1 and duplicate.err.strip() == "Error: A user named vera already exists."
    weak = cli("users", "create", "--username", "weak", "--password", "password123", url=db_url)
    assert weak.code == 1
    assert weak.err.splitlines() == [
        "Error: The password is not acceptable.",
        "  password: This password is too common; choose another.",
    ]
    unknown_role = cli(
        "users", "create", "--username", "x", "--role", "nope", "--password", PASSWORD, url=db_url
    )
    assert unknown_role.code == 1 and "roles: No such role: nope." in unknown_role.err
    for result in (duplicate, weak, unknown_role):
        assert result.no_traceback


def test_set_password_deactivate_and_unknown_user(cli: Runner, db_url: str) -> None:
    cli("users", "create", "--username", "sam", "--password", PASSWORD, url=db_url)
    changed = cli("users", "set-password", "sam", "--password", "another-long-password", url=db_url)
    assert changed.code == 0 and "sessions were ended" in changed.out
    deactivated = cli("users", "deactivate", "sam", url=db_url)
    assert deactivated.code == 0
    assert "[inactive]" in cli("users", "list", url=db_url).out
    missing = cli("users", "deactivate", "nobody", url=db_url)
    assert missing.code == 1 and missing.err.startswith("Error: No user named nobody.")


def test_roles_grant_revoke_and_list(cli: Runner, db_url: str) -> None:
    granted = cli("roles", "grant", "viewer", "user.view", "role.view", url=db_url)
    assert granted.code == 0, granted.err
    listing = cli("roles", "list", url=db_url)
    viewer_block = listing.out.split("viewer (built-in)")[1]
    granted_line = viewer_block.splitlines()[1]
    assert "role.view" in granted_line and "user.view" in granted_line
    revoked = cli("roles", "revoke", "viewer", "role.view", url=db_url)
    assert revoked.code == 0
    unknown = cli("roles", "grant", "viewer", "nope.nope", url=db_url)
    assert unknown.code == 1 and "Unknown permission: nope.nope." in unknown.err
    no_role = cli("roles", "grant", "ghosts", "user.view", url=db_url)
    assert no_role.code == 1 and no_role.err.startswith("Error: No role named ghosts.")
    missing_args = cli("roles", "grant", "viewer", url=db_url)
    assert missing_args.code == 2


def test_new_viewer_can_sign_in_from_a_real_process(db_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENVIRONMENT": "test",
        "CUSTODIAN_PASSWORD": PASSWORD,
    }
    result = run_manage_py(
        "users", "create", "--username", "newviewer", "--role", "viewer", "--no-input", env=env
    )
    assert result.code == 0, result.err
    listing = run_manage_py("users", "list", env=env)
    assert "newviewer" in listing.out and "roles: viewer" in listing.out


def test_a_missing_user_or_role_is_reported_once(cli: Runner, db_url: str) -> None:
    for args, message in (
        (("users", "set-password", "x", "--password", PASSWORD), "Error: No user named x."),
        (("users", "deactivate", "x"), "Error: No user named x."),
        (("roles", "grant", "ghosts", "user.view"), "Error: No role named ghosts."),
    ):
        result = cli(*args, url=db_url)
        assert result.code == 1
        assert result.err.strip().splitlines() == [message]


@pytest.mark.sqlite
def test_listings_and_dry_runs_read_without_the_write_lock(cli: Runner, db_url: str) -> None:
    # Another writer holds SQLite's write lock; with no busy wait, a command that asked for it would fail.
    writer = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        no_wait = {"SQLITE_BUSY_TIMEOUT_MS": "0"}
        for command in (("users", "list"), ("roles", "list"), ("purge", "--older-than", "0", "--dry-run")):
            result = cli(*command, url=db_url, env=no_wait)
            assert result.code == 0, (command, result.out, result.err)
        blocked = cli("roles", "grant", "viewer", "audit.view", url=db_url, env=no_wait)
        assert blocked.code != 0 and blocked.no_traceback  # a writing command does wait for the lock
        assert "is busy" in blocked.err and "Cannot reach" not in blocked.err  # reachable, just locked
    finally:
        writer.rollback()
        writer.close()


def test_users_list_shows_second_factors_and_reset_2fa_clears_them(cli: Runner, db_url: str) -> None:
    for username in ("root", "keyholder"):
        made = cli("users", "create", "--username", username, "--password", PASSWORD, url=db_url)
        assert made.code == 0, made.err

    async def enrol() -> None:
        database = Database(make_settings(db_url))
        try:
            async with unit_of_work(database, Actor.system("tests")) as uow:
                users = (
                    await UserService(uow).get_by_username("root"),
                    await UserService(uow).get_by_username("keyholder"),
                )
                await TwoFactorService(uow).enrol_with_secret(users[0].id, pyotp.random_base32())
                uow.session.add(
                    Passkey(user_id=users[1].id, name="laptop", credential_id="cred-1", public_key=b"k")
                )
                await uow.commit()
        finally:
            await database.dispose()

    asyncio.run(enrol())
    listing = {line.split()[0]: line for line in cli("users", "list", url=db_url).out.splitlines()[:-1]}
    assert listing["root"].endswith("[2fa]") and "passkeys" not in listing["root"]
    assert listing["keyholder"].endswith("[passkeys: 1]")

    reset = cli("users", "reset-2fa", "root", url=db_url)
    assert reset.code == 0, reset.err
    assert reset.out.strip() == "Two-factor sign-in for root was reset; their sessions were ended."
    # A lost passkey must not outlive the reset, nor keep its owner out: passkeys go too.
    assert cli("users", "reset-2fa", "keyholder", url=db_url).code == 0
    after = {line.split()[0]: line for line in cli("users", "list", url=db_url).out.splitlines()[:-1]}
    assert "[2fa]" not in after["root"] and "passkeys" not in after["keyholder"]
    unknown = cli("users", "reset-2fa", "nobody", url=db_url)
    assert unknown.code != 0 and len(unknown.err.strip().splitlines()) == 1 and "nobody" in unknown.err
