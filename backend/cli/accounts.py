"""Accounts commands: createsuperuser, users ..., roles ..., permissions sync."""

from __future__ import annotations

import click

from backend.cli.context import in_unit_of_work, run
from backend.cli.output import say
from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.models import Role, User
from backend.services.passkeys import PasskeyService
from backend.services.permissions import SyncReport, sync_permissions
from backend.services.roles import RoleService
from backend.services.two_factor import TwoFactorService
from backend.services.users import UserService

PASSWORD_ENV = "CUSTODIAN_PASSWORD"  # noqa: S105 - a variable name


def _password(password: str | None, *, no_input: bool) -> str:
    if password:
        return password
    if no_input:
        raise AppError(f"A password is required: pass --password or set {PASSWORD_ENV}.")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _password_option() -> click.Option:
    return click.Option(
        ["--password"],
        envvar=PASSWORD_ENV,
        help=f"The password (or set {PASSWORD_ENV}); asked for if omitted.",
    )


def _create_user(
    *, username: str, email: str, password: str, superuser: bool, roles: tuple[str, ...]
) -> User:
    async def create(uow: UnitOfWork) -> User:
        return await UserService(uow).create(
            {
                "username": username,
                "email": email,
                "password": password,
                "is_superuser": superuser,
                "roles": roles,
            }
        )

    return run(in_unit_of_work(create))


@click.command()
@click.option("--username", required=True, help="Login name.")
@click.option("--email", default="", help="Email address.")
@click.option("--no-input", is_flag=True, help="Never prompt; fail if a value is missing.")
def createsuperuser(username: str, email: str, password: str | None, no_input: bool) -> None:
    """Create a superuser, who has every permission."""
    user = _create_user(
        username=username,
        email=email,
        password=_password(password, no_input=no_input),
        superuser=True,
        roles=(),
    )
    say(f"Superuser {user.username} created.")


createsuperuser.params.append(_password_option())


@click.group("users")
def users_group() -> None:
    """Create, list and manage user accounts."""


@users_group.command("create")
@click.option("--username", required=True, help="Login name.")
@click.option("--email", default="", help="Email address.")
@click.option("--role", "roles", multiple=True, help="A role to give (repeatable), e.g. --role viewer.")
@click.option("--no-input", is_flag=True, help="Never prompt; fail if a value is missing.")
def users_create(
    username: str, email: str, roles: tuple[str, ...], password: str | None, no_input: bool
) -> None:
    """Create a user with the given roles."""
    user = _create_user(
        username=username,
        email=email,
        password=_password(password, no_input=no_input),
        superuser=False,
        roles=roles,
    )
    say(f"User {user.username} created with roles: {', '.join(sorted(roles)) or 'none'}.")


users_create.params.append(_password_option())


@users_group.command("set-password")
@click.argument("username")
@click.option("--no-input", is_flag=True, help="Never prompt; fail if a value is missing.")
def users_set_password(username: str, password: str | None, no_input: bool) -> None:
    """Set USERNAME's password; their open sessions end."""
    new_password = _password(password, no_input=no_input)

    async def change(uow: UnitOfWork) -> None:
        service = UserService(uow)
        user = await service.get_by_username(username)
        await service.set_password(user.id, new_password)

    run(in_unit_of_work(change))
    say(f"Password for {username} changed; their sessions were ended.")


users_set_password.params.append(_password_option())


@users_group.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Stop USERNAME from signing in; their open sessions end."""

    async def deactivate(uow: UnitOfWork) -> None:
        service = UserService(uow)
        await service.deactivate((await service.get_by_username(username)).id)

    run(in_unit_of_work(deactivate))
    say(f"User {username} deactivated.")


@users_group.command("reset-2fa")
@click.argument("username")
def users_reset_two_factor(username: str) -> None:
    """Forget USERNAME's second factor and recovery codes; their open sessions end."""

    async def reset(uow: UnitOfWork) -> None:
        service = UserService(uow)
        await service.reset_two_factor((await service.get_by_username(username)).id)

    run(in_unit_of_work(reset))
    say(f"Two-factor sign-in for {username} was reset; their sessions were ended.")


@users_group.command("list")
def users_list() -> None:
    """List users with their roles and second factors (2fa: an authenticator app; passkeys: N)."""

    async def users_and_passkeys(uow: UnitOfWork) -> tuple[list[User], dict[int, int]]:
        users = await UserService(uow).list_with_roles()
        return users, await PasskeyService(uow).counts([user.id for user in users])

    found, passkeys = run(in_unit_of_work(users_and_passkeys, writes=False))
    for user in found:
        flags = [
            flag
            for flag, on in (
                ("superuser", user.is_superuser),
                ("2fa", user.totp_enrolled_at is not None),
                (f"passkeys: {passkeys.get(user.id, 0)}", user.id in passkeys),
                ("inactive", not user.is_active),
            )
            if on
        ]
        roles = ", ".join(role.name for role in user.roles) or "-"
        suffix = f"  [{', '.join(flags)}]" if flags else ""
        say(f"{user.username:<24} {user.email:<32} roles: {roles}{suffix}")
    say(f"{len(found)} user{'s' if len(found) != 1 else ''}.")


@click.group("roles")
def roles_group() -> None:
    """List roles and grant or revoke their permissions."""


@roles_group.command("list")
def roles_list() -> None:
    """List roles with their permissions."""
    found = run(in_unit_of_work(lambda uow: RoleService(uow).list_with_permissions(), writes=False))
    for role in found:
        say(f"{role.name}{' (built-in)' if role.is_builtin else ''}: {role.description}")
        say("    " + (", ".join(p.codename for p in role.permissions) or "no permissions"))


@roles_group.command("grant")
@click.argument("role")
@click.argument("permissions", nargs=-1, required=True)
def roles_grant(role: str, permissions: tuple[str, ...]) -> None:
    """Give ROLE the PERMISSIONS (codenames such as product.change)."""
    updated = run(in_unit_of_work(lambda uow: RoleService(uow).grant(role, permissions)))
    say(f"Role {updated.name} now has {len(updated.permissions)} permissions.")


@roles_group.command("revoke")
@click.argument("role")
@click.argument("permissions", nargs=-1, required=True)
def roles_revoke(role: str, permissions: tuple[str, ...]) -> None:
    """Take the PERMISSIONS away from ROLE."""
    updated: Role = run(in_unit_of_work(lambda uow: RoleService(uow).revoke(role, permissions)))
    say(f"Role {updated.name} now has {len(updated.permissions)} permissions.")


@roles_group.command("require-2fa")
@click.argument("role")
@click.option("--off", is_flag=True, help="Stop requiring it.")
def roles_require_two_factor(role: str, off: bool) -> None:
    """Make holders of ROLE sign in with a second factor (or, with --off, stop requiring it)."""

    async def change(uow: UnitOfWork) -> None:
        await TwoFactorService(uow).set_role_requirement(role, required=not off)

    run(in_unit_of_work(change))
    if off:
        say(f"Role {role} no longer requires two-factor sign-in.")
    else:
        say(f"Holders of role {role} must set up two-factor sign-in at their next sign-in.")


@click.group("permissions")
def permissions_group() -> None:
    """Keep permissions in step with the models."""


@permissions_group.command("sync")
def permissions_sync() -> None:
    """Add missing permissions and built-in roles (never deletes any)."""
    report: SyncReport = run(in_unit_of_work(sync_permissions))
    print_sync_report(report)


def print_sync_report(report: SyncReport) -> None:
    if report.created_roles:
        say(f"Created roles: {', '.join(report.created_roles)}.")
    count = len(report.created_permissions)
    say(f"Added {count} permission{'s' if count != 1 else ''}." if count else "Permissions are up to date.")


COMMANDS = (createsuperuser, users_group, roles_group, permissions_group)
